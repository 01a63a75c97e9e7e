"""One search trial as a Ray Tune function trainable: fit one configuration, report every epoch, checkpoint
as often as resume needs (see `Plan`).

A trial never brings the search down: an infeasible architecture is reported at once without
training, a NaN/inf loss stops the trial, running out of its memory share and any other exception
are reported with their message. Each ends with a final report whose ``status`` says which; the
driver's records pick it up from there. Only failures of the machinery itself (a lost node, a
killed worker) reach Tune, which then restarts the trial from its last checkpoint on another worker.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import ray
from ray import tune

from search import backend, checkpoints, connection
from search import objectives as goals
from search import params as schema
from search import train as training
from search.data import Volumes
from search.errors import one_line
from search.protocol import BASELINE_KEY, CONTINUES_KEY, FAULT_AT_EPOCH, FAULT_KEY, METRIC, Plan, Status, split_config
from search.retry import retry
from search.rundir import VAL_PREDICTIONS


def cap_memory(budget_bytes: int) -> None:
    """Let this process's address space grow by at most budget_bytes from here on.

    Ray's ``memory`` resource only reserves memory for scheduling; this enforces it, so an oversized
    model fails here with ResourceExhaustedError instead of pushing the whole node into swap or
    Ray's OOM killer. Address space over-counts (thread stacks, malloc arenas), so the cap is strict.
    """
    with open("/proc/self/status") as status:
        used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + budget_bytes if hard == resource.RLIM_INFINITY else min(hard, used + budget_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def run_trial(config: dict[str, Any], train: Volumes, val: Volumes, plan: Plan = Plan(),
              gpu: tuple[bool, str] = (False, "float32")) -> None:
    """The trainable. `train`, `val`, `plan` and `gpu` (mps, precision) arrive once per node through Ray's
    object store (tune.with_parameters)."""
    started = time.perf_counter()
    assigned = ray.get_runtime_context().get_assigned_resources()
    info = {**connection.where_am_i(), BASELINE_KEY: config.get(BASELINE_KEY) or "",
            "backend": keras.backend.backend()}
    params, extras = split_config(config)
    memory = assigned.get("memory")
    try:
        try:
            params = schema.feasible(params)
        except schema.Infeasible as e:  # reported at once, without training
            tune.report({METRIC: 0.0, "status": Status.INFEASIBLE, "error": str(e), "epoch": 0, **info})
            return
        info["flops"] = schema.flops(params)  # every report carries its costs (objectives, ASHA's rungs)
        keras.backend.clear_session()  # in an actor Tune reused (tuner.REUSE_ACTORS): drop the last trial's models
        backend.configure(assigned.get("CPU", 1.0), assigned.get("GPU", 0.0), precision=gpu[1], mps=gpu[0])
        if refused := _over_size_limits(params, plan, info):  # before training, as an infeasible architecture
            tune.report({METRIC: 0.0, "status": Status.INFEASIBLE, "error": refused, "epoch": 0, **info})
            return
        info["precision"] = keras.mixed_precision.global_policy().name
        if memory and not assigned.get("GPU"):  # CUDA maps far more address space than memory: no cap there
            cap_memory(int(memory))
        _fit_and_report(params, train, val, info, started, plan, extras.get(FAULT_KEY), extras.get(CONTINUES_KEY, ""))
    except Exception as e:  # noqa: BLE001 - any error of this configuration ends this trial only
        message = re.sub(r"\{\{.*?\}\}\s*", "", one_line(e))  # drop TF's {{function_node ...}} prefix
        out_of_memory = (isinstance(e, MemoryError) or type(e).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")
                         or "RESOURCE_EXHAUSTED" in str(e))  # TensorFlow, torch, JAX (XlaRuntimeError)
        if out_of_memory and memory:
            message += f" (over its {memory / 2**30:.3g} GiB share)"
        tune.report({METRIC: 0.0, "status": Status.OOM if out_of_memory else Status.ERROR, "error": message, "epoch": 0, **info})


def _over_size_limits(params: dict[str, Any], plan: Plan, info: dict) -> str | None:
    """Why the configuration breaks a limit on its size (param_count, flops), or None; the built model's weights
    are counted (into info) only where a limit asks for them: building it costs milliseconds."""
    if not plan.limits:
        return None
    if "param_count" in dict(plan.limits):
        from search.model import count_params

        info["param_count"] = count_params(params)
    return goals.Objectives(limits=plan.limits).over_limits(info)


def _fit_and_report(params: dict[str, Any], train: Volumes, val: Volumes, info: dict, started: float,
                    plan: Plan, fault: str | None = None, continues: str = "") -> None:
    model, initial_epoch, seconds_before, history = None, 0, 0.0, []
    registered = tune.get_checkpoint()
    newest = _load_newest(registered, continues)
    if newest:  # resumed after a lost worker or driver: continue where the last epoch ended
        model, state = newest
        initial_epoch, seconds_before, history = state["epoch"], state["train_seconds"], state.get("history", [])
        # Epochs after the checkpoint Tune restored (none: iteration 0) were trained but never reached the
        # driver: report them again, so that Tune's iteration stays equal to the epoch (ASHA's clock) and
        # the records have no gap. Checkpoints from before "history" was kept have only "last".
        known = _epoch_of(registered, default=initial_epoch) if registered else 0
        missed = history[known:initial_epoch] if history else [state["last"]] if initial_epoch > known else []
        for metrics in missed:
            tune.report(metrics)
        if initial_epoch >= params["epochs"]:  # it had finished
            if not missed:
                tune.report({**state["last"], "status": Status.COMPLETED})
            return
        fault = None  # an injected fault fires on a trial's first attempt only
    report = _ReportEachEpoch(params, {**info, "resumed_from": initial_epoch}, started - seconds_before, plan, history,
                              lose_worker=fault == "lost", val=val)
    callbacks = [report] + ([_InjectFault(fault)] if fault in ("raise", "nan") else [])
    training.fit(params, train, val, initial_epoch=initial_epoch, model=model, callbacks=callbacks, verbose=0,
                 steps_per_execution=plan.steps_per_execution)


def _load_newest(registered: tune.Checkpoint | None, continues: str = "") -> tuple[keras.Model, dict] | None:
    """(model, state) of this trial's newest readable checkpoint on storage (search.checkpoints), or None if it has
    none; an unreadable one (its node died while saving it) is passed over for an older one."""
    found = checkpoints.on_storage(registered, continues)
    checkpoints.number_after(found)
    for checkpoint in found:
        try:
            with checkpoint.as_directory() as local:
                state = json.loads((Path(local) / "state.json").read_text())
                return keras.models.load_model(Path(local) / "model.keras"), state
        except Exception:  # noqa: BLE001 - half-written: try an older one
            continue
    if registered:
        raise RuntimeError(f"no readable checkpoint next to {registered.path}")
    return None


def _epoch_of(checkpoint: tune.Checkpoint, default: int) -> int:
    """The epoch of the checkpoint itself (not of a newer one beside it); default if it cannot be read."""
    try:
        with checkpoint.as_directory() as local:
            return json.loads((Path(local) / "state.json").read_text())["epoch"]
    except Exception:  # noqa: BLE001 - then nothing is reported again
        return default


class _InjectFault(keras.callbacks.Callback):
    """A fault on purpose, through the real failure paths: "raise" raises, "nan" makes the next loss NaN."""

    def __init__(self, fault: str):
        super().__init__()
        self.fault = fault

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 != FAULT_AT_EPOCH:
            return
        if self.fault == "raise":
            raise RuntimeError(f"injected fault at epoch {epoch + 1}")
        if self.fault == "nan":
            for weight in self.model.trainable_weights:
                weight.assign(keras.ops.full_like(weight, float("nan")))


class _ReportEachEpoch(keras.callbacks.Callback):
    """Reports each epoch's metrics to Tune, with a checkpoint of the model to resume from where the plan says."""

    def __init__(self, params: dict[str, Any], info: dict, started: float, plan: Plan = Plan(),
                 history: list[dict] | None = None, lose_worker: bool = False, val: Volumes | None = None):
        super().__init__()
        self.params_, self.info, self.started, self.plan, self.val = params, info, started, plan, val
        self.history = list(history or [])  # every epoch's report so far, kept in each checkpoint
        self.lose_worker = lose_worker  # the injected fault "lost" (protocol.FAULTS)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        measured = self.plan.measure_latency and "latency_ms" not in self.info and self.val is not None
        if measured:
            # Once per attempt, after its first epoch, on this worker's device (a resumed trial measures again).
            self.info["latency_ms"] = training.median_latency_ms(self.model, self.val.x[:training.LATENCY_BATCH])
            self.info["latency_device"] = backend.device_name()
        finite = all(math.isfinite(float(logs.get(k, 0.0))) for k in ("loss", "val_loss"))
        done = epoch + 1 >= self.params_["epochs"]
        metrics = {
            **{k: float(v) for k, v in logs.items() if k != "learning_rate"},
            METRIC: float(logs.get(METRIC, 0.0)) if finite else 0.0,
            "epoch": epoch + 1,
            "status": Status.DIVERGED if not finite else (Status.COMPLETED if done else Status.RUNNING),
            "param_count": int(self.model.count_params()),
            "train_seconds": time.perf_counter() - self.started,
            **self.info,
        }
        if not finite:  # stop here: a diverged model has nothing left to learn or to resume
            metrics["error"] = f"loss became {logs.get('loss')} at epoch {epoch + 1}"
            self.model.stop_training = True
            tune.report(metrics)
            return
        too_slow = goals.Objectives(limits=self.plan.limits).over_limits(metrics) if measured else None
        if too_slow:  # a latency limit, judged on each attempt's measurement (the first epoch's, or a resumed one's)
            metrics.update(status=Status.INFEASIBLE, error=too_slow)
            self.model.stop_training = True
            tune.report(metrics)
            return
        # the driver persists its records at every checkpoint (see record_keeper.RecordKeeper)
        metrics["checkpointed"] = self.plan.checkpoint_at(epoch + 1, self.params_["epochs"])
        self.history.append(metrics)
        if not metrics["checkpointed"]:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            self.model.save(Path(directory) / "model.keras")
            state = {"epoch": epoch + 1, "train_seconds": metrics["train_seconds"], "last": metrics,
                     "history": self.history}
            (Path(directory) / "state.json").write_text(json.dumps(state))
            if done and self.plan.keep_val_predictions and self.val is not None:
                np.save(Path(directory) / VAL_PREDICTIONS, self.model.predict(self.val.x, batch_size=256, verbose=0))
            if self.lose_worker and epoch + 1 == FAULT_AT_EPOCH - 1:
                _die_after_upload(directory)
            report_checkpoint(metrics, directory)


def _die_after_upload(directory: str) -> None:
    """The fault "lost": upload the checkpoint as tune.report would, then end this worker before reporting it.

    Tune then restarts the trial with no checkpoint registered, as when a node dies between an epoch's
    upload and Tune's save() of it; the trial's own newest checkpoint on storage must carry it on.
    """
    storage = tune.get_context().get_storage()
    storage.current_checkpoint_index += 1  # the folder tune.report would have used next
    storage.persist_current_checkpoint(tune.Checkpoint.from_directory(directory))
    os._exit(1)


UPLOAD_PATIENCE_S = 300.0  # how long a trial waits for its storage (an object store gone for a while) to answer


def report_checkpoint(metrics: dict, directory: str, patience_s: float = UPLOAD_PATIENCE_S) -> None:
    """tune.report with a checkpoint, tried again while its upload fails (an endpoint gone for a while).

    Tune uploads the checkpoint inside report, before the result is sent, so a failed upload reported
    nothing and may be repeated; after patience_s the error ends the trial and Tune restarts it from its
    last checkpoint (FailureConfig), or resume does.
    """
    def say(error: BaseException, wait: float) -> None:
        print(f"checkpoint upload failed ({one_line(error)}); trying again in {wait:.0f} s", flush=True)

    retry(lambda: tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory)), OSError,
          patience_s=patience_s, delay_s=1.0, backoff=2, max_delay_s=30.0, before_wait=say)
