"""Wall time of the README's main job, ``python -m search run spaces/quick.py``, against its 15-minute budget.

Run: .venv/bin/python benchmarks/bench_quick.py [--results /tmp/quick-bench]
It runs the real command (search plus final retrain, regenerated data) and prints the ratio to 900 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BUDGET_S = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="/tmp/conv3d-search-quick-bench")
    args = parser.parse_args()
    name = f"quick-{time.strftime('%Y%m%d-%H%M%S')}"
    root = Path(__file__).resolve().parents[1]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", "run", "spaces/quick.py", "--results", args.results, "--name", name],
                   cwd=root, check=True)
    seconds = time.perf_counter() - started
    print(f"spaces/quick.py: {seconds:.0f} s wall time, {seconds / BUDGET_S:.2f}x the {BUDGET_S} s budget "
          f"(run folder {args.results}/{name})")


if __name__ == "__main__":
    main()
