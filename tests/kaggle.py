"""Small Kaggle-layout files for the data tests: a valid one, and every way one can be malformed."""

from __future__ import annotations

import h5py
import numpy as np


def kaggle_file(path, **overrides):
    """A valid 20 train / 10 test file at path; a key set to None is left out, any other replaces that array."""
    rng = np.random.default_rng(0)
    arrays = {
        "X_train": rng.random((20, 4096)),
        "y_train": np.arange(20) // 2,  # rows 2i and 2i+1 are one digit and its rotated copy
        "X_test": rng.random((10, 4096)),
        "y_test": np.arange(10) // 2,
    }
    arrays.update(overrides)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if value is not None:
                f[key] = value
    return path


def written(path, content: bytes):
    path.write_bytes(content)
    return path


def truncated(path):
    return written(path, path.read_bytes()[: path.stat().st_size // 2])


def _malformed_split(x: str, y: str, rows: int) -> list[tuple[str, object, str]]:
    """(id, make(path), message) for every way one split (x, y keys, rows long) can be wrong."""
    split = x.split("_")[1]
    return [
        (f"missing-{x}", lambda p: kaggle_file(p, **{x: None}), f"missing dataset '{x}'"),
        (f"missing-{y}", lambda p: kaggle_file(p, **{y: None}), f"missing dataset '{y}'"),
        (f"{split}-shape", lambda p: kaggle_file(p, **{x: np.zeros((rows, 16, 16))}), f"'{x}' has shape ({rows}, 16, 16)"),
        (f"{split}-label-shape", lambda p: kaggle_file(p, **{y: np.zeros((rows, 2), int)}), f"'{y}' has shape ({rows}, 2)"),
        (f"{split}-length", lambda p: kaggle_file(p, **{y: np.zeros(rows - 1, int)}), f"but '{y}' has {rows - 1} labels"),
        (f"{split}-empty", lambda p: kaggle_file(p, **{x: np.zeros((0, 4096)), y: np.zeros(0, int)}), f"'{x}' is empty"),
        (f"{split}-dtype", lambda p: kaggle_file(p, **{x: np.full((rows, 4096), b"a")}), f"'{x}' has non-numeric dtype"),
        (f"{split}-nan", lambda p: kaggle_file(p, **{x: np.full((rows, 4096), np.nan)}), f"'{x}' contains NaN"),
        (f"{split}-inf", lambda p: kaggle_file(p, **{x: np.full((rows, 4096), np.inf)}), f"'{x}' contains NaN"),
        (f"{split}-range", lambda p: kaggle_file(p, **{x: np.full((rows, 4096), 1.5)}), f"'{x}' has values in [1.5, 1.5]"),
        (f"{split}-label-range", lambda p: kaggle_file(p, **{y: np.full(rows, 10)}), f"'{y}' has labels in [10, 10]"),
        (f"{split}-fractional-label", lambda p: kaggle_file(p, **{y: np.full(rows, 2.5)}), f"'{y}' must hold integer"),
        (f"{split}-unpaired", lambda p: kaggle_file(p, **{y: np.arange(rows) % 10}), f"'{y}' rows 0 and 1 have labels 0 and 1"),
    ]


# Every way a data file can be wrong, for every command that reads one: (id, make(path), what the error says).
MALFORMED = [
    ("missing", lambda p: p, "data file not found"),
    ("not-hdf5", lambda p: written(p, b"not hdf5 at all"), "not a readable HDF5 file"),
    ("truncated", lambda p: truncated(kaggle_file(p)), "not a readable HDF5 file"),
    *_malformed_split("X_train", "y_train", 20),
    *_malformed_split("X_test", "y_test", 10),
]
