"""Epoch time of one configuration as a Ray Tune trial vs bare ``model.fit``, in the same run.

Run: .venv/bin/python benchmarks/bench_tune_overhead.py [--preset machinecurve] [--epochs 3] [--samples 8000]
The trial's epoch includes what a trial adds: the report, the checkpoint (model.keras) and Tune's loop.
Both sides get the machine's CPUs; each figure is the mean epoch after the first. Goal: <= 1.05x.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import search  # noqa: E402,F401 - first: it sets TensorFlow's oneDNN switch before keras imports TF
import numpy as np  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402

from epoch_timer import EpochTimer  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
from search import data, train  # noqa: E402
from search.params import PRESETS, validate  # noqa: E402
from search.trial import run_trial  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="machinecurve", choices=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8000)
    args = parser.parse_args()

    search_train, val = data.train_val_split(data.load(None, "train"), 0.2, seed=0)
    search_train = data.Volumes(search_train.x[: args.samples], search_train.y[: args.samples])
    params = validate({**PRESETS[args.preset], "epochs": args.epochs, "seed": 0})
    cpus = os.cpu_count() or 1

    # Bare fit first, in this process; then the same configuration as a Tune trial in a Ray worker.
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    timer = EpochTimer()
    train.fit(params, search_train, val, callbacks=[timer], verbose=0)
    bare = float(np.mean(timer.seconds[1:]))

    ray.init(num_cpus=cpus, include_dashboard=False, runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    trainable = tune.with_resources(tune.with_parameters(run_trial, train=search_train, val=val), {"cpu": cpus})
    results = tune.Tuner(
        trainable, param_space=params,
        run_config=tune.RunConfig(storage_path=os.path.abspath("/tmp/conv3d-search-bench"), verbose=0),
    ).fit()
    tuned = float(np.mean(results[0].metrics_dataframe["time_this_iter_s"].iloc[1:]))
    ray.shutdown()
    print(f"{args.preset}, {len(search_train)} samples: Tune trial {tuned:.2f} s/epoch, bare model.fit {bare:.2f} s/epoch: "
          f"{tuned / bare:.3f}x (goal <= 1.05x)")


if __name__ == "__main__":
    main()
