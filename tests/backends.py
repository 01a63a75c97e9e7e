"""Run a test file again under another Keras backend: Keras fixes its backend at import, so in a child pytest.

``tests/test_other_backends.py`` re-runs the backend-sensitive files with KERAS_BACKEND set to each
other backend (skipped when the backend isn't installed, and inside such a re-run), so a failure there
names the backend and, in the child's output, the file.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RERUN = "CONV3D_SEARCH_BACKEND_RERUN"  # set inside a re-run, so it doesn't recurse
CURRENT = os.environ.get("KERAS_BACKEND") or "tensorflow"
OTHER_BACKENDS = [b for b in ("tensorflow", "jax", "torch") if b != CURRENT]


def skip_unless_installed(backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"backend '{backend}' is not installed")


def rerun(backend: str, *tests: str, timeout: float = 900) -> None:
    """Run `tests` (files or node ids) in a child pytest under `backend`; fail with its output's tail."""
    if os.environ.get(RERUN):
        pytest.skip("already a re-run under another backend")
    skip_unless_installed(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, RERUN: "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "not backend_free", *tests],
                          cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"under {backend}:\n" + "\n".join(done.stdout.splitlines()[-40:])
