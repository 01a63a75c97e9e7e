"""Cost of Augment3D in training: epoch time of a small Conv3D net at strength 1 vs strength 0.

Both models live in one process; after a warm-up epoch each, their timed epochs alternate so that load
from other processes hits both alike. Process CPU time is printed too: it ignores such load.
Run: .venv/bin/python benchmarks/bench_augment.py [--samples 8000] [--epochs 2]. Goal: ratio <= 1.25.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import search  # noqa: E402,F401 - first: it sets TensorFlow's oneDNN switch before keras imports TF
import keras  # noqa: E402
import numpy as np  # noqa: E402

from search.augment import Augment3D  # noqa: E402


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


def timed_epoch(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Wall and process-CPU seconds of one training epoch (the train function is traced by then)."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=100, epochs=1, verbose=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one warm-up epoch")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 16, 16, 16), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    models = {s: build_model(s) for s in (0.0, 1.0)}
    for model in models.values():  # warm-up: tracing, allocator
        timed_epoch(model, x, y)
    # Alternate the two models so load from other processes hits both alike.
    times = {s: [] for s in models}
    for _ in range(args.epochs):
        for s, m in models.items():
            times[s].append(timed_epoch(m, x, y))
    (a, a_cpu), (b, b_cpu) = (np.mean(times[s], axis=0) for s in (1.0, 0.0))
    print(f"augment=1 / augment=0 epoch time: {a / b:.2f}x (a: {a:.2f} s, b: {b:.2f} s)")
    print(f"augment=1 / augment=0 epoch CPU time: {a_cpu / b_cpu:.2f}x (a: {a_cpu:.2f} s, b: {b_cpu:.2f} s)")


if __name__ == "__main__":
    main()
