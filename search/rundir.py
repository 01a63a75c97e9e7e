"""The run folder: every file and folder a run keeps in ``results/<run-name>/``, each named here once.

Every other module asks a ``RunDir`` for a path and never spells a file name, so a reader finds the
whole layout in one screen and two modules cannot disagree about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CHECKPOINTS_KEPT = 2  # per trial, in Tune's experiment folders: the disk check counts what the tuner keeps


@dataclass(frozen=True)
class FinalDir:
    """A final retrain's folder (``final/``, ``final-rank-K/``): the model, its one test result, its predictions."""

    path: Path

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def test_metrics(self) -> Path:
        """Written last: its presence means the test was run (and is never run again)."""
        return self.path / "test_metrics.json"

    @property
    def predictions(self) -> Path:
        """row, digit, predicted: one line per test row, for the report (which never reads the test set)."""
        return self.path / "predictions.csv"


@dataclass(frozen=True)
class TrainDir(FinalDir):
    """The folder of `python -m search train`: a final folder's files (no predictions) and what was trained."""

    @property
    def params(self) -> Path:
        """The configuration, the data file and its hash, the backend."""
        return self.path / "params.json"

    @property
    def history(self) -> Path:
        """One row per epoch: training and validation metrics."""
        return self.path / "history.csv"


@dataclass(frozen=True)
class RunDir:
    """One run's folder and the name of everything in it."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def run_json(self) -> Path:
        """How the run was made and when its stages ended (search.provenance)."""
        return self.path / "run.json"

    @property
    def trials_json(self) -> Path:
        """Every trial's record, machine-readable (search.leaderboard)."""
        return self.path / "trials.json"

    @property
    def leaderboard_csv(self) -> Path:
        return self.path / "leaderboard.csv"

    @property
    def epochs_csv(self) -> Path:
        return self.path / "epochs.csv"

    @property
    def best_json(self) -> Path:
        """The winner, as the pipeline picked it after the search."""
        return self.path / "best.json"

    @property
    def report(self) -> Path:
        """report.html; each figure is also a PNG beside it (figure())."""
        return self.path / "report.html"

    def figure(self, name: str) -> Path:
        return self.path / f"{name}.png"

    @property
    def study(self) -> Path:
        """The Optuna study, in SQLite (optuna.load_study, optuna-dashboard)."""
        return self.path / "optuna.db"

    @property
    def study_url(self) -> str:
        """The study's SQLAlchemy URL, as optuna.load_study and optuna-dashboard take it."""
        return f"sqlite:///{self.study.resolve()}"

    @property
    def tune(self) -> Path:
        """Ray Tune's experiment folder of the search stage (its state, each trial's checkpoints and logs)."""
        return self.path / "tune"

    def finalists_tune(self) -> Path:
        """A new experiment folder for the finalist stage: tune-finalists, then tune-finalists-2, ... after a resume."""
        names = ("tune-finalists", *(f"tune-finalists-{i}" for i in range(2, 1000)))
        return next(self.path / n for n in names if not (self.path / n).exists())

    @property
    def final(self) -> FinalDir:
        """The winner's final retrain and test."""
        return FinalDir(self.path / "final")

    def final_for_rank(self, rank: int = 1) -> FinalDir:
        """final/ for the winner; final-rank-K/ for another rank (or for rank 1 once final/ exists)."""
        return self.final if rank == 1 and not self.final.path.exists() else FinalDir(self.path / f"final-rank-{rank}")
