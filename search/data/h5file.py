"""Read, validate and write the Kaggle ``full_dataset_vectors.h5`` layout.

The Kaggle download and our regenerated file go through this one reader, so every accuracy
figure is computed from the same representation whichever file it came from.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

from search import files
from search.errors import UserError, one_line

SIDE = 16
VOXELS = SIDE**3
CLASSES = 10
SPLITS = {"train": ("X_train", "y_train"), "test": ("X_test", "y_test")}


def read_split(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of the file as (X float64 (N, 16, 16, 16) [z][y][x], y int64 (N,)), fully validated.

    Every way the file can be wrong raises UserError naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: data file not found")
    x_key, y_key = SPLITS[split]
    try:
        with h5py.File(path, "r") as f:
            for key in (x_key, y_key):
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise UserError(f"{path}: missing dataset '{key}' (expected keys {', '.join(sum(SPLITS.values(), ()))})")
            x, y = f[x_key][()], f[y_key][()]
    except UserError:
        raise
    except OSError as e:  # h5py reports a non-HDF5, truncated or unreadable file as OSError
        raise UserError(f"{path}: not a readable HDF5 file ({one_line(e)})") from None
    return _validated(path, x_key, x, y_key, y)


def _validated(path: Path, x_key: str, x: np.ndarray, y_key: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 2 or x.shape[1] != VOXELS:
        raise UserError(f"{path}: '{x_key}' has shape {x.shape}, expected (N, {VOXELS})")
    if y.ndim != 1:
        raise UserError(f"{path}: '{y_key}' has shape {y.shape}, expected (N,)")
    if len(x) != len(y):
        raise UserError(f"{path}: '{x_key}' has {len(x)} rows but '{y_key}' has {len(y)} labels")
    if len(x) == 0:
        raise UserError(f"{path}: '{x_key}' is empty")
    if not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path}: '{x_key}' has non-numeric dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise UserError(f"{path}: '{x_key}' contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise UserError(f"{path}: '{x_key}' has values in [{x.min():g}, {x.max():g}], expected [0, 1]")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise UserError(f"{path}: '{y_key}' must hold integer class labels")
    if y.min() < 0 or y.max() >= CLASSES:
        raise UserError(f"{path}: '{y_key}' has labels in [{y.min():g}, {y.max():g}], expected 0-{CLASSES - 1}")
    # Kaggle's layout: row 2i is a source digit, row 2i+1 its rotated copy. The validation split keeps
    # each pair together (data.train_val_split), which is only right if the file really is paired.
    unpaired = np.flatnonzero(y[0:len(y) - 1:2] != y[1::2])
    if len(unpaired):
        row = 2 * int(unpaired[0])
        raise UserError(f"{path}: '{y_key}' rows {row} and {row + 1} have labels {y[row]:g} and {y[row + 1]:g}; "
                        f"Kaggle's layout pairs each digit (row 2i) with its rotated copy (row 2i+1)")
    return x.reshape(-1, SIDE, SIDE, SIDE), y.astype(np.int64)


def write(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> str:
    """Write Kaggle's layout (gzip-compressed, like the real ~30 MB file) atomically; return its sha256."""

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                # No timestamps, so the same data gives the same bytes and checksum.
                f.create_dataset(key, data=value, compression="gzip", compression_opts=4, shuffle=True, track_times=False)

    return sha256(files.write_atomic(path, write_h5))


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
