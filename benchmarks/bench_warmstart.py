"""A warm-started search against a cold one with the same seed and budget: best validation accuracy at equal trial-epochs.

Run: .venv/bin/python benchmarks/bench_warmstart.py [--space spaces/quick.py] [--seeds 2 3 4] [--results DIR]
It runs the real command: one cold search (seed 1) as the earlier run, then for each seed a cold search and
one warm-started from the earlier run (`--warm-start`), all with --no-final (the test set is not read). Each pair
is compared at the same number of trial-epochs (the smaller of the two runs' totals, trials in the order they
first reported), and the script prints warm minus cold per seed and on average. Seeds change the validation split
too (settings.seed), so only a pair shares one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search import leaderboard  # noqa: E402
from search.protocol import Stage  # noqa: E402


def search(space: str, results: Path, name: str, seed: int, *extra: str) -> Path:
    """One search (no final test); its run folder, reused if an earlier call of this script finished it."""
    run_dir = results / name
    if not (run_dir / "best.json").exists():
        subprocess.run([sys.executable, "-m", "search", "run", space, "--seed", str(seed), "--no-final",
                        "--results", str(results), "--name", name, *extra], cwd=ROOT, check=True)
    return run_dir


def curve(run_dir: Path) -> list[float]:
    """Best validation accuracy so far after each trial-epoch: search trials in the order they first reported."""
    best, out = 0.0, []
    for record in leaderboard.Records.load(run_dir).trials.values():
        if record.stage != Stage.SEARCH:
            continue
        for epoch in sorted(record.epochs):
            best = max(best, record.epochs[epoch]["val_accuracy"])
            out.append(best)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="spaces/quick.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--results", type=Path, default=Path("/tmp/conv3d-search-warmstart-bench"))
    args = parser.parse_args()
    stem = Path(args.space).stem
    started = time.perf_counter()
    earlier = search(args.space, args.results, f"{stem}-earlier-seed1", 1)
    gains = []
    for seed in args.seeds:
        cold = curve(search(args.space, args.results, f"{stem}-cold-seed{seed}", seed))
        warm = curve(search(args.space, args.results, f"{stem}-warm-seed{seed}", seed, "--warm-start", str(earlier)))
        budget = min(len(cold), len(warm))
        gains.append(warm[budget - 1] - cold[budget - 1])
        print(f"seed {seed}: at {budget} trial-epochs best validation accuracy cold {cold[budget - 1]:.2%}, "
              f"warm {warm[budget - 1]:.2%} ({gains[-1] * 100:+.2f} points); whole runs: cold {cold[-1]:.2%} "
              f"in {len(cold)} trial-epochs, warm {warm[-1]:.2%} in {len(warm)}", flush=True)
    print(f"{args.space}, warm start from {earlier.name}: warm minus cold {sum(gains) / len(gains) * 100:+.2f} points "
          f"on average over seeds {args.seeds} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
