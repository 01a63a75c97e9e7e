"""Shared fixtures: a small but real 3D MNIST file, regenerated from the shipped digits."""

from __future__ import annotations

import os

import numpy as np
import pytest

from search.data import h5file, regenerate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def small_data_file(tmp_path_factory):
    """Kaggle layout with the first 300 train / 100 test digits (600 / 200 volumes): real data, small."""
    digits = regenerate.source_digits()
    x_train, y_train = regenerate.regenerate_split(digits["train_images"][:300], digits["train_labels"][:300], seed=0)
    x_test, y_test = regenerate.regenerate_split(digits["test_images"][:100], digits["test_labels"][:100], seed=1)
    path = tmp_path_factory.mktemp("data") / "small.h5"
    h5file.write(path, {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test})
    assert np.bincount(y_train).min() > 0
    return path
