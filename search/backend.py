"""Which Keras backend runs the models (TensorFlow, JAX or PyTorch), and each training process's device setup.

Keras fixes its backend when it is first imported, from ``KERAS_BACKEND``: ``choose`` sets it before
that happens, ``env_vars`` carries it to every Ray worker, and ``configure`` binds a trial's (or the
final retrain's) threads, GPU memory and precision to its share. ``start_mps`` lets the trials that
share one GPU run their kernels at the same time. This is the only module that imports a backend.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from search import console
from search.errors import UserError, exception_line, one_line

DEFAULT = "tensorflow"
BACKENDS = ("tensorflow", "jax", "torch")
_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # backend -> its import name
_INSTALL = {"tensorflow": "pip install tensorflow", "jax": "pip install 'jax[cpu]'", "torch": "pip install torch"}
PRECISIONS = ("float32", "mixed_bfloat16")  # Keras dtype policies; mixed: bf16 compute, float32 weights and loss
# NVIDIA MPS: one daemon per node funnels every client process's kernels into one GPU context, so the
# small kernels of trials that share a GPU run side by side instead of taking turns (time-slicing).
# A private pipe directory keeps our daemon from capturing other users' CUDA programs on the node.
MPS_DIR = Path(tempfile.gettempdir()) / "conv3d-search-mps"
MPS_CONTROL = "nvidia-cuda-mps-control"


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


def env_vars(backend: str, mps: bool = False) -> dict[str, str]:
    """Environment every Ray worker needs before it imports Keras (for ray.init's runtime_env).

    The backend, and TensorFlow's oneDNN switch as this driver has it (see search/__init__.py): a worker
    may import TensorFlow before our package sets the switch. With mps, the MPS directories: a CUDA
    process finds the daemon through them when it creates its context, so they must be set at its start.
    """
    env = {"KERAS_BACKEND": backend, "TF_ENABLE_ONEDNN_OPTS": os.environ["TF_ENABLE_ONEDNN_OPTS"]}
    return {**env, **mps_env()} if mps else env


def configure(cpus: float, gpus: float = 0.0, precision: str = "float32", mps: bool = False) -> None:
    """Bind this process's compute threads to `cpus`, its GPU memory to a `gpus` share and Keras to `precision`;
    with mps (and a GPU share), make sure this node's MPS daemon runs. Call before the first op.

    Sets up the backend Keras runs (or, before Keras is imported, the one in KERAS_BACKEND).
    """
    threads = max(1, int(cpus))
    backend = sys.modules["keras"].backend.backend() if "keras" in sys.modules else os.environ.get("KERAS_BACKEND") or DEFAULT
    if mps and gpus > 0:
        status = start_mps()
        if status != "on":  # the trial still trains, sharing the GPU by time-slicing
            print(f"mps {status}", file=sys.stderr, flush=True)
    if backend == "tensorflow":
        _configure_tensorflow(threads)
    elif backend == "jax":
        _configure_jax(threads, gpus)
    elif backend == "torch":
        _configure_torch(threads, gpus)
    set_precision(precision)


def set_precision(precision: str) -> None:
    """Keras's global dtype policy for the models built from here on (the model keeps its input and
    output layers in float32, so augmentation is exact and the loss and metrics are float32)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    import keras

    keras.mixed_precision.set_global_policy(precision)


def mps_env() -> dict[str, str]:
    """The MPS daemon's pipe and log directories: a node's own (exported before `ray start`), else ours."""
    pipe = os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or str(MPS_DIR / "pipe")
    log = os.environ.get("CUDA_MPS_LOG_DIRECTORY") or str(MPS_DIR / "log")
    return {"CUDA_MPS_PIPE_DIRECTORY": pipe, "CUDA_MPS_LOG_DIRECTORY": log}


def start_mps(stop_at_exit: bool = False) -> str:
    """This node's MPS daemon, started unless one already answers: "on", or "off: <why>" (one line).

    Idempotent, so every trial on a node may call it. stop_at_exit: stop a daemon this call started
    when this process ends (the driver of a local run); a node's own daemon is never stopped.
    """
    if shutil.which(MPS_CONTROL) is None:
        return f"off: {MPS_CONTROL} not found (NVIDIA's MPS ships with the driver)"
    env = {**os.environ, **mps_env()}
    if _mps_answers(env):
        return "on"
    for directory in (env["CUDA_MPS_PIPE_DIRECTORY"], env["CUDA_MPS_LOG_DIRECTORY"]):
        Path(directory).mkdir(parents=True, exist_ok=True)
    try:
        started = subprocess.run([MPS_CONTROL, "-d"], env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"off: {MPS_CONTROL} -d failed ({one_line(e)})"
    if not _mps_answers(env):
        why = exception_line(started.stderr or started.stdout) or f"exit code {started.returncode}"
        return f"off: {MPS_CONTROL} -d did not start a daemon ({why})"
    if stop_at_exit:
        atexit.register(_stop_mps, env)
    return "on"


def mps_running() -> bool:
    """Whether an MPS daemon answers this process's pipe directory (``mps_env``)."""
    return shutil.which(MPS_CONTROL) is not None and _mps_answers({**os.environ, **mps_env()})


def _mps_answers(env: dict[str, str]) -> bool:
    """Whether an MPS control daemon listens on env's pipe directory."""
    if not (Path(env["CUDA_MPS_PIPE_DIRECTORY"]) / "control").exists():
        return False
    try:
        return subprocess.run([MPS_CONTROL], input="get_server_list\n", env=env, capture_output=True, text=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _stop_mps(env: dict[str, str]) -> None:
    try:
        subprocess.run([MPS_CONTROL], input="quit\n", env=env, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass


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


def device_name() -> str:
    """What a worker computes on, for the record of a measured latency: "NVIDIA H100 80GB HBM3, jax" or
    "AMD EPYC 9R14 (2 CPUs), tensorflow"."""
    import keras

    name = keras.backend.backend()
    if _assigned().get("GPU"):
        try:
            if name == "jax":
                import jax
                return f"{jax.devices()[0].device_kind}, jax"
            if name == "torch":
                import torch
                return f"{torch.cuda.get_device_name()}, torch"
            import tensorflow as tf
            gpu = tf.config.list_physical_devices("GPU")[0]
            return f"{tf.config.experimental.get_device_details(gpu).get('device_name', 'GPU')}, tensorflow"
        except Exception:  # noqa: BLE001 - a name is a label: never fail a trial for it
            return f"GPU, {name}"
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "CPU")
    except OSError:
        import platform
        model = platform.processor() or "CPU"
    cpus = _assigned().get("CPU", len(os.sched_getaffinity(0)))  # outside Ray: this process's
    return f"{model} ({max(1, round(cpus))} CPUs), {name}"


def _assigned() -> dict[str, float]:
    """The resources Ray assigned this worker (none outside Ray)."""
    import ray

    return ray.get_runtime_context().get_assigned_resources() if ray.is_initialized() else {}
