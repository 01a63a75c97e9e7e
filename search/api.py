"""The Python API: start or resume a search and get its result; open a run folder, finished or running.

The CLI is a thin layer over these functions, so a notebook and ``python -m search`` do the same thing::

    import search
    result = search.start("spaces/quick.py", samples=4, max_epochs=3)
    run = search.open_run(result.run_dir)
    run.leaderboard().head(), run.winner().params, run.test_metrics()["accuracy"], run.report
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from search import leaderboard, provenance, storage
from search import run as pipeline
from search.errors import UserError
from search.leaderboard import Pick, Records
from search.options import RunOptions
from search.provenance import RunInfo
from search.resources import Resources
from search.run import Retrained, Summary
from search.rundir import RunDir
from search.storage import Location, S3Path
from search.tuner import Trainable

__all__ = ["Pick", "Resources", "Retrained", "Run", "RunOptions", "Summary", "open_run", "resume", "start"]


def start(space: str | os.PathLike[str] | RunOptions, on_run_dir: Callable[[Location], None] | None = None,
          trainable: Trainable | None = None, **options: Any) -> Summary:
    """Search a space file (its path, with RunOptions' fields as keywords, or whole RunOptions), then retrain
    the winner and test it once; return the summary. warm_start=[RUN_DIR, ...] tells TPE the earlier runs'
    fitting trials first. on_run_dir(path) is called once the run folder exists,
    every check that needs no Ray has passed, and before Ray starts. trainable: what trains each trial
    (search.trial.run_trial by default; search.synthetic.trainable() for a pipeline without Keras)."""
    if isinstance(options.get("results"), (str, os.PathLike)):  # a folder, or s3://bucket/prefix
        options["results"] = storage.parse(options["results"])
    if "warm_start" in options:  # earlier run folders (search.warmstart), as paths or s3:// text
        options["warm_start"] = tuple(RunDir(w).path for w in options["warm_start"])
    if not isinstance(space, RunOptions):
        space = RunOptions(space_path=Path(space), **options)
    elif options:
        space = dataclasses.replace(space, **options)
    prepared = pipeline.prepare(space)
    if on_run_dir:
        on_run_dir(prepared.run_dir)
    return pipeline.start(prepared, trainable)


def resume(run_dir: str | os.PathLike[str] | S3Path, address: str | None = None, final: bool = True,
           wait_for_resources: float | None = None, samples: int | None = None,
           time_budget_s: float | None = None, trainable: Trainable | None = None) -> Summary:
    """Continue an interrupted run to its original trial budget, then retrain the winner and test it once. With
    samples or time_budget_s, extend a run whose search ended: more trials, TPE going on from every trial it saw,
    then the finalists and the final test again, into new folders (final-extend-K/). trainable: the one the run
    started with."""
    return pipeline.resume(RunDir(run_dir).path, address, final_test=final, wait_for_resources=wait_for_resources,
                           samples=samples, time_budget_s=time_budget_s, trainable=trainable)


def open_run(run_dir: str | os.PathLike[str] | S3Path) -> Run:
    """A run folder (or s3://bucket/prefix/RUN), finished or still running: each read shows what it holds now."""
    return Run(RunDir(run_dir).path)


@dataclasses.dataclass(frozen=True)
class Run:
    """A run folder read through its files (nothing here starts Ray, except final())."""

    path: Location

    @property
    def report(self) -> Location:
        """report.html (the search rewrites it as it runs; write_report() renders it now)."""
        return RunDir(self.path).report

    def info(self) -> RunInfo:
        """run.json: how the run was made and when its stages ended."""
        return provenance.read(self.path)

    def records(self) -> Records:
        """Every trial's record so far; UserError before the first result (or for a folder that is no run's)."""
        records = Records.load(self.path)
        if not records.trials:
            raise UserError(f"{self.path}: no trials recorded (not a run folder, or no trial has reported yet)")
        return records

    def leaderboard(self) -> pd.DataFrame:
        """One row per trial, best first (as leaderboard.csv)."""
        return leaderboard.leaderboard(self.records())

    def winner(self, rank: int = 1) -> Pick:
        """The best trained trial so far (after the search: best.json's), or the one ranked `rank`."""
        return self.records().pick(rank)

    def test_metrics(self) -> dict[str, Any] | None:
        """The winner's one test (accuracy, loss, per-digit accuracy, confusion matrix), once the final stage ran."""
        return RunDir(self.path).final.tested()

    def write_report(self) -> Location:
        """Render report.html and its PNGs from the folder as it is now; its path."""
        from search import report

        return report.write(self.path)

    def final(self, rank: int = 1, address: str | None = None, backend: str | None = None,
              ensemble: int | None = None, pareto: str | None = None) -> Retrained:
        """Retrain the configuration ranked `rank` on all training data and test it once (final-rank-K/); with
        pareto="latency_ms<=1.5", instead the most accurate trial within those costs (final-pareto-TRIAL/); with
        ensemble=K, instead an ensemble of K selections among the finalists (search.ensemble), retrained and
        tested once into a new final-ensemble folder (its trial_id: the members', comma-separated)."""
        if ensemble is None:
            return pipeline.final_for_rank(self.path, rank, address, backend, pareto)
        metrics, out = pipeline.final_ensemble(self.path, ensemble, address, backend)
        return Retrained(",".join(m["trial_id"] for m in metrics["members"]), metrics["accuracy"], out)
