"""What a GPU session's wide search showed, in the README's terms: the leaderboard's top rows, the final test
accuracy against the hand pick's, the wall time and the search's trial-epochs per minute.

    python benchmarks/session_summary.py RUN_DIR HANDPICK_DIR      (benchmarks/gpu_session.sh calls it)
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.api import open_run  # noqa: E402
from search.rundir import RunDir  # noqa: E402

COLUMNS = ["rank", "trial_id", "stage", "status", "best_val_accuracy", "epochs_trained", "blocks", "padding", "filters",
           "filter_growth", "residual", "batchnorm", "head", "augment", "learning_rate", "batch_size", "input_mode"]


def minutes_between(start: str, end: str) -> float:
    parse = lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")  # noqa: E731
    return (parse(end) - parse(start)).total_seconds() / 60


def main(run_dir: Path, handpick_dir: Path) -> int:
    run = open_run(run_dir)
    board = run.leaderboard()
    print(board[[c for c in COLUMNS if c in board]].head(8).to_string(index=False))
    info = run.info()
    epochs = pd.read_csv(RunDir(run_dir).epochs_csv, dtype={"trial_id": str})
    searched = set(board.loc[board["stage"] == "search", "trial_id"].astype(str))
    search_epochs = int(epochs["trial_id"].isin(searched).sum())
    search_minutes = minutes_between(info.started, info.search_ended)
    print(f"\nsearch: {len(searched)} trials, {search_epochs} trial-epochs in {search_minutes:.1f} min = "
          f"{search_epochs / search_minutes:.0f} trial-epochs per minute")
    metrics = run.test_metrics()
    print(f"final test accuracy: {metrics['accuracy']:.4f}" if metrics else "final test accuracy: none (no final/)")
    hand = handpick_dir / "test_metrics.json"
    print(f"hand pick test accuracy: {json.loads(hand.read_text())['accuracy']:.4f}" if hand.is_file()
          else "hand pick test accuracy: none")
    resources = info.options.resources
    print(f"run: {minutes_between(info.started, info.ended):.1f} min from start to the finalists' end; backend "
          f"{info.backend}, {resources.gpus} GPU per trial, mps {resources.mps} (daemon answering: "
          f"{info.cluster.get('mps')}), precision {resources.precision}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
