"""How well trials share one GPU: epochs per second of one trial alone and of 16 at once, MPS and bf16 on and off.

Each "trial" is a process that sets itself up as a search trial does (search.backend.configure with its
GPU share and precision; MPS through the node's daemon) and trains one fixed mid-size configuration with
search.train.fit. After every process has finished one epoch in a phase (compiled, warm), the rate is
counted over a fixed window: samples trained by all processes / window, in epochs of the 8000-sample
search split. Each launch runs both precisions in turn (float32, then mixed_bfloat16), so a launch
pays its start-up once. Launches: 1 process alone, 16 at once, 16 at once with MPS. The baseline is
1 alone in float32, measured in the same run. Finishes in about 2 minutes on one H200:

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py            # on the GPU machine
    python benchmarks/bench_gpu.py --cpu-smoke                  # tiny, on CPU: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIG = {  # mid-size: 3 same blocks, BatchNorm, augmentation, cosine (what the wide space's good trials look like)
    "padding": "same", "blocks": 3, "filters": 32, "batchnorm": True, "dropout": 0.25, "head": "global_avg",
    "dense_units": 128, "head_dropout": 0.25, "augment": 0.5, "learning_rate": 1e-3, "schedule": "cosine",
    "batch_size": 64, "seed": 0, "epochs": 1000, "schedule_epochs": 150, "input_mode": "occupancy",
}
SMOKE = {"input_mode": "occupancy", "padding": "same", "blocks": 1, "filters": 4, "dense_units": 8, "batch_size": 32,
         "seed": 0, "epochs": 1000}
PRECISIONS = ("float32", "mixed_bfloat16")
SPLIT_ROWS = 8000  # the search's training split: rates are given in its epochs


def worker(args: argparse.Namespace) -> None:
    """One trial-like process: for each precision, train until the parent says the phase is over."""
    import keras

    from search import backend, data, train

    backend.configure(args.cpus, args.gpus)  # as a trial: threads, GPU memory share (precision per phase below)
    volumes = data.load(args.data, "train")
    rows = slice(0, args.rows)
    volumes = data.Volumes(volumes.x[rows], volumes.y[rows])
    params = json.loads(args.params)
    log = Path(args.log)

    class Clock(keras.callbacks.Callback):
        def __init__(self, phase: str):
            super().__init__()
            self.phase = phase

        def on_epoch_end(self, epoch, logs=None):
            with log.open("a") as f:
                f.write(f"{self.phase} {time.time()}\n")
            if (log.parent / f"end-{self.phase}").exists():
                self.model.stop_training = True

    for phase in PRECISIONS:
        backend.set_precision(phase)
        train.fit(params, volumes, None, callbacks=[Clock(phase)], verbose=0, steps_per_execution=8)


def measure(name: str, processes: int, args: argparse.Namespace, data_file: Path, mps: bool) -> dict[str, float]:
    """Launch `processes` workers; per precision, the aggregate rate over the window once all are warm."""
    from search import backend

    folder = Path(tempfile.mkdtemp(prefix=f"bench-gpu-{name}-"))
    env = {**os.environ, **(backend.mps_env() if mps else {})}
    params = SMOKE if args.cpu_smoke else CONFIG
    command = [sys.executable, __file__, "--worker", "--data", str(data_file), "--rows", str(args.rows),
               "--params", json.dumps(params), "--gpus", str(0 if args.cpu_smoke else 1 / processes), "--cpus", "1"]
    errors = [open(folder / f"w{i}.err", "w") for i in range(processes)]
    workers = [subprocess.Popen([*command, "--log", str(folder / f"w{i}.log")], env=env, stdout=subprocess.DEVNULL,
                                stderr=errors[i]) for i in range(processes)]
    rates = {}
    try:
        for phase in PRECISIONS:
            start = _when_all_warm(folder, processes, phase, workers, args.warm_timeout)
            time.sleep(args.window)
            stamps = [float(t) for w in range(processes) for p, t in _lines(folder / f"w{w}.log") if p == phase]
            epochs = sum(start < t <= start + args.window for t in stamps)
            (folder / f"end-{phase}").touch()
            rates[phase] = epochs * args.rows / SPLIT_ROWS / args.window
            print(f"  {name:<14} {phase:<15} {rates[phase]:7.2f} epochs/s aggregate "
                  f"({rates[phase] / processes:.3f} per trial)", flush=True)
    finally:
        for w, err in zip(workers, errors):
            w.kill()
            err.close()
        shutil.rmtree(folder, ignore_errors=True)
    return rates


def _lines(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []


def _when_all_warm(folder: Path, processes: int, phase: str, workers: list, timeout: float) -> float:
    """The time at which every worker has finished at least one epoch of this phase (then compiling is over)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        firsts = [min((float(t) for p, t in _lines(folder / f"w{w}.log") if p == phase), default=None)
                  for w in range(processes)]
        if all(f is not None for f in firsts):
            return time.time()
        dead = [w for w, p in enumerate(workers) if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker {dead[0]} exited: {(folder / f'w{dead[0]}.err').read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"workers not warm after {timeout} s in phase {phase}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="processes sharing the GPU (default 16)")
    parser.add_argument("--window", type=float, default=6.0, help="seconds counted per measurement (default 6)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per epoch (rates are scaled to 8000-row epochs)")
    parser.add_argument("--warm-timeout", type=float, default=120.0)
    parser.add_argument("--data", type=Path, help="Kaggle-layout file (default: the regenerated one)")
    parser.add_argument("--cpu-smoke", action="store_true", help="2 tiny processes on CPU: checks the script")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.cpu_smoke:
        args.trials, args.window, args.rows = 2, 5.0, 300
    elif not shutil.which("nvidia-smi"):
        print("error: no NVIDIA GPU (nvidia-smi not found); use --cpu-smoke to check the script on CPU", file=sys.stderr)
        return 2

    from search import backend, data

    data_file = data.resolve(args.data)  # regenerated once here, not by every worker
    started = time.time()
    print(f"backend {os.environ['KERAS_BACKEND']}; config {json.dumps(SMOKE if args.cpu_smoke else CONFIG)}", flush=True)
    alone = measure("1 alone", 1, args, data_file, mps=False)
    shared = measure(f"{args.trials} at once", args.trials, args, data_file, mps=False)
    mps_status = backend.start_mps(stop_at_exit=True)
    print(f"mps: {mps_status}", flush=True)
    with_mps = measure(f"{args.trials} + MPS", args.trials, args, data_file, mps=True) if mps_status == "on" else {}
    base = alone["float32"]
    print(f"\nratio to 1 trial alone in float32 ({base:.2f} epochs/s), {time.time() - started:.0f} s in all:")
    for name, rates in (("1 alone", alone), (f"{args.trials} at once", shared), (f"{args.trials} + MPS", with_mps)):
        for phase in PRECISIONS:
            if phase in rates:  # no epoch of the baseline in its window (a loaded CPU smoke run): no ratio
                print(f"  {name:<14} {phase:<15} " + (f"{rates[phase] / base:6.2f}x" if base else "   n/a"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
