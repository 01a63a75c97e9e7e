"""The final evaluation: retrain one configuration on the whole training set, then test it exactly once.

This and the finalists' ensemble (search.ensemble) are the only code that reads the test split during a run.
It trains for the epoch count at which the configuration's validation accuracy peaked during the search, on
train + validation together. ``train_one`` (the `train` command) trains one configuration through the same stages:
``fit``, ``test_model``, ``save_model``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from search import data, files, storage
from search.errors import UserError, exception_line, one_line
from search.resources import Resources
from search.rundir import FinalDir


@dataclass
class Fitted:
    """A trained model, its per-epoch history (train.history_rows) and the seconds its training took."""

    model: Any  # keras.Model
    history: list[dict[str, float]]
    seconds: float


def fit(params: dict[str, Any], train: data.Volumes, val: data.Volumes | None = None,
        verbose: int | None = None) -> Fitted:
    """Train params on train (reporting val's metrics each epoch, if given), timed."""
    from search import train as training

    started = time.perf_counter()
    model, history = training.fit(params, train, val, verbose=verbose)
    return Fitted(model, training.history_rows(history), time.perf_counter() - started)


def test_model(model, test_set: data.Volumes, params: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """The one test of a trained model: (its test metrics, the predicted digit of every test row).

    The metrics also say what each prediction averaged over (pose.averaged_views) and, in Kaggle's layout,
    the accuracy on the upright rows (even: the original digits) and the rotated ones (odd: their copies).
    """
    from search import pose
    from search import train as training

    metrics, predicted = training.evaluate(model, test_set)
    right = predicted == test_set.y
    metrics.update(upright_accuracy=float(right[0::2].mean()), rotated_accuracy=float(right[1::2].mean()),
                   test_time_averaging=pose.averaged_views(params))
    return metrics, predicted


def save_model(path: Path, model) -> Path:
    """The model as a .keras file, atomically."""
    return files.write_atomic(path, model.save)


def model_bytes(model) -> bytes:
    """The model as a .keras file's bytes (what a Ray worker hands back to the driver)."""
    with tempfile.TemporaryDirectory() as directory:
        return save_model(Path(directory) / "model.keras", model).read_bytes()


def train_one(params: dict[str, Any], data_file: Path, out_dir: Path, val_fraction: float, seed: int | None,
              precision: str, test: bool, keras_backend: str) -> None:
    """The `train` command: train params on the training split (less a validation share, if val_fraction),
    save the model, its history and its parameters into out_dir, and with `test` test it once."""
    from search import backend
    from search.rundir import TrainDir

    out = TrainDir(out_dir)
    train_full = data.load_train(data_file)  # the whole file checked, test split included, with or without test
    train_set, val_set = (data.train_val_split(train_full, val_fraction, seed=seed) if val_fraction
                          else (train_full, None))  # 0: the final retrain's protocol, all of train
    print(f"data: {data_file} (train {len(train_set)}, validation {len(val_set) if val_set else 0}); "
          f"params: {json.dumps(params)}")
    files.write_json(out.params, {"params": params, "data": str(data_file), "data_sha256": data.sha256(data_file),
                                  "backend": keras_backend, "precision": precision})
    if keras_backend == "tensorflow":
        backend.tensorflow_gpus()  # its first GPU lookup, without the no-driver noise
    backend.set_precision(precision)
    fitted = fit(params, train_set, val_set)
    files.write_atomic(out.history, lambda tmp: pd.DataFrame(fitted.history).to_csv(tmp, index=False))
    save_model(out.model, fitted.model)
    last = fitted.history[-1]
    scores = ", ".join(f"{k} {last[k]:.4f}" for k in ("val_accuracy", "val_loss") if k in last) or f"loss {last['loss']:.4f}"
    print(f"trained {len(fitted.history)} epochs in {fitted.seconds:.0f} s: {scores}")
    if test:
        metrics, _ = test_model(fitted.model, data.load(data_file, "test"), params)
        metrics.update(params=params, data=str(data_file), train_seconds=fitted.seconds, backend=keras_backend)
        files.write_json(out.test_metrics, metrics)
        print(f"test accuracy {metrics['accuracy']:.4f} (loss {metrics['loss']:.4f}) on {metrics['samples']} samples: "
              f"upright rows {metrics['upright_accuracy']:.4f}, rotated rows {metrics['rotated_accuracy']:.4f}")
    print(f"wrote {out.path}")


def retrain(params: dict[str, Any], train_full: data.Volumes, precision: str = "float32", mps: bool = False) -> Fitted:
    """Train params on train_full with the backend set for this worker's CPUs and GPUs. On a Ray worker."""
    from search import backend

    assigned = ray.get_runtime_context().get_assigned_resources() if ray.is_initialized() else {}
    backend.configure(assigned.get("CPU", 1.0), assigned.get("GPU", 0.0), precision=precision, mps=mps)
    return fit(params, train_full, verbose=2)


def retrain_and_test(params: dict[str, Any], train_full: data.Volumes, test_set: data.Volumes,
                     precision: str = "float32", mps: bool = False) -> tuple[dict[str, Any], bytes, np.ndarray]:
    """Train params on train_full, test once; return (test metrics, the .keras file's bytes, predictions). On a Ray worker."""
    import keras

    fitted = retrain(params, train_full, precision, mps)
    metrics, predicted = test_model(fitted.model, test_set, params)
    metrics.update(params=params, train_samples=len(train_full), train_seconds=fitted.seconds,
                   history=fitted.history, backend=keras.backend.backend())
    return metrics, model_bytes(fitted.model), predicted


def test_once(params: dict[str, Any], data_file: Path, out: FinalDir, resources: Resources,
              earlier: FinalDir | None = None) -> float:
    """run_final into out, unless out already holds its test result (a resumed run never tests twice); the accuracy.

    earlier: a final folder of the same run (an extension's previous winner). If it tested these very params, its
    files are copied into out instead: the same configuration and seed retrain to the same model, and the test
    set is not read again for it. test_metrics.json then says where it came from (copied_from)."""
    if (done := out.tested()) is not None:
        return done["accuracy"]
    if earlier is not None and (metrics := earlier.tested()) is not None and metrics["params"] == params:
        storage.new_dir(out.path)
        for file in (out.model, out.predictions):
            storage.write_bytes(file, storage.read_bytes(earlier.path / file.name))
        storage.write_json(out.test_metrics, {**metrics, "copied_from": earlier.path.name})  # last, as run_final's
        return metrics["accuracy"]
    return run_final(params, data_file, out, resources)["accuracy"]



def run_final(params: dict[str, Any], data_file: Path, out: FinalDir, resources: Resources) -> dict[str, Any]:
    """Retrain and test on a Ray worker; write the model, the test metrics and every test row's prediction.

    The predictions are for the report (in Kaggle's layout even rows are upright originals, odd rows their
    rotated copies); the report never reads the test set itself.

    Nothing else runs by now, so it takes a whole node's CPUs (the largest node's), at least the trials' share.
    """
    storage.new_dir(out.path)
    node_cpus = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]]
    cpus = max([resources.cpus, *node_cpus])
    train_full = data.load(data_file, "train")
    test_set = data.load(data_file, "test")  # the one read of the test split
    remote = ray.remote(num_cpus=cpus, num_gpus=resources.gpus)(retrain_and_test)
    try:
        metrics, model_bytes, predicted = ray.get(remote.remote(params, train_full, test_set, resources.precision,
                                                                resources.mps))
    except ray.exceptions.RayTaskError as e:
        raise UserError(f"final retrain failed: {one_line(e.cause) if e.cause else exception_line(str(e))}") from None
    write_tested(out, model_bytes, test_set, predicted, metrics)
    return metrics


def write_tested(out: FinalDir, model_bytes: bytes, test_set: data.Volumes, predicted: np.ndarray,
                 metrics: dict[str, Any]) -> None:
    """A tested model's files (a configuration's or an ensemble's): the model, every test row's prediction, and
    the test metrics last, since their presence means the test ran (``tested``)."""
    storage.write_bytes(out.model, model_bytes)
    rows = pd.DataFrame({"row": np.arange(len(test_set)), "digit": test_set.y, "predicted": predicted})
    storage.write_text(out.predictions, rows.to_csv(index=False))
    storage.write_json(out.test_metrics, metrics)
