"""Search throughput (trials per hour) on a local cluster with 1 worker node, then 2, of 1 CPU each.

Run: .venv/bin/python benchmarks/bench_nodes.py [--samples 8] [--repeats 2] [--pin-cpus]
Each size gets a fresh local cluster (Ray's ray.cluster_utils.Cluster through tests/clusters.py: a
0-CPU head plus N 1-CPU worker nodes, each its own raylet) and the same search: tests/spaces/steady.py
(every trial trains 4 epochs, none is stopped early) on the first 300 train / 100 test digits, regenerated. Trials per hour counts the
search phase, from run.json's "started" to "ended" (Tune's fit, whole seconds); the whole command's
wall time, with its fixed start-up, is printed beside it, and so is how busy the workers were (the
trials' own train_seconds over workers x search time: the rest is actor start-up and scheduling).
Sizes alternate (1, 2, 1, 2, ...) so drifting load hits both; the ratio is of the summed times.
Goal: 2 workers >= 1.8x of 1.

First it measures the machine's own ceiling, without Ray: the same small model fitted in one
process alone, then in two processes at once (one TensorFlow thread each, as a 1-CPU trial has).
Two at once can't give more than that ratio, whatever the scheduler does.

--pin-cpus confines each worker node (its raylet and every process it starts) to a core of its own,
and each bare fit likewise, as on real 1-CPU machines (Ray's num_cpus only counts, it doesn't
confine): unpinned, a lone "1-CPU" trial's TensorFlow also uses the idle second core (its input
pipeline's threads), which flatters the 1-worker figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from clusters import local_cluster  # noqa: E402
from search.data import h5file, regenerate  # noqa: E402


def small_data(path: Path) -> Path:
    digits = regenerate.source_digits()
    x_train, y_train = regenerate.regenerate_split(digits["train_images"][:300], digits["train_labels"][:300], seed=0)
    x_test, y_test = regenerate.regenerate_split(digits["test_images"][:100], digits["test_labels"][:100], seed=1)
    h5file.write(path, {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test})
    return path


_FIT = """
import sys, time
from search import backend, data, params, train
backend.configure(1)
fit_set, val_set = data.train_val_split(data.load(sys.argv[1], "train"), 0.2, seed=0)
config = params.validate({"input_mode": "occupancy", "padding": "same", "blocks": 2, "filters": 8,
                          "dense_units": 16, "epochs": 8, "seed": 0})
started = time.perf_counter()
train.fit(config, fit_set, val_set, verbose=0)
print(time.perf_counter() - started)
"""


def bare_fits(data: Path, at_once: int, pin: bool) -> list[float]:
    """Seconds of `at_once` identical fits run in parallel processes (TensorFlow import not timed)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cores = sorted(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-c", _FIT, str(data)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              preexec_fn=(lambda c=cores[i]: os.sched_setaffinity(0, {c})) if pin else None)
             for i in range(at_once)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def search_on(workers: int, data: Path, results: Path, samples: int, repeat: int, pin: bool) -> dict:
    cores = sorted(os.sched_getaffinity(0))
    if pin and workers > len(cores):
        sys.exit(f"--pin-cpus needs a core per worker node: {workers} nodes, {len(cores)} cores")
    with local_cluster(workers=0) as nodes:
        for i in range(workers):  # a node's processes inherit the affinity its raylet was started with
            os.sched_setaffinity(0, {cores[i]} if pin else cores)
            try:
                nodes.cluster.add_node(num_cpus=1, node_name=f"worker-{i + 1}")
            finally:
                os.sched_setaffinity(0, cores)
        nodes.cluster.wait_for_nodes()
        name = f"nodes-{workers}-{repeat}"
        results.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(results / f"{name}.log", "w") as log:  # the driver's output; printed if it fails
            done = subprocess.run([sys.executable, "-m", "search", "run", str(ROOT / "tests" / "spaces" / "steady.py"),
                                   "--data", str(data), "--results", str(results), "--name", name,
                                   "--address", nodes.address, "--samples", str(samples), "--no-final"],
                                  cwd=ROOT, env={**os.environ, **nodes.env}, stdout=log, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n" + "\n".join((results / f"{name}.log").read_text().splitlines()[-30:]))
    run = json.loads((results / name / "run.json").read_text())
    trials = json.loads((results / name / "trials.json").read_text()).values()
    parse = lambda stamp: datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")  # noqa: E731
    search_s = (parse(run["ended"]) - parse(run["started"])).total_seconds()
    busy = sum(t["train_seconds"] for t in trials) / (workers * search_s)
    return {"workers": workers, "trials": samples, "search_s": search_s, "wall_s": wall,
            "trials_per_hour": samples * 3600 / search_s, "busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="trials per search (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="searches per cluster size (default 2)")
    parser.add_argument("--pin-cpus", action="store_true", help="each worker node (and bare fit) on a core of its own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = small_data(Path(tmp) / "small.h5")
        alone, together = bare_fits(data, 1, args.pin_cpus), bare_fits(data, 2, args.pin_cpus)
        ceiling = 2 * alone[0] / (sum(together) / 2)
        print(f"no Ray: one fit alone {alone[0]:.1f} s, two at once {together[0]:.1f} s and {together[1]:.1f} s: "
              f"the machine's ceiling for 2 vs 1 is {ceiling:.2f}x", flush=True)
        rows = [search_on(n, data, Path(tmp) / "results", args.samples, r, args.pin_cpus)
                for r in range(args.repeats) for n in (1, 2)]
    for row in rows:
        print(f"{row['workers']} worker node(s): {row['trials']} trials, search {row['search_s']:.0f} s "
              f"({row['trials_per_hour']:.0f} trials/hour, workers {row['busy']:.0%} busy training), "
              f"whole command {row['wall_s']:.0f} s")
    total = {n: {k: sum(r[k] for r in rows if r["workers"] == n) for k in ("search_s", "wall_s")} for n in (1, 2)}
    print(f"2 vs 1 worker nodes: {total[1]['search_s'] / total[2]['search_s']:.2f}x trials/hour "
          f"(whole command {total[1]['wall_s'] / total[2]['wall_s']:.2f}x), {args.repeats} searches each, "
          f"{'pinned' if args.pin_cpus else 'unpinned'}; goal >= 1.8x")


if __name__ == "__main__":
    main()
