"""Data-stage figures: full regeneration time, the binning's speed-up over a binary search per point, colorize
speed-up over the seeds' loop, bytes per sample.

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


def searchsorted_bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """§3.4 as the design note writes it: a binary search per point (regenerate.bin_index's baseline)."""
    return np.searchsorted(edges, values, side="left") - 1


def binning(bin_index, clouds: list[np.ndarray]) -> float:
    """Seconds to bin every point of the clouds on every axis, as voxel_counts does."""
    started = time.perf_counter()
    for points in clouds:
        lo, hi = points.min(axis=0), points.max(axis=0)
        for axis in range(3):
            bin_index(np.linspace(lo[axis] - 0.01, hi[axis] + 0.01, regenerate.BINS + 1), points[:, axis])
    return time.perf_counter() - started


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

    digits = regenerate.source_digits()["train_images"][:500]
    originals = [regenerate.point_cloud(image) for image in digits]  # and their augmented copies, as regenerate bins them
    clouds = originals + [regenerate.augmented_cloud(p, np.random.RandomState([0, i])) for i, p in enumerate(originals)]
    for points in clouds[:50]:  # the same bins, then the timing (best of 3 each, alternating)
        edges = np.linspace(points[:, 0].min() - 0.01, points[:, 0].max() + 0.01, regenerate.BINS + 1)
        assert np.array_equal(regenerate.bin_index(edges, points[:, 0]), searchsorted_bins(edges, points[:, 0]))
    search_s, arithmetic_s = (min(t) for t in zip(*[(binning(searchsorted_bins, clouds), binning(regenerate.bin_index, clouds))
                                                   for _ in range(3)]))
    print(f"binning: a binary search per point {search_s:.2f} s, regenerate.bin_index {arithmetic_s:.2f} s on "
          f"{sum(map(len, clouds)):,} points x 3 axes: {search_s / arithmetic_s:.1f}x faster, the same bins")
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
