"""3D MNIST for the search: Kaggle's file or an offline regeneration, compact uint8 volumes, and splits.

Volumes are held as uint8 colormap levels (see ``colorize``): one byte per voxel, which is what
trials receive through Ray's object store, and exactly what the seeds' RGB input is made from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from search.data.cache import regenerated_file
from search.data.colormap import ORANGES_LUT, colorize, colormap_indices
from search.data.h5file import CLASSES, SIDE, read_split, sha256

__all__ = [
    "CLASSES",
    "ORANGES_LUT",
    "SIDE",
    "Volumes",
    "colorize",
    "colormap_indices",
    "load",
    "load_train",
    "regenerated_file",
    "resolve",
    "sha256",
    "source_digits",
    "train_val_split",
]


@dataclass(frozen=True)
class Volumes:
    """Labelled volumes: x uint8 (N, 16, 16, 16) colormap levels [z][y][x], y uint8 (N,) digits."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes


def resolve(path: str | os.PathLike | None) -> Path:
    """The data file to use: the given one, or the regenerated default (built and cached on first use)."""
    return Path(path) if path else regenerated_file()


def load_train(path: str | os.PathLike | None) -> Volumes:
    """The train split, once the whole file is valid: every key, shape, dtype and value of both splits.

    The test split is read only to be checked, then dropped: a malformed one fails here, before any
    training, not at the final evaluation.
    """
    path = resolve(path)
    train = load(path, "train")
    read_split(path, "test")
    return train


def load(path: str | os.PathLike | None = None, split: str = "train") -> Volumes:
    """Load one split ("train" or "test") of a Kaggle-layout file; None means the regenerated default.

    Search code asks only for "train": the test split is read only by the final evaluation.
    """
    x, y = read_split(resolve(path), split)
    return Volumes(colormap_indices(x), y.astype(np.uint8))


def train_val_split(volumes: Volumes, val_fraction: float = 0.2, seed: int = 0) -> tuple[Volumes, Volumes]:
    """A seeded split stratified by digit that keeps each source digit's rows on one side.

    In Kaggle's layout rows 2i and 2i+1 are one MNIST digit and its rotated copy (``source_digits``):
    val_fraction of every class's source digits go to validation with both their rows, so no
    validation volume has its twin among the training volumes.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    source = source_digits(len(volumes))
    digit_of_source = pd.Series(volumes.y).groupby(source).first()
    val_sources = digit_of_source.groupby(digit_of_source).sample(frac=val_fraction, random_state=seed).index
    is_val = np.isin(source, val_sources)
    return Volumes(volumes.x[~is_val], volumes.y[~is_val]), Volumes(volumes.x[is_val], volumes.y[is_val])


def source_digits(rows: int) -> np.ndarray:
    """The source digit of each row in Kaggle's layout: rows 2i and 2i+1 come from digit i (see data/h5file)."""
    return np.arange(rows) // 2
