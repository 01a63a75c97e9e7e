"""A stand-in trial for the scale benchmark and the scale tests: the trial protocol without Keras.

Each epoch is a short sleep and a deterministic learning curve computed from the configuration; it reports
what ``search.trial.run_trial`` reports (statuses, every epoch's metrics, checkpoints at the plan's cadence,
each a small state.json) and resumes from its newest checkpoint. Of the costs (search.objectives) it reports
flops, and judges limits on them before training, as run_trial does; it builds no model, so param_count is 0
and latency is not measured. ``trainable(epoch_s)`` is what the Python
API and the pipeline take in place of the real trial; ``python -m search.synthetic [--epoch-s S] run|resume ...``
is the command line with it (for the tests and the benchmark that need a process of their own). Every other
part of a run is the one users run.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune

from search import checkpoints, connection
from search import objectives as goals
from search import params as schema
from search.data import Volumes
from search.protocol import BASELINE_KEY, CONTINUES_KEY, METRIC, Plan, Status, split_config

DEFAULT_EPOCH_S = 0.05  # an epoch's sleep


def final_accuracy(params: dict[str, Any]) -> float:
    """The accuracy a configuration's curve rises to: best at a learning rate of 2e-3, and a fixed
    configuration-dependent spread of a few points (so TPE has something to learn, and ties are rare)."""
    spread = int(hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8], 16) / 16**8
    return 0.55 + 0.35 * math.exp(-math.log10(params["learning_rate"] / 2e-3) ** 2) + 0.05 * spread


def curve(params: dict[str, Any], epoch: int) -> dict[str, float]:
    """The metrics of `epoch` (from 1): validation accuracy rising as 1 - exp(-epoch / 3) toward final_accuracy."""
    accuracy = final_accuracy(params) * (1 - math.exp(-epoch / 3))
    return {"loss": 2.3 * (1 - accuracy), "accuracy": min(1.0, accuracy + 0.02), "val_loss": 2.3 * (1 - accuracy),
            METRIC: accuracy}


def run_trial(config: dict[str, Any], train: Volumes, val: Volumes, plan: Plan = Plan(),
              gpu: tuple[bool, str] = (False, "float32"), epoch_s: float = DEFAULT_EPOCH_S) -> None:
    """The trainable, with run_trial's signature; `train`, `val` and `gpu` are unused."""
    started = time.perf_counter()
    params, extras = split_config(config)
    info = {**connection.where_am_i(), BASELINE_KEY: extras.get(BASELINE_KEY) or "", "backend": "synthetic"}
    try:
        params = schema.feasible(params)
    except schema.Infeasible as e:
        tune.report({METRIC: 0.0, "status": Status.INFEASIBLE, "error": str(e), "epoch": 0, **info})
        return
    info["flops"] = schema.flops(params)
    if refused := goals.Objectives(limits=plan.limits).over_limits(info):
        tune.report({METRIC: 0.0, "status": Status.INFEASIBLE, "error": refused, "epoch": 0, **info})
        return
    registered, last = tune.get_checkpoint(), params["epochs"]
    newest = checkpoints.on_storage(registered, extras.get(CONTINUES_KEY, ""))  # as run_trial resumes: from the newest on storage
    checkpoints.number_after(newest)
    resumed = _state(newest[0]) if newest else {}
    known, first = (_epoch(registered) if registered else 0), resumed.get("epoch", 0) + 1
    history = resumed.get("history", [])  # every epoch's report so far, kept in each checkpoint as run_trial keeps it

    def metrics_of(epoch: int) -> dict[str, Any]:
        return {**curve(params, epoch), "epoch": epoch, "status": Status.COMPLETED if epoch >= last else Status.RUNNING,
                "param_count": 0, "train_seconds": time.perf_counter() - started, "resumed_from": first - 1, **info,
                "checkpointed": plan.checkpoint_at(epoch, last)}

    # Trained after the checkpoint Tune restored, never reached the driver: reported again as they were (their node,
    # their attempt), so that Tune's iteration stays the epoch.
    for metrics in history[known:first - 1]:
        tune.report({**metrics, "checkpointed": False})
    for epoch in range(first, last + 1):
        time.sleep(epoch_s)
        metrics = metrics_of(epoch)
        history.append(metrics)
        if not metrics["checkpointed"]:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as directory:
            state = {"epoch": epoch, "resumed_from": first - 1, "history": history}
            (Path(directory) / "state.json").write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def _state(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    with checkpoint.as_directory() as local:
        return json.loads((Path(local) / "state.json").read_text())


def _epoch(checkpoint: tune.Checkpoint) -> int:
    return _state(checkpoint)["epoch"]


def trainable(epoch_s: float = DEFAULT_EPOCH_S):
    """run_trial with epochs of epoch_s seconds, named for run.json (a resume checks it is given the same)."""
    def synthetic_trial(config: dict[str, Any], train: Volumes, val: Volumes, plan: Plan = Plan(),
                        gpu: tuple[bool, str] = (False, "float32")) -> None:
        run_trial(config, train, val, plan, gpu, epoch_s=epoch_s)

    synthetic_trial.trainable_name = f"search.synthetic:trainable(epoch_s={epoch_s:g})"
    return synthetic_trial


def main(argv: list[str] | None = None) -> int:
    """`python -m search.synthetic [--epoch-s S] COMMAND ...`: the command line, trials trained synthetically."""
    import argparse

    from search import cli

    parser = argparse.ArgumentParser(prog="python -m search.synthetic", add_help=False)
    parser.add_argument("--epoch-s", type=float, default=DEFAULT_EPOCH_S)
    known, rest = parser.parse_known_args(argv)
    return cli.main(rest, trainable=trainable(known.epoch_s))


if __name__ == "__main__":
    import sys

    sys.exit(main())
