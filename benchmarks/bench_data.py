"""Data-stage figures: full regeneration time, colorize speed-up over the seeds' loop, bytes per sample.

Run: .venv/bin/python benchmarks/bench_data.py [--samples 12000]
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np
from matplotlib import cm

from search import data
from search.data import regenerate


def seeds_rgb_loop(volumes: np.ndarray) -> np.ndarray:
    """The seeds' transform: a ScalarMappable per sample, RGB of its RGBA, stacked as float32."""
    out = [cm.ScalarMappable(cmap="Oranges").to_rgba(v.reshape(-1))[:, :3].reshape(16, 16, 16, 3) for v in volumes]
    return np.asarray(out, dtype=np.float32)


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=12000, help="volumes for the colorize comparison")
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()

    if not args.skip_generation:
        arrays, seconds = timed(regenerate.regenerate)
        volumes = np.concatenate([arrays["X_train"], arrays["X_test"]]).reshape(-1, 16, 16, 16)
        print(f"generation: {seconds:.1f} s for {len(volumes)} volumes (goal <= 60 s)")
    else:
        volumes = np.concatenate([data.load(None, "train").x, data.load(None, "test").x]) / 255.0
    volumes = volumes[: args.samples]

    # Ours first: measured after the loop, it paid for the loop's memory churn (3 s instead of 1.1 s).
    ours, vector_s = timed(data.colorize, volumes)
    reference, loop_s = timed(seeds_rgb_loop, volumes)
    assert np.abs(ours - reference).max() <= 1e-6
    print(f"colorize: seeds' loop {loop_s:.2f} s, vectorized {vector_s:.2f} s on {len(volumes)} volumes: "
          f"{loop_s / vector_s:.1f}x faster (goal >= 5x), max |diff| {np.abs(ours - reference).max():.1e}")

    levels = data.Volumes(data.colormap_indices(volumes), np.zeros(len(volumes), np.uint8))
    buffers: list = []
    shipped = len(pickle.dumps(levels, protocol=5, buffer_callback=buffers.append)) + sum(b.raw().nbytes for b in buffers)
    rgb_bytes = reference.nbytes / len(volumes)
    print(f"bytes per sample: held {levels.nbytes / len(volumes):.0f}, shipped {shipped / len(volumes):.0f} "
          f"(pickle protocol 5, as Ray serializes numpy), seeds' float32 RGB {rgb_bytes:.0f}: "
          f"{levels.nbytes / len(volumes) / rgb_bytes:.3f}x (goal <= 0.1)")


if __name__ == "__main__":
    main()
