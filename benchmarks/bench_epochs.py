"""Epoch seconds of each seed preset on the real (regenerated) training split, with augment 0 and 1.

Run: .venv/bin/python benchmarks/bench_epochs.py [--presets machinecurve medium notebook] [--samples 8000]
Each figure is the mean of --epochs timed epochs after one warm-up epoch; the ratio is augment 1 / 0.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import search  # noqa: E402,F401 - first: it sets TensorFlow's oneDNN switch before keras imports TF
import numpy as np  # noqa: E402

from epoch_timer import EpochTimer  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
from search import data, train  # noqa: E402
from search.params import PRESETS, validate  # noqa: E402


def epoch_seconds(params: dict, volumes: data.Volumes, epochs: int) -> float:
    timer = EpochTimer()
    train.fit(validate({**params, "epochs": 1 + epochs, "seed": 0}), volumes, None, callbacks=[timer], verbose=0)
    return float(np.mean(timer.seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--samples", type=int, default=8000, help="training samples per epoch (8000 = the 80 %% split)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs after one warm-up epoch")
    args = parser.parse_args()

    search_train, _ = data.train_val_split(data.load(None, "train"), 0.2, seed=0)
    volumes = data.Volumes(search_train.x[: args.samples], search_train.y[: args.samples])
    print(f"{len(volumes)} samples per epoch, {os.cpu_count()} CPUs")
    for name in args.presets:
        plain = epoch_seconds({**PRESETS[name], "augment": 0.0}, volumes, args.epochs)
        augmented = epoch_seconds({**PRESETS[name], "augment": 1.0}, volumes, args.epochs)
        print(f"{name:>12}: {plain:6.1f} s/epoch at augment 0, {augmented:6.1f} s at augment 1: "
              f"{augmented / plain:.2f}x (goal <= 1.25x)", flush=True)


if __name__ == "__main__":
    main()
