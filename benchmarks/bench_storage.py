"""Cost of a run folder in S3 against a local one: the time to the first trial result, and per checkpoint.

One tiny Tune experiment (a function trainable, no Keras: what is measured is storage) runs with its storage in
a local temp folder and in a bucket on SeaweedFS (tests/s3.py, the tests' server, on loopback), alternating
local/S3 in one Ray session so that load from other processes hits both alike. Each iteration reports a
checkpoint of --checkpoint-mb (a model.keras of the seed presets is 1-10 MB); a checkpoint's cost is the time
tune.report takes with it, measured inside the trial (Tune uploads the checkpoint before report returns).
Loopback S3 is a lower bound on a real endpoint's cost: add the network's latency per request and its bandwidth.
Run: .venv/bin/python benchmarks/bench_storage.py [--repeats 5] [--iterations 5] [--checkpoint-mb 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the server helper is the tests' own (tests/s3.py), not a copy

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune import Callback  # noqa: E402

from s3 import seaweedfs  # noqa: E402
from search import storage  # noqa: E402


def trainable(config):
    """config['iterations'] reports, each with a checkpoint of config['bytes'] random bytes; reports the
    previous report's duration (the checkpoint's upload) in the next one."""
    import os
    import tempfile
    import time

    from ray import tune

    previous = 0.0
    for i in range(config["iterations"]):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "model.keras"), "wb") as out:
                out.write(os.urandom(config["bytes"]))
            started = time.perf_counter()
            tune.report({"i": i + 1, "previous_report_s": previous}, checkpoint=tune.Checkpoint.from_directory(folder))
            previous = time.perf_counter() - started
    tune.report({"i": config["iterations"] + 1, "previous_report_s": previous})  # the last checkpoint's time


class FirstResult(Callback):
    """When the first result of any trial reached the driver, and every report's checkpoint time."""

    def __init__(self):
        self.first: float | None = None
        self.report_s: list[float] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.first = self.first or time.perf_counter()
        if result["i"] > 1:
            self.report_s.append(result["previous_report_s"])


def one_experiment(where: storage.Location, iterations: int, size: int) -> tuple[float, list[float], float]:
    """(seconds from Tuner.fit to the first result, each checkpoint's seconds, the whole fit's) for one trial."""
    callback = FirstResult()
    started = time.perf_counter()
    tune.Tuner(
        trainable, param_space={"iterations": iterations, "bytes": size},
        run_config=tune.RunConfig(name="tune", callbacks=[callback], verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                                  **storage.tune_storage(where)),
    ).fit()
    return callback.first - started, callback.report_s, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="experiments per storage (alternating)")
    parser.add_argument("--iterations", type=int, default=5, help="checkpoints per experiment")
    parser.add_argument("--checkpoint-mb", type=float, default=4.0)
    args = parser.parse_args()
    size = int(args.checkpoint_mb * 2**20)

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as scratch, seaweedfs(Path(scratch) / "weed") as server:
        os.environ.update(server.env())
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"  # checkpoints every ~0.1 s on purpose
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # with verbose=0: no progress tables
        logging.getLogger("ray").setLevel(logging.ERROR)  # Tune's per-experiment lines would bury the table
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": server.env()})
        try:
            first: dict[str, list[float]] = {"local": [], "s3": []}
            per: dict[str, list[float]] = {"local": [], "s3": []}
            whole: dict[str, list[float]] = {"local": [], "s3": []}
            one_experiment(Path(scratch) / "warm-up", 1, 1024)  # Ray's first actor start is paid by nobody
            for repeat in range(args.repeats):
                for kind in ("local", "s3"):
                    where = (Path(scratch) / f"local-{repeat}" if kind == "local"
                             else storage.parse(server.uri(f"bench-{repeat}")))
                    seconds, report_s, fit_s = one_experiment(where, args.iterations, size)
                    first[kind].append(seconds)
                    per[kind].extend(report_s)
                    whole[kind].append(fit_s)
        finally:
            ray.shutdown()

    print(f"\n{args.repeats} experiments per storage, 1 trial x {args.iterations} checkpoints of "
          f"{args.checkpoint_mb:g} MB, S3 = SeaweedFS {server.endpoint} (loopback)")
    print(f"{'':30}{'local':>10}{'s3':>10}{'s3/local':>10}")
    for label, values in (("first result (s, median)", first), ("per checkpoint (s, median)", per),
                          ("whole experiment (s, median)", whole)):
        local, s3 = statistics.median(values["local"]), statistics.median(values["s3"])
        print(f"{label:30}{local:10.3f}{s3:10.3f}{s3 / local:10.2f}")


if __name__ == "__main__":
    main()
