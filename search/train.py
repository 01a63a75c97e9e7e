"""Train one configuration: the loop every stage shares (the `train` command, each trial, the final retrain).

Plain Keras ``model.fit`` on the uint8 volumes; the model decodes and augments on its own device.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from search.data import Volumes
from search.model import build_model


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (the last, partial batch included), as Keras counts them."""
    return math.ceil(samples / batch_size)


def fit(
    params: Mapping[str, Any],
    train: Volumes,
    val: Volumes | None = None,
    *,
    initial_epoch: int = 0,
    model: keras.Model | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | None = None,
    steps_per_execution: int = 8,
) -> tuple[keras.Model, keras.callbacks.History]:
    """Fit `params` (validated) on `train`, reporting `val` metrics each epoch; return the model and history.

    `model` continues a model restored from a checkpoint, from `initial_epoch` (it keeps the
    steps_per_execution it was compiled with). steps_per_execution batches per compiled call save
    Python round trips, most of all on a GPU. The seed in params fixes weights, shuffling and
    augmentation, so a run is repeatable on the same machine.
    """
    if verbose is None:  # a progress bar on a terminal, one line per epoch in a log file
        verbose = 1 if sys.stdout.isatty() else 2
    if "seed" in params:
        keras.utils.set_random_seed(params["seed"])
    if model is None:
        model = build_model(params, steps_per_epoch=steps_per_epoch(len(train), params["batch_size"]),
                            steps_per_execution=steps_per_execution)
    history = model.fit(
        train.x,
        train.y,
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        initial_epoch=initial_epoch,
        validation_data=(val.x, val.y) if val is not None else None,
        shuffle=True,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return model, history


def history_rows(history: keras.callbacks.History) -> list[dict[str, float]]:
    """Keras's history as one plain row per epoch (epoch counted from 1)."""
    keys = list(history.history)
    return [
        {"epoch": epoch + 1, **{k: float(history.history[k][i]) for k in keys}}
        for i, epoch in enumerate(history.epoch)
    ]


def evaluate(model: keras.Model, test: Volumes, batch_size: int = 256) -> tuple[dict[str, Any], np.ndarray]:
    """(accuracy, loss, per-class accuracy and confusion matrix (rows = true digit) on `test`; the predicted digit
    of every row): the final stage keeps the predictions for the report."""
    loss, accuracy = model.evaluate(test.x, test.y, batch_size=batch_size, verbose=0)
    predicted = np.argmax(model.predict(test.x, batch_size=batch_size, verbose=0), axis=1)
    classes = model.output_shape[-1]
    confusion = np.bincount(np.asarray(test.y, np.int64) * classes + predicted, minlength=classes * classes)
    confusion = confusion.reshape(classes, classes)  # rows = true digit, columns = predicted
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "accuracy": float(accuracy),
        "loss": float(loss),
        "samples": int(len(test)),
        "per_class_accuracy": {str(c): float(a) for c, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }, predicted


LATENCY_BATCH = 32  # volumes per predict call when latency is measured
LATENCY_WARMUP, LATENCY_REPEATS = 3, 15


def latency_ms(model: keras.Model, volumes: np.ndarray, batch: int = LATENCY_BATCH, repeats: int = LATENCY_REPEATS,
               warmup: int = LATENCY_WARMUP) -> list[float]:
    """Milliseconds per volume of model.predict_on_batch on `batch` volumes (with the model's own test-time
    views), after `warmup` calls (tracing, allocation), once per repeat; the median is what a trial reports."""
    x = np.resize(volumes, (batch, *volumes.shape[1:]))  # repeated rows if fewer volumes were given
    for _ in range(warmup):
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_on_batch(x)
        times.append((time.perf_counter() - started) * 1000 / batch)
    return times


def median_latency_ms(model: keras.Model, volumes: np.ndarray) -> float:
    return statistics.median(latency_ms(model, volumes))
