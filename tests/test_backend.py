"""search.backend: choosing the Keras backend, its worker environment and per-process setup; --backend errors."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

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


# A trial's process as run_trial starts it: Keras imported, then configure, then the first op. In a fresh process,
# since TensorFlow's thread pools are fixed once its runtime starts (an earlier test here may have started it).
_CONFIGURE_THEN_FIRST_OP = """
import json, os, sys
import keras
from search import backend
backend.configure(float(sys.argv[1]), float(sys.argv[2]), precision="mixed_bfloat16")
done = {"backend": keras.backend.backend(), "policy": keras.mixed_precision.global_policy().name}
if done["backend"] == "tensorflow":
    import tensorflow as tf
    tf.reduce_sum(tf.ones((2, 2))).numpy()  # the runtime starts here, with the pools configure set
    done["threads"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()]
else:
    keras.ops.sum(keras.ops.ones((2, 2)))
    done["xla"] = {k: os.environ.get(k) for k in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")}
print(json.dumps(done))
"""


def test_configure_runs_for_the_loaded_backend():
    """configure(cpus, gpus, precision) in a fresh process of this process's backend: TensorFlow's intra-op pool is
    the CPU share (3.5 -> 3) and its inter-op pool at most 2, JAX's GPU share its XLA memory fraction; and Keras's
    policy is the precision."""
    loaded = keras.backend.backend()
    result = subprocess.run([sys.executable, "-c", _CONFIGURE_THEN_FIRST_OP, "3.5", "0.5"], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("XLA_PYTHON_CLIENT_")},
                                 "KERAS_BACKEND": loaded})
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads(result.stdout.strip().splitlines()[-1])
    assert done["backend"] == loaded and done["policy"] == "mixed_bfloat16"
    if loaded == "tensorflow":
        assert done["threads"] == [3, 2]
    elif loaded == "jax":
        assert done["xla"] == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.450"}


def test_precision_is_keras_global_policy_and_unknown_ones_are_refused():
    import keras

    try:
        backend.set_precision("mixed_bfloat16")
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        backend.set_precision("float32")
    with pytest.raises(backend.UserError, match="unknown precision 'float16'"):
        backend.set_precision("float16")


def test_mps_where_it_cannot_start_is_one_line_and_the_trial_goes_on(monkeypatch, capsys, tmp_path):
    """No MPS control binary (a CPU machine, a container without NVIDIA's tools): "off" and why, never an exception."""
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    assert backend.start_mps().startswith("off: nvidia-cuda-mps-control not found")
    assert backend.mps_running() is False
    backend.configure(1, gpus=0.5, mps=True)
    assert capsys.readouterr().err.strip().startswith("mps off: nvidia-cuda-mps-control not found")


def test_mps_env_reaches_workers_only_when_asked(monkeypatch):
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    assert "CUDA_MPS_PIPE_DIRECTORY" not in backend.env_vars("jax")
    env = backend.env_vars("jax", mps=True)
    assert env["CUDA_MPS_PIPE_DIRECTORY"] == str(backend.MPS_DIR / "pipe")
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/run/nvidia-mps")  # a node's own daemon, started before `ray start`
    assert backend.env_vars("jax", mps=True)["CUDA_MPS_PIPE_DIRECTORY"] == "/run/nvidia-mps"


def test_mps_daemon_is_started_once_and_found_again(monkeypatch, tmp_path):
    """A stand-in nvidia-cuda-mps-control with the real one's interface (-d starts a daemon that makes the pipe
    directory's control socket; commands on stdin): start_mps starts it once, then finds it answering."""
    fake = tmp_path / "bin" / backend.MPS_CONTROL
    fake.parent.mkdir()
    calls = tmp_path / "calls"
    fake.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
if [ "$1" = "-d" ]; then mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" && touch "$CUDA_MPS_PIPE_DIRECTORY/control"; exit 0; fi
read command; [ -e "$CUDA_MPS_PIPE_DIRECTORY/control" ] || exit 1; echo "$command" >> {calls}
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path / "pipe"))
    monkeypatch.setenv("CUDA_MPS_LOG_DIRECTORY", str(tmp_path / "log"))
    assert backend.mps_running() is False
    assert backend.start_mps() == "on" and backend.start_mps() == "on"
    assert backend.mps_running() is True
    assert calls.read_text().split("\n").count("-d") == 1


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
