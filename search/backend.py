"""Which Keras backend runs the models (TensorFlow, JAX or PyTorch), and each training process's device setup.

Keras fixes its backend when it is first imported, from ``KERAS_BACKEND``: ``choose`` sets it before
that happens, ``env_vars`` carries it to every Ray worker, and ``configure`` binds a trial's (or the
final retrain's) threads and GPU memory to its share. This is the only module that imports a backend.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from search import console
from search.errors import UserError

DEFAULT = "tensorflow"
BACKENDS = ("tensorflow", "jax", "torch")
_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # backend -> its import name
_INSTALL = {"tensorflow": "pip install tensorflow", "jax": "pip install 'jax[cpu]'", "torch": "pip install torch"}


def choose(name: str | None = None) -> str:
    """The backend to use (name, else $KERAS_BACKEND, else tensorflow), set in KERAS_BACKEND for this process.

    Raises UserError for an unknown or uninstalled backend, or when Keras already runs another one.
    """
    name = name or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in BACKENDS:
        raise UserError(f"unknown Keras backend '{name}' (choose from {', '.join(BACKENDS)})")
    if importlib.util.find_spec(_PACKAGES[name]) is None:
        raise UserError(f"backend '{name}' is not installed ({_INSTALL[name]})")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise UserError(f"Keras is already loaded with backend '{current}'; cannot switch to '{name}'")
    os.environ["KERAS_BACKEND"] = name
    console.quiet_tensorflow_import()  # whoever imports it first: no GPU-less start-up noise
    return name


def env_vars(backend: str) -> dict[str, str]:
    """Environment every Ray worker needs before it imports Keras (for ray.init's runtime_env).

    The backend, and TensorFlow's oneDNN switch as this driver has it (see search/__init__.py): a worker
    may import TensorFlow before our package sets the switch.
    """
    return {"KERAS_BACKEND": backend, "TF_ENABLE_ONEDNN_OPTS": os.environ["TF_ENABLE_ONEDNN_OPTS"]}


def configure(cpus: float, gpus: float = 0.0) -> None:
    """Bind this process's compute threads to `cpus` and its GPU memory to a `gpus` share; call before the first op.

    Sets up the backend Keras runs (or, before Keras is imported, the one in KERAS_BACKEND).
    """
    threads = max(1, int(cpus))
    backend = sys.modules["keras"].backend.backend() if "keras" in sys.modules else os.environ.get("KERAS_BACKEND") or DEFAULT
    if backend == "tensorflow":
        _configure_tensorflow(threads)
    elif backend == "jax":
        _configure_jax(threads, gpus)
    elif backend == "torch":
        _configure_torch(threads, gpus)


def _configure_tensorflow(threads: int) -> None:
    """Thread pools sized to the CPU share; memory growth, so co-located trials share a GPU."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        for gpu in tensorflow_gpus():
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # TensorFlow already initialized in this process: keep its settings
        pass


def tensorflow_gpus() -> list:
    """TensorFlow's GPUs. Its first look prints cuInit's error on a machine without a driver: filtered (search.console)."""
    import tensorflow as tf

    with console.filtered_stderr():
        return tf.config.list_physical_devices("GPU")


def _configure_jax(threads: int, gpus: float) -> None:
    """XLA's GPU memory share as env vars, read when JAX initializes its backend (at its first op).

    No CPU thread limit: XLA's thread flags did not keep JAX's CPU work on one thread, and an XLA flag
    a jaxlib doesn't know aborts the process, so none is set.
    """
    del threads
    if 0 < gpus < 1:  # a fraction of a GPU: allocate on demand, and never beyond the share
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 * gpus:.3f}"


def _configure_torch(threads: int, gpus: float) -> None:
    """Intra-op threads sized to the CPU share; a cap on this process's share of GPU memory."""
    import torch

    torch.set_num_threads(threads)
    if 0 < gpus < 1 and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(gpus)
