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


# --- issue 18: a real S3 server (SeaweedFS, tests/s3.py), started once, only by the tests that ask for it ---


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS's S3 gateway on loopback with the bucket `runs`, a writer and a read-only identity."""
    from s3 import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """This test's environment: the writer's keys and the endpoint only, no AWS files, no instance metadata."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server
