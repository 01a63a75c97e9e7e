"""search.backend: choosing the Keras backend, its worker environment and per-process setup; --backend errors."""

from __future__ import annotations

import importlib.util
import re

import keras
import pytest

from search import backend
from search.errors import UserError
from searching import ROOT, SPACES, search


def test_only_search_backend_imports_tensorflow():
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "search").rglob("*.py"))
                 if path.name != "backend.py" or path.parent != ROOT / "search"
                 if re.search(r"^\s*(import|from)\s+tensorflow\b", path.read_text(), re.MULTILINE)]
    assert offenders == []


def test_choose_takes_the_name_else_the_environment_else_tensorflow(monkeypatch):
    current = keras.backend.backend()  # Keras is loaded here: only its own backend can be chosen
    monkeypatch.setenv("KERAS_BACKEND", current)
    assert backend.choose(None) == current and backend.choose(current) == current
    monkeypatch.delenv("KERAS_BACKEND")
    if current == backend.DEFAULT:
        assert backend.choose(None) == "tensorflow"
    other = next(b for b in backend.BACKENDS if b != current and importlib.util.find_spec(b))
    with pytest.raises(UserError, match=f"already loaded with backend '{current}'"):
        backend.choose(other)
    with pytest.raises(UserError, match="unknown Keras backend 'theano'"):
        backend.choose("theano")


def test_env_vars_carry_the_backend_to_workers():
    assert backend.env_vars("jax")["KERAS_BACKEND"] == "jax"


def test_jax_gets_its_gpu_share_as_xla_memory_settings(monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    backend._configure_jax(1, 0.0)
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in backend.os.environ
    backend._configure_jax(1, 0.25)
    assert backend.os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(backend.os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.225)


def test_configure_runs_for_the_loaded_backend():
    backend.configure(1)  # before this process's first op would be ideal; here it must at least not fail


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
@pytest.mark.parametrize("command", [["train", "--preset", "machinecurve"], ["run", str(SPACES / "tiny.py")]],
                         ids=["train", "run"])
def test_a_missing_backend_fails_in_one_line_with_exit_2(tmp_path, command):
    result = search(*command, "--backend", "torch", "--data", str(tmp_path / "none.h5"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: backend 'torch' is not installed (pip install torch)"]


def test_an_unknown_backend_is_a_bad_flag():
    result = search("train", "--preset", "machinecurve", "--backend", "theano")
    assert result.returncode == 2 and "--backend: invalid choice: 'theano'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
