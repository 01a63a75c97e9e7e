"""Cost of Augment3D in training: epoch time of a small Conv3D net at strength 1 vs strength 0.

Run: .venv/bin/python benchmarks/bench_augment.py [--samples 8000] [--epochs 2]. Goal: ratio <= 1.25.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from search.augment import Augment3D  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def build_model(strength: float, n: int = 16) -> keras.Model:
    """The benchmark net: Augment3D -> two Conv3D/MaxPool blocks -> Dense(256) -> Dense(10)."""
    model = keras.Sequential(
        [
            keras.Input((n, n, n), dtype="float32"),
            Augment3D(strength, seed=0),
            keras.layers.Reshape((n, n, n, 1)),
            keras.layers.Conv3D(32, 3, padding="valid", activation="relu"),
            keras.layers.MaxPool3D(),
            keras.layers.Conv3D(64, 3, padding="valid", activation="relu"),
            keras.layers.MaxPool3D(),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def epoch_time(strength: float, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Mean time of `epochs` epochs after one warm-up epoch (tracing, allocator warm-up)."""
    timer = EpochTimer()
    build_model(strength).fit(x, y, batch_size=100, epochs=1 + epochs, callbacks=[timer], verbose=0)
    return float(np.mean(timer.times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one warm-up epoch")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 16, 16, 16), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    b = epoch_time(0.0, x, y, args.epochs)
    a = epoch_time(1.0, x, y, args.epochs)
    print(f"augment=1 / augment=0 epoch time: {a / b:.2f}x (a: {a:.2f} s, b: {b:.2f} s)")


if __name__ == "__main__":
    main()
