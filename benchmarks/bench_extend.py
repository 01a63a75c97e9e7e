"""A search extended once (`resume RUN --samples N`): best validation and final test accuracy, and wall time, before and after.

Run: .venv/bin/python benchmarks/bench_extend.py [--space spaces/quick.py] [--samples 3] [--results DIR]
It runs the real commands: the search with its final test, then the extension, which redoes the finalists and
the final test over the whole run into final-extend-1/. It prints each stage's figures and the extension's wall
time as a ratio of the first run's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search import leaderboard  # noqa: E402


def timed(*args: str) -> float:
    """Seconds one CLI command took (it must succeed)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", *args], cwd=ROOT, check=True)
    return time.perf_counter() - started


def figures(run_dir: Path, final: str) -> str:
    """Trials, the winner's validation accuracy and its one test, as the run folder holds them now."""
    records = leaderboard.Records.load(run_dir)
    best = records.pick()
    tested = json.loads((run_dir / final / "test_metrics.json").read_text())
    return (f"{len(records.trials)} trials, winner {best.trial_id} val_accuracy {best.val_accuracy:.2%}, "
            f"test accuracy {tested['accuracy']:.2%} (upright {tested['upright_accuracy']:.2%}, "
            f"rotated {tested['rotated_accuracy']:.2%}) in {final}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="spaces/quick.py")
    parser.add_argument("--samples", type=int, default=3, help="trials the extension adds")
    parser.add_argument("--results", type=Path, default=Path("/tmp/conv3d-search-extend-bench"))
    args = parser.parse_args()
    name = f"{Path(args.space).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = args.results / name
    first = timed("run", args.space, "--results", str(args.results), "--name", name)
    before = figures(run_dir, "final")
    extension = timed("resume", str(run_dir), "--samples", str(args.samples))
    after = figures(run_dir, "final-extend-1")
    print(f"{args.space}: search and final {first:.0f} s: {before}")
    print(f"extended by {args.samples} samples: {extension:.0f} s more ({extension / first:.2f}x the first run): {after}")


if __name__ == "__main__":
    main()
