"""How well the feasibility check's multiply-adds (search.params.forward_macs) predict a trial's epoch time here:
the evidence a deadline planner's cost model needs (issue 33), measured, not assumed.

Run: .venv/bin/python benchmarks/bench_cost.py [--configs 10] [--samples 512] [--limit-s 420]

Random feasible draws of spaces/wide.py (seeded), plus the quick space's hand pick, each timed for one epoch of
--samples search-train volumes (after a warm-up epoch that compiles) with validation on a quarter as many, on one
thread, as a trial on one CPU trains. Per configuration it prints the epoch's seconds and its work: 3 x forward
multiply-adds per training volume (forward, and the two gradients) plus tta_views x forward per validation volume.
Then the fit seconds = overhead x volumes + work / rate (least squares), and how far each configuration lies
from the fit (measured / predicted). Configurations whose predicted epoch exceeds what --limit-s has left are
skipped and counted (the biggest draws of the wide space take minutes per epoch on one core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search import backend  # noqa: E402

QUICK_PICK = {"pose": "both", "fusion": "streams", "input_mode": "occupancy", "padding": "same", "blocks": 3,
              "filters": 32, "raw_stream_width": 0.5, "filter_growth": 1.0, "batchnorm": True, "dropout": 0.2,
              "dense_units": 128, "head_dropout": 0.1, "learning_rate": 2e-3, "schedule": "cosine", "batch_size": 64}


def work(p: dict, train: int, val: int) -> float:
    """Multiply-adds of one epoch: 3 x forward per training volume, tta_views x forward per validation volume."""
    from search import params

    forward = params.forward_macs(p)
    return 3.0 * forward * train + forward * p.get("tta_views", 1) * val


def timed_epoch(p: dict, train, val) -> float:
    """Seconds of the second of two epochs (the first compiles), validation included, as a trial trains."""
    from epoch_timer import EpochTimer

    from search import train as training

    timer = EpochTimer()
    training.fit(p, train, val, callbacks=[timer], verbose=0)
    return timer.seconds[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10, help="random draws of the wide space (default 10)")
    parser.add_argument("--samples", type=int, default=512, help="training volumes per timed epoch (default 512)")
    parser.add_argument("--limit-s", type=float, default=420.0, help="stop starting configurations after this long")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend.choose(None)
    backend.configure(1)  # one thread: a trial on one CPU
    from search import bridge, data, params

    volumes = data.load_train(data.resolve(None))
    train, val = data.train_val_split(volumes, 0.2, seed=0)
    n_val = max(1, args.samples // 4)
    train = data.Volumes(train.x[: args.samples], train.y[: args.samples])
    val = data.Volumes(val.x[:n_val], val.y[:n_val])
    space = bridge.load_space("spaces/wide.py")
    study = bridge.throwaway_study(args.seed)
    configs = [("quick pick", bridge.complete(space.settings, QUICK_PICK))]
    while len(configs) < args.configs + 1:
        p = bridge.sample(space, study.ask())
        if params.check(p) is None:
            configs.append((f"wide draw {len(configs)}", p))

    started, rows, skipped = time.perf_counter(), [], 0
    print(f"{'configuration':<14} {'GMAC/vol':>9} {'epoch s':>8}  (one thread, {args.samples} + {n_val} volumes)", flush=True)
    for name, p in configs:
        p = {**p, "epochs": 2}
        left = args.limit_s - (time.perf_counter() - started)
        if rows:  # predicted from the rate seen so far: skip what would not end in time
            rate = sum(w for _, w, _ in rows) / sum(s for s, _, _ in rows)
            if 2.5 * work(p, len(train), len(val)) / rate > left:
                skipped += 1
                print(f"{name:<14} {params.forward_macs(p) / 1e9:9.3f} {'skipped':>8}", flush=True)
                continue
        seconds = timed_epoch(p, train, val)
        rows.append((seconds, work(p, len(train), len(val)), len(train) + len(val)))
        print(f"{name:<14} {params.forward_macs(p) / 1e9:9.3f} {seconds:8.2f}", flush=True)

    seconds = np.array([r[0] for r in rows])
    design = np.array([[r[2], r[1]] for r in rows], dtype=float)
    (overhead, per_mac), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    if overhead < 0 or per_mac <= 0:  # no overhead term: the plain ratio
        overhead, per_mac = 0.0, seconds.sum() / design[:, 1].sum()
    predicted = design[:, 0] * overhead + design[:, 1] * per_mac
    ratio = seconds / predicted
    log_r = np.corrcoef(np.log(design[:, 1]), np.log(seconds))[0, 1]
    print(f"\n{len(rows)} timed, {skipped} skipped; fit: {overhead * 1e3:.3f} ms per volume + work at "
          f"{1 / per_mac / 1e9:.1f} GMAC/s")
    print(f"measured / predicted: min {ratio.min():.2f}x, median {np.median(ratio):.2f}x, max {ratio.max():.2f}x; "
          f"correlation of log work and log seconds {log_r:.3f}; epoch seconds span {seconds.max() / seconds.min():.0f}x")


if __name__ == "__main__":
    main()
