"""Wall time and final test accuracy of the README's main job, ``python -m search run spaces/quick.py``, from cold.

Run: .venv/bin/python benchmarks/bench_quick.py [--results /tmp/quick-bench] [--warm-cache]
It runs the real command (data regeneration into an empty cache, search, final retrain and test) and
prints the ratio to the 600 s budget and the test accuracy against the tutorial's 65.6 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 10 * 60
TUTORIAL = 0.656  # the MachineCurve tutorial's test accuracy on this split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="/tmp/conv3d-search-quick-bench")
    parser.add_argument("--warm-cache", action="store_true", help="reuse the cached dataset instead of regenerating it")
    args = parser.parse_args()
    name = f"quick-{time.strftime('%Y%m%d-%H%M%S')}"
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    if not args.warm_cache:  # as on a fresh machine: the dataset is regenerated inside the timed command
        env["CONV3D_SEARCH_CACHE"] = tempfile.mkdtemp(prefix="conv3d-search-cache-")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", "run", "spaces/quick.py", "--results", args.results, "--name", name],
                   cwd=root, check=True, env=env)
    seconds = time.perf_counter() - started
    run_dir = Path(args.results) / name
    accuracy = json.loads((run_dir / "final" / "test_metrics.json").read_text())["accuracy"]
    print(f"spaces/quick.py: {seconds:.0f} s wall time, {seconds / BUDGET_S:.2f}x the {BUDGET_S} s budget; "
          f"final test accuracy {accuracy:.1%} vs the tutorial's {TUTORIAL:.1%} ({(accuracy - TUTORIAL) * 100:+.1f} points); "
          f"run folder {run_dir}")


if __name__ == "__main__":
    main()
