"""Search throughput with Tune's reuse_actors on (as shipped, search.tuner.REUSE_ACTORS) against off, in the same run.

Run: .venv/bin/python benchmarks/bench_reuse.py [--samples 8] [--repeats 2]
Each search is the same: tests/spaces/steady.py (every trial trains 4 epochs, none is stopped early),
--samples trials of 1 CPU, two at a time, on the first 300 train / 100 test digits (regenerated), no
finalists and no final test, through the Python API on one local Ray started once. Trials per hour count
the search stage (run.json's "started" to "search_ended"). Modes alternate (off, on, off, on, ...) so
drifting load hits both; the ratio is of the summed times.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]

import search  # noqa: E402 - first: it sets TensorFlow's oneDNN switch before anything imports TF
from bench_nodes import small_data  # noqa: E402
from search import tuner  # noqa: E402
from search.resources import Resources  # noqa: E402


def _search_seconds(run_dir: Path) -> float:
    info = search.open_run(run_dir).info()
    started, ended = (datetime.fromisoformat(t) for t in (info.started, info.search_ended))
    return (ended - started).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = small_data(Path(tmp) / "small.h5")
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for i in range(args.repeats):
            for reuse in (False, True):
                tuner.REUSE_ACTORS = reuse
                started = time.perf_counter()
                result = search.start(ROOT / "tests" / "spaces" / "steady.py", data=str(data), results=Path(tmp),
                                      name=f"{'reuse' if reuse else 'fresh'}-{i}", samples=args.samples, final=False,
                                      resources=Resources(cpus=1, max_concurrent=2))
                seconds[reuse].append(_search_seconds(result.run_dir))
                print(f"reuse_actors={reuse}: {args.samples} trials in {seconds[reuse][-1]:.0f} s of search "
                      f"({3600 * args.samples / seconds[reuse][-1]:.0f} trials/h; "
                      f"{time.perf_counter() - started:.0f} s for the call)", flush=True)
    fresh, reused = sum(seconds[False]), sum(seconds[True])
    print(f"reuse_actors on: {reused:.0f} s, off: {fresh:.0f} s of search over {args.repeats} pair(s) -> "
          f"{fresh / reused:.2f}x the trials per hour")


if __name__ == "__main__":
    main()
