"""One search trial as a Ray Tune function trainable: fit one configuration, report and checkpoint every epoch.

A trial never brings the search down: an infeasible architecture is reported at once without
training, a NaN/inf loss stops the trial, and an exception is reported with its message. Each ends
with a final report whose ``status`` says which; the driver's records pick it up from there.
Only failures of the machinery itself (a lost node, a killed worker) reach Tune, which then restarts
the trial from its last checkpoint on another worker.
"""

from __future__ import annotations

import json
import math
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import ray
from ray import tune

from search import params as schema
from search import train as training
from search.data import Volumes

RUNNING, COMPLETED, INFEASIBLE, NAN, ERROR = "running", "completed", "infeasible", "nan", "error"
METRIC = "val_accuracy"
BASELINE_KEY = "baseline"  # config key naming the preset of a baseline trial; not a hyperparameter


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A Tune config -> (hyperparameters, baseline name or None)."""
    params = {k: v for k, v in config.items() if k != BASELINE_KEY}
    return params, config.get(BASELINE_KEY)


def configure_tensorflow(cpus: float) -> None:
    """Bind TensorFlow's thread pools to this trial's CPUs and let co-located trials share a GPU.

    Must run before TensorFlow executes its first op in this process. Memory growth keeps a trial
    from grabbing the whole GPU, so fractional GPUs (e.g. 0.25 = four trials per GPU) can coexist.
    """
    import tensorflow as tf

    threads = max(1, int(cpus))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # TensorFlow already initialized in this (reused) worker: keep its settings
        pass


def _assigned_cpus() -> float:
    return ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)


def run_trial(config: dict[str, Any], train: Volumes, val: Volumes) -> None:
    """The trainable. `train` and `val` arrive once per node through Ray's object store (tune.with_parameters)."""
    started = time.perf_counter()
    info = {"node": socket.gethostname(), "node_ip": ray.util.get_node_ip_address(), BASELINE_KEY: config.get(BASELINE_KEY) or ""}
    params, _ = split_config(config)
    try:
        params = schema.validate(params)
        reason = schema.check(params)
        if reason:
            tune.report({METRIC: 0.0, "status": INFEASIBLE, "error": reason, "epoch": 0, **info})
            return
        configure_tensorflow(_assigned_cpus())
        _fit_and_report(params, train, val, info, started)
    except Exception as e:  # noqa: BLE001 - any error of this configuration ends this trial only
        message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        tune.report({METRIC: 0.0, "status": ERROR, "error": message, "epoch": 0, **info})


def _fit_and_report(params: dict[str, Any], train: Volumes, val: Volumes, info: dict, started: float) -> None:
    model, initial_epoch, seconds_before = None, 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint:  # resumed after a lost worker or driver: continue where the last epoch ended
        with checkpoint.as_directory() as directory:
            model = keras.models.load_model(Path(directory) / "model.keras")
            state = json.loads((Path(directory) / "state.json").read_text())
        initial_epoch, seconds_before = state["epoch"], state["train_seconds"]
        if initial_epoch >= params["epochs"]:  # it had finished; Ray's state lagged behind
            tune.report({**state["last"], "status": COMPLETED})
            return
    report = _ReportEachEpoch(params, info, started - seconds_before)
    training.fit(params, train, val, initial_epoch=initial_epoch, model=model, callbacks=[report], verbose=0)


class _ReportEachEpoch(keras.callbacks.Callback):
    """Reports each epoch's metrics to Tune, with a checkpoint of the model to resume from."""

    def __init__(self, params: dict[str, Any], info: dict, started: float):
        super().__init__()
        self.params_, self.info, self.started = params, info, started

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        finite = all(math.isfinite(float(logs.get(k, 0.0))) for k in ("loss", "val_loss"))
        done = epoch + 1 >= self.params_["epochs"]
        metrics = {
            **{k: float(v) for k, v in logs.items() if k != "learning_rate"},
            METRIC: float(logs.get(METRIC, 0.0)) if finite else 0.0,
            "epoch": epoch + 1,
            "status": NAN if not finite else (COMPLETED if done else RUNNING),
            "param_count": int(self.model.count_params()),
            "train_seconds": time.perf_counter() - self.started,
            **self.info,
        }
        if not finite:  # stop here: a diverged model has nothing left to learn or to resume
            metrics["error"] = f"loss became {logs.get('loss')} at epoch {epoch + 1}"
            self.model.stop_training = True
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            self.model.save(Path(directory) / "model.keras")
            state = {"epoch": epoch + 1, "train_seconds": metrics["train_seconds"], "last": metrics}
            (Path(directory) / "state.json").write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
