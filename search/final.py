"""The final evaluation: retrain one configuration on the whole training set, then test it exactly once.

This is the only code that reads the test split. It trains for the epoch count at which the
configuration's validation accuracy peaked during the search, on train + validation together.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from search import data, files
from search.errors import UserError, exception_line, one_line
from search.resources import Resources

PREDICTIONS = "predictions.csv"  # row, digit, predicted: one line per test row


def retrain_and_test(params: dict[str, Any], train_full: data.Volumes, test: data.Volumes,
                     precision: str = "float32", mps: bool = False) -> tuple[dict[str, Any], bytes, np.ndarray]:
    """Train params on train_full, evaluate once on test; return (test metrics, the .keras file's bytes, predictions)."""
    import keras

    from search import backend, train

    assigned = ray.get_runtime_context().get_assigned_resources() if ray.is_initialized() else {}
    backend.configure(assigned.get("CPU", 1.0), assigned.get("GPU", 0.0), precision=precision, mps=mps)
    started = time.perf_counter()
    model, history = train.fit(params, train_full, None, verbose=2)
    metrics, predicted = train.evaluate(model, test)
    metrics.update(params=params, train_samples=len(train_full), train_seconds=time.perf_counter() - started,
                   history=train.history_rows(history), backend=keras.backend.backend())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        return metrics, path.read_bytes(), predicted


FINAL_DIR = "final"


def out_dir(run_dir: Path, rank: int = 1) -> Path:
    """final/ for the winner; final-rank-K/ for another rank (or for rank 1 once final/ exists)."""
    return Path(run_dir) / (FINAL_DIR if rank == 1 and not (Path(run_dir) / FINAL_DIR).exists() else f"{FINAL_DIR}-rank-{rank}")


def test_once(params: dict[str, Any], data_file: Path, out: Path, resources: Resources) -> float:
    """run_final into out, unless out already holds its test result (a resumed run never tests twice); the accuracy."""
    done = Path(out) / "test_metrics.json"
    if done.is_file():
        return json.loads(done.read_text())["accuracy"]
    return run_final(params, data_file, out, resources)["accuracy"]


def run_final(params: dict[str, Any], data_file: Path, out_dir: Path, resources: Resources) -> dict[str, Any]:
    """Retrain and test on a Ray worker; write test_metrics.json, model.keras and predictions.csv.

    predictions.csv has each test row's digit and prediction, for the report (in Kaggle's layout even rows
    are upright originals, odd rows their rotated copies); the report never reads the test set itself.

    Nothing else runs by now, so it takes a whole node's CPUs (the largest node's), at least the trials' share.
    """
    out_dir = files.new_dir(out_dir)
    node_cpus = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]]
    cpus = max([resources.cpus, *node_cpus])
    train_full = data.load(data_file, "train")
    test = data.load(data_file, "test")  # the one read of the test split
    remote = ray.remote(num_cpus=cpus, num_gpus=resources.gpus)(retrain_and_test)
    try:
        metrics, model_bytes, predicted = ray.get(remote.remote(params, train_full, test, resources.precision,
                                                                resources.mps))
    except ray.exceptions.RayTaskError as e:
        raise UserError(f"final retrain failed: {one_line(e.cause) if e.cause else exception_line(str(e))}") from None
    files.write_atomic(out_dir / "model.keras", lambda tmp: tmp.write_bytes(model_bytes))
    rows = pd.DataFrame({"row": np.arange(len(test)), "digit": test.y, "predicted": predicted})
    files.write_atomic(out_dir / PREDICTIONS, lambda tmp: rows.to_csv(tmp, index=False))
    files.write_json(out_dir / "test_metrics.json", metrics)
    return metrics
