"""Accuracy against size: the multi-objective search of spaces/pareto.py against the same space searched for
accuracy alone, at the same deadline, and the noise of the latency measure.

Run: .venv/bin/python benchmarks/bench_pareto.py [--results /tmp/pareto-bench]
It runs ``python -m search run spaces/pareto.py`` (accuracy and param_count) and the same space with its
objectives set to accuracy alone (same budget, seed and limits), then prints the front, the knee's test accuracy
and weights against the single-objective winner's (their ratio), each run's hypervolume on the same axes, and
the latency of both final models measured again and again in this process: the spread of its repeats and of
its medians, so a reader knows what a difference in latency_ms means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "spaces" / "pareto.py"
SMALL = 30_000  # the size final --pareto is asked to stay within
MEASUREMENTS = 7  # latency_ms calls per model, each the median of train.LATENCY_REPEATS repeats


def run(results: Path, name: str, space: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", "run", str(space), "--results", str(results), "--name", name],
                   cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("/tmp/conv3d-search-pareto-bench"))
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    single_space = args.results / "pareto_accuracy_alone.py"
    args.results.mkdir(parents=True, exist_ok=True)
    single_space.write_text(SPACE.read_text() + '\nSEARCH = {**SEARCH, "objectives": ["val_accuracy"]}\n')
    runs = {"pareto": (f"pareto-{stamp}", SPACE), "accuracy alone": (f"accuracy-{stamp}", single_space)}
    seconds = {label: run(args.results, name, space) for label, (name, space) in runs.items()}

    import keras

    from search import api, backend, objectives, train
    from search.data import load, resolve

    names = ("val_accuracy", "param_count")
    opened = {label: api.open_run(args.results / name) for label, (name, _) in runs.items()}
    search_points = {}
    for label, run_ in opened.items():
        records = run_.records()
        search_points[label] = np.array([[r.best()[1]["val_accuracy"], r.param_count] for r in records.trials.values()
                                         if r.stage == "search" and r.epochs and r.status in ("completed", "stopped")])
    worst = max(points[:, 1].max() for points in search_points.values())
    print(f"\nspaces/pareto.py on {backend.device_name()}, search stage {json.dumps({k: round(v) for k, v in seconds.items()})} s in all")
    front = opened["pareto"].records().front()
    print(f"front of the multi-objective search: {len(front)} trials, knee first")
    for record in front:
        print(f"  {record.trial_id}  val_accuracy {record.best()[1]['val_accuracy']:.4f}  param_count {record.param_count:,}")
    tested = {label: run_.test_metrics() for label, run_ in opened.items()}
    winners = {label: run_.records().pick() for label, run_ in opened.items()}
    counts = {label: opened[label].records().trials[w.trial_id].param_count for label, w in winners.items()}
    for label in runs:
        hv = objectives.hypervolume(search_points[label], names, [1.0, worst])
        print(f"{label}: winner {winners[label].trial_id} test accuracy {tested[label]['accuracy']:.4f}, "
              f"param_count {counts[label]:,}; {len(search_points[label])} search trials trained, "
              f"hypervolume {hv:.4f} (accuracy x param_count up to {worst:,.0f})")
    print(f"ratio: the knee has {counts['pareto'] / counts['accuracy alone']:.2f}x the single-objective winner's weights, "
          f"{100 * (tested['pareto']['accuracy'] - tested['accuracy alone']['accuracy']):+.1f} points of test accuracy")

    # The most accurate trial under a size, retrained and tested once (final --pareto).
    within = f"param_count<={SMALL}"
    subprocess.run([sys.executable, "-m", "search", "final", str(opened["pareto"].path), "--pareto", within],
                   cwd=ROOT, check=True)
    small = opened["pareto"].records().pick(within=within)
    small_test = storage_json(Path(opened["pareto"].path) / f"final-pareto-{small.trial_id}" / "test_metrics.json")
    print(f"final --pareto {within!r}: {small.trial_id} ({opened['pareto'].records().trials[small.trial_id].param_count:,} "
          f"weights, val_accuracy {small.val_accuracy:.4f}) test accuracy {small_test['accuracy']:.4f}")

    volumes = load(resolve(None), "train").x[: train.LATENCY_BATCH]  # the training split: latency reads no test row
    for label, run_ in opened.items():
        model = keras.models.load_model(Path(run_.path) / "final" / "model.keras")
        medians, spreads = [], []
        for _ in range(MEASUREMENTS):
            times = train.latency_ms(model, volumes)
            medians.append(statistics.median(times))
            quartiles = statistics.quantiles(times, n=4)
            spreads.append((quartiles[2] - quartiles[0]) / medians[-1])
        print(f"latency of {label}'s final model ({counts[label]:,} weights, batch {train.LATENCY_BATCH}): median "
              f"{statistics.median(medians):.3f} ms/volume; its {MEASUREMENTS} medians {min(medians):.3f}-{max(medians):.3f} "
              f"(max/min {max(medians) / min(medians):.2f}x); within a call, interquartile range "
              f"{100 * statistics.median(spreads):.1f} % of the median")


def storage_json(path: Path) -> dict:
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
