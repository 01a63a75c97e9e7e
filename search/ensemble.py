"""The finalists' ensemble: members chosen on validation, retrained on all training data, tested once together.

Ensemble selection (Caruana et al. 2004): starting empty, add (with replacement) the finalist whose softmax,
averaged with the members so far, is most accurate on the validation split, `size` times; a member's weight
is how often it was added. The finalists' validation softmax is their last epoch's, kept in their last
checkpoint (policy.plan). Each member is then retrained on train + validation for its best epoch count, as the
final retrain of one configuration is (the winner's own final model is reused when it is a member), and the
weighted mean of their softmax is tested once. The ensemble is saved as one Keras model that takes raw
volumes, like a single final model.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import ray

from search import data, final, storage
from search.errors import UserError, exception_line, one_line
from search.leaderboard import Pick, Records
from search.protocol import Stage, Status
from search.resources import Resources
from search.rundir import VAL_PREDICTIONS, FinalDir, RunDir
from search.storage import Location


def select(predictions: Mapping[str, np.ndarray], truth: np.ndarray, size: int) -> dict[str, int]:
    """Ensemble selection with replacement: trial id -> times chosen, `size` choices in all. Ties go to the
    lower validation log loss, then to the candidate listed first (predictions in leaderboard order)."""
    chosen: dict[str, int] = {}
    total = np.zeros_like(next(iter(predictions.values())), dtype=np.float64)
    for step in range(1, size + 1):
        def score(trial_id: str) -> tuple[float, float]:
            mean = (total + predictions[trial_id]) / step
            right = np.mean(np.argmax(mean, axis=1) == truth)
            log_loss = -np.mean(np.log(np.clip(mean[np.arange(len(truth)), truth], 1e-12, None)))
            return right, -log_loss
        best = max(predictions, key=score)  # max keeps the first of equals
        total += predictions[best]
        chosen[best] = chosen.get(best, 0) + 1
    return chosen


def candidates(run_dir: Location, records: Records) -> dict[str, tuple[Pick, np.ndarray]]:
    """Every finalist that kept its validation predictions, in leaderboard order: its Pick (the params its
    retrain trains) and its softmax on the validation split; UserError if there are fewer than 2."""
    rank_of = {r.trial_id: k for k, r in enumerate((r for r in records.ranked() if r.epochs), start=1)}
    found = {}
    seen = set()  # one finalist per configuration: a lost one's re-run after a resume is the same
    for record in records.ranked():
        if (record.stage != Stage.FINALIST or record.status != Status.COMPLETED or record.trial_id not in rank_of
                or record.finalist_of in seen):
            continue
        for checkpoint in RunDir(run_dir).finalist_checkpoints(record.trial_id):
            if storage.is_file(checkpoint / VAL_PREDICTIONS):
                softmax = np.load(io.BytesIO(storage.read_bytes(checkpoint / VAL_PREDICTIONS)))
                found[record.trial_id] = (records.pick(rank_of[record.trial_id]), softmax)
                seen.add(record.finalist_of)
                break
    if len(found) < 2:
        raise UserError(f"{run_dir}: an ensemble needs 2 finalists with validation predictions, found {len(found)} "
                        "(runs made before 2026-12-04 did not keep them)")
    return found


def test_once(run_dir: Location, records: Records, val: data.Volumes, data_file: Path, size: int,
              resources: Resources, out: FinalDir) -> dict[str, Any]:
    """Select `size` members among the finalists, retrain them, test their mean once into out; the test
    metrics, which also name the members and their weights. An out that holds its test already is read."""
    if (done := out.tested()) is not None:  # a resumed run never tests twice
        return done
    found = candidates(run_dir, records)
    weights = select({t: softmax for t, (_, softmax) in found.items()}, np.asarray(val.y), size)
    members = [(found[t][0], count / size) for t, count in weights.items()]
    if not storage.exists(out.path):  # else an attempt that died before its test: its files are replaced
        storage.new_dir(out.path)
    winner = RunDir(run_dir).final
    reused = {}  # the winner's final model, when it is a member: the same configuration, the same retrain
    best, winner_test = records.pick(), winner.tested()  # the newest tested final may be an earlier winner's
    if best.trial_id in weights and winner_test and winner_test["params"] == best.params and storage.is_file(winner.model):
        reused[best.trial_id] = storage.read_bytes(winner.model)
    train_full = data.load(data_file, "train")
    test_set = data.load(data_file, "test")  # the ensemble's one read of the test split
    retrain = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus)(_retrain)
    shared = ray.put(train_full)
    pending = {p.trial_id: retrain.remote(p.params, shared, resources.precision, resources.mps)
               for p, _ in members if p.trial_id not in reused}  # as many at once as the cluster holds
    try:
        trained = {**reused, **dict(zip(pending, ray.get(list(pending.values()))))}
        combine = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus)(_combine_and_test)
        metrics, model_bytes, predicted = ray.get(combine.remote(
            [(trained[p.trial_id], weight, p.params) for p, weight in members], test_set))
    except ray.exceptions.RayTaskError as e:
        raise UserError(f"ensemble retrain failed: {one_line(e.cause) if e.cause else exception_line(str(e))}") from None
    except ray.exceptions.RayError as e:  # a worker or node lost, an object gone
        raise UserError(f"ensemble retrain failed: {exception_line(str(e))}") from None
    metrics["members"] = [{"trial_id": p.trial_id, "finalist_of": p.finalist_of, "weight": weight,
                           "val_accuracy": p.val_accuracy, "params": p.params} for p, weight in members]
    metrics["selection"] = {"size": size, "candidates": list(found),
                            "val_accuracy": float(np.mean(np.argmax(
                                sum(found[t][1] * c for t, c in weights.items()) / size, axis=1) == val.y))}
    final.write_tested(out, model_bytes, test_set, predicted, metrics)
    return metrics


def _retrain(params: dict[str, Any], train_full: data.Volumes, precision: str, mps: bool) -> bytes:
    """One member trained on train_full; its .keras bytes. On a Ray worker."""
    return final.model_bytes(final.retrain(params, train_full, precision, mps).model)


def _combine_and_test(members: list[tuple[bytes, float, dict[str, Any]]],
                      test_set: data.Volumes) -> tuple[dict[str, Any], bytes, np.ndarray]:
    """The members (model bytes, weight, params) as one model, tested once. On a Ray worker."""
    import keras

    from search import model as _registers_our_layers  # noqa: F401 - load_model needs them, in a fresh worker too
    from search import pose

    with tempfile.TemporaryDirectory() as directory:
        models = []
        for k, (model_bytes, weight, _) in enumerate(members):
            path = Path(directory) / f"member-{k}.keras"
            path.write_bytes(model_bytes)
            models.append((keras.models.load_model(path), weight))
    ensemble = combine(models)
    saved = final.model_bytes(ensemble)  # before compile: for predict, no optimizer to carry
    ensemble.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    metrics, predicted = final.test_model(ensemble, test_set, members[0][2])
    metrics["test_time_averaging"] = [pose.averaged_views(params) for _, _, params in members]  # each its own
    return metrics, saved, predicted


def combine(members: list[tuple[Any, float]]):
    """One Keras model over raw volumes: each member's softmax times its weight, summed."""
    import keras

    first = members[0][0]
    inputs = keras.Input(shape=first.input_shape[1:], dtype=first.inputs[0].dtype, name="volumes")
    outputs = []
    for k, (member, weight) in enumerate(members):
        member = keras.Model(member.input, member.output, name=f"member_{k}")  # unique names inside the ensemble
        outputs.append(keras.layers.Rescaling(weight, name=f"weight_{k}")(member(inputs)))
    mean = keras.layers.Add(name="weighted_mean")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, mean, name="ensemble")
