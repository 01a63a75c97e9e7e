"""Shared fixtures: a small but real 3D MNIST file, regenerated from the shipped digits."""

from __future__ import annotations

import os

import numpy as np
import pytest

from search.data import h5file, regenerate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's CPU compiler at its lowest optimization level, for this process and every CLI, Ray node and trial the
# tests start: under JAX compiling dominates the tests' tiny models (the JAX re-run takes 86 instead of 152
# CPU-seconds); TensorFlow does not use XLA on CPU.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
# The live report once, at a run's first result, then at its end: each rewrite in between costs the driver about
# 2 CPU-seconds, and no test looks at those (test_report.py checks the throttle itself).
os.environ.setdefault("CONV3D_SEARCH_REPORT_EVERY_S", "3600")
# A local Ray without its dashboard: about 2 CPU-seconds less at each of the suite's 25-odd local Ray starts.
# The end-to-end run and the whole-job SIGTERM test keep it (test_search_e2e.py, test_resume.py), and the
# faults run watches a cluster's dashboard (test_faults.py).
os.environ.setdefault("CONV3D_SEARCH_DASHBOARD", "0")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the xdist controller (or a plain run), before any worker starts
        from clusters import ensure_auth_token

        ensure_auth_token()


def pytest_collection_modifyitems(items):
    """Tests marked `long` (a whole search or more) and those sharing a run (xdist_group) first: the xdist workers
    (pyproject) start them at once and fill in with the short ones, so they finish together instead of one worker
    ending on a long test. A group stays together, so `-n 0` builds each shared run once too."""
    items.sort(key=lambda item: not (item.get_closest_marker("long") or item.get_closest_marker("xdist_group")))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Fail a grouped test if xdist's loadgroup stopped grouping (it tags node ids, which pytest 9.2 ignores:
    pytest-xdist #1386): the tests that share one run would each start their own, silently, on other workers."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail("pytest-xdist's --dist loadgroup did not group this test (pytest-xdist #1386): "
                    "install the pytest that pyproject.toml's test extra asks for", pytrace=False)


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
