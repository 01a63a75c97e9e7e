"""GPU throughput of a fixed small search: trial-epochs per minute and how busy the GPU was, before vs after.

The same 16 trials of one mid-size configuration (10 epochs each, the full 8000-sample search split)
run twice on one local Ray, in this process:
  before: a checkpoint (model.keras) every epoch, steps_per_execution 1, the CSVs rewritten at every result;
  after:  the defaults (Settings: checkpoint_every, steps_per_execution; CSVs at most once a second
          between checkpoints).
A thread samples `nvidia-smi --query-gpu=utilization.gpu` every 0.5 s (pynvml if importable). Runs
under JAX without TensorFlow (KERAS_BACKEND=jax is the default here):

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --gpus-per-trial 0.0625
    python benchmarks/bench_gpu.py --cpu-smoke      # tiny, on CPU: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIG = {  # mid-size: 3 same blocks, BatchNorm, augmentation, cosine (what the wide space's good trials look like)
    "padding": "same", "blocks": 3, "filters": 32, "batchnorm": True, "dropout": 0.25, "head": "global_avg",
    "dense_units": 128, "head_dropout": 0.25, "augment": 0.5, "learning_rate": 1e-3, "schedule": "cosine",
    "batch_size": 64, "seed": 0,
}
SMOKE = {"input_mode": "occupancy", "padding": "same", "blocks": 1, "filters": 4, "dense_units": 8, "batch_size": 32,
         "seed": 0}


class GpuSampler(threading.Thread):
    """GPU utilization (0-100) every `every` seconds while running."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # noqa: BLE001 - no pynvml: nvidia-smi
            self.read = lambda: float(subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, check=True).stdout.split()[0])

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.samples.append(self.read())
            except Exception:  # noqa: BLE001 - a missed sample is not a failed benchmark
                pass
            time.sleep(self.every)

    def stop(self) -> list[float]:
        self.done.set()
        self.join()
        return self.samples


def gpu_present() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return done.returncode == 0 and "GPU" in done.stdout


def run_stage(name, trial_plan, write_every, configs, train, val, resources, sample_gpu):
    from ray import tune

    from search import tuner
    from search.protocol import Stage

    tuner.RecordKeeper.WRITE_EVERY_S = write_every
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-gpu-{name}-"))
    seen: dict[str, list[float]] = {}

    class Clock(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            seen.setdefault(trial.trial_id, []).append(time.monotonic())

    run_config = tuner._run_config(run_dir, "tune", Stage.SEARCH)
    run_config.callbacks.append(Clock())
    t = tune.Tuner(
        tuner._trainable(train, val, resources, trial_plan),
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", search_alg=tuner.FixedConfigs(configs),
                                    num_samples=len(configs), reuse_actors=False),
        run_config=run_config,
    )
    sampler = GpuSampler() if sample_gpu else None
    if sampler:
        sampler.start()
    started = time.monotonic()
    t.fit()
    wall = time.monotonic() - started
    util = sampler.stop() if sampler else []
    epochs = sum(len(v) for v in seen.values())
    per_epoch = [(v[-1] - v[0]) / (len(v) - 1) for v in seen.values() if len(v) > 1]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"name": name, "wall_s": wall, "trial_epochs": epochs, "per_min": 60 * epochs / wall,
            "trial_s_per_epoch": statistics.median(per_epoch) if per_epoch else float("nan"),
            "gpu_util_mean": statistics.mean(util) / 100 if util else float("nan"),
            "gpu_busy_fraction": sum(u > 0 for u in util) / len(util) if util else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0625)
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--cpu-smoke", action="store_true", help="2 tiny trials of 2 epochs on 300 samples, no GPU")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.trials, args.epochs, args.gpus_per_trial = 2, 2, 0.0
    elif not gpu_present():
        print("error: no NVIDIA GPU found (nvidia-smi -L lists none); this benchmark measures one. "
              "Use --cpu-smoke to check the script on CPU.", file=sys.stderr)
        return 2

    from search import backend, data

    keras_backend = backend.choose(None)
    from search import connection
    from search.settings import Settings
    from search.trial import Plan
    from search.resources import Resources

    train, val = data.train_val_split(data.load(data.resolve(None), "train"), 0.2, seed=0)
    if args.cpu_smoke:
        train, val = data.Volumes(train.x[:240], train.y[:240]), data.Volumes(val.x[:60], val.y[:60])
    params = {**(SMOKE if args.cpu_smoke else CONFIG), "epochs": args.epochs, "schedule_epochs": args.epochs}
    configs = [dict(params) for _ in range(args.trials)]
    connection.connect(None, keras_backend=keras_backend)
    resources = Resources(args.cpus_per_trial, args.gpus_per_trial)
    defaults = Settings()
    stages = [("before", Plan(checkpoint_every=1, steps_per_execution=1), 0.0),
              ("after", Plan(checkpoint_every=defaults.checkpoint_every,
                             steps_per_execution=defaults.steps_per_execution), 1.0)]
    print(f"{args.trials} trials x {args.epochs} epochs, {len(train)} samples, backend {keras_backend}, "
          f"{args.gpus_per_trial} GPU and {args.cpus_per_trial} CPU per trial", flush=True)
    results = [run_stage(name, p, write_every, configs, train, val, resources, not args.cpu_smoke)
               for name, p, write_every in stages]
    for r in results:
        print(f"{r['name']:>6}: {r['trial_epochs']} trial-epochs in {r['wall_s']:.1f} s = {r['per_min']:.1f} per minute; "
              f"a trial's epoch {r['trial_s_per_epoch']:.2f} s (median); GPU utilization mean {r['gpu_util_mean']:.2f}, "
              f"busy (>0 %) {r['gpu_busy_fraction']:.2f} of samples")
    before, after = results
    print(f"ratio after/before: {after['per_min'] / before['per_min']:.2f}x trial-epochs per minute, "
          f"{after['gpu_util_mean'] / before['gpu_util_mean'] if not args.cpu_smoke else float('nan'):.2f}x GPU utilization")
    return 0


if __name__ == "__main__":
    sys.exit(main())
