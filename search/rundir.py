"""The run folder: every file and folder a run keeps in ``results/<run-name>/``, each named here once.

Every other module asks a ``RunDir`` for a path and never spells a file name, so a reader finds the
whole layout in one screen and two modules cannot disagree about it. The folder may be a prefix in a
bucket (``s3://bucket/prefix/<run-name>/``): the same names on a ``storage.S3Path``, read and written
through search.storage.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from search import storage
from search.storage import Location, S3Path


VAL_PREDICTIONS = "val_predictions.npy"  # in a finalist's last checkpoint: its softmax on the validation split
T = TypeVar("T")
CHECKPOINT_PREFIX = "checkpoint_"  # Tune's checkpoint folders in a trial's folder: checkpoint_000000, ...
FINALISTS = "tune-finalists"  # the finalist stage's experiments: tune-finalists, then tune-finalists-2, ...
CHECKPOINTS_KEPT = 2  # per trial: the latest a stored state names, and a newer one (search.retention); the disk check counts these


@dataclass(frozen=True)
class FinalDir:
    """A final retrain's folder (``final/``, ``final-rank-K/``): the model, its one test result, its predictions."""

    path: Location

    @property
    def model(self) -> Location:
        return self.path / "model.keras"

    @property
    def test_metrics(self) -> Location:
        """Written last: its presence means the test was run (and is never run again)."""
        return self.path / "test_metrics.json"

    @property
    def predictions(self) -> Location:
        """row, digit, predicted: one line per test row, for the report (which never reads the test set)."""
        return self.path / "predictions.csv"

    def tested(self) -> dict[str, Any] | None:
        """The test metrics (with the params it trained), once its test ran; else None. The one reader of them."""
        return json.loads(storage.read_text(self.test_metrics)) if storage.is_file(self.test_metrics) else None


@dataclass(frozen=True)
class TrainDir(FinalDir):
    """The folder of `python -m search train`: a final folder's files (no predictions) and what was trained."""

    @property
    def params(self) -> Location:
        """The configuration, the data file and its hash, the backend."""
        return self.path / "params.json"

    @property
    def history(self) -> Location:
        """One row per epoch: training and validation metrics."""
        return self.path / "history.csv"


@dataclass(frozen=True)
class RunDir:
    """One run's folder and the name of everything in it: a local folder (Path) or a bucket prefix (S3Path)."""

    path: Location

    def __init__(self, path: str | os.PathLike[str] | S3Path) -> None:
        object.__setattr__(self, "path", path if isinstance(path, S3Path) else storage.parse(path))

    @property
    def name(self) -> str:
        """The run's name: its folder's."""
        return (self.path.resolve() if isinstance(self.path, Path) else self.path).name

    @property
    def local(self) -> bool:
        """Whether the run folder is on this machine's disk (else in a bucket)."""
        return isinstance(self.path, Path)

    @property
    def run_json(self) -> Location:
        """How the run was made and when its stages ended (search.provenance)."""
        return self.path / "run.json"

    @property
    def trials_json(self) -> Location:
        """Every trial's record, machine-readable (search.leaderboard)."""
        return self.path / "trials.json"

    @property
    def journal(self) -> Location:
        """The records' journal, the trials that changed as small part files (search.journal): what resume reads."""
        return self.path / "journal"

    @property
    def leaderboard_csv(self) -> Location:
        return self.path / "leaderboard.csv"

    @property
    def epochs_csv(self) -> Location:
        return self.path / "epochs.csv"

    @property
    def best_json(self) -> Location:
        """The winner, as the pipeline picked it after the search (the newest extension's that has one)."""
        return self._newest(self.best_of, storage.is_file)

    def best_of(self, extension: int) -> Location:
        """best.json, or an extension's best-extend-K.json: the winner over the whole run after that search."""
        return self.path / ("best.json" if not extension else f"best-extend-{extension}.json")

    @property
    def report(self) -> Location:
        """report.html; each figure is also a PNG beside it (figure())."""
        return self.path / "report.html"

    def figure(self, name: str) -> Location:
        return self.path / f"{name}.png"

    @property
    def study(self) -> Location:
        """The Optuna study, as Optuna's journal file (optuna.load_study with a JournalStorage, optuna-dashboard);
        in a bucket, a copy made at each stage's end."""
        return self.path / "optuna.journal"

    @property
    def study_sqlite(self) -> Path | None:
        """Where a run made before the journal (2026-12-04) kept its study: SQLite, read once into the journal."""
        return self.path / "optuna.db" if self.local else None

    @property
    def study_local(self) -> Path:
        """Where the live study is: the run folder's optuna.journal, or for a bucket a file in this machine's cache
        ($XDG_CACHE_HOME or ~/.cache, then conv3d-search/<endpoint hash>/<bucket>/<prefix>/<run>/optuna.journal),
        as Optuna's file journal needs a local disk (it appends under a file lock)."""
        if isinstance(self.study, Path):
            return self.study
        endpoint = hashlib.sha256((self.path.endpoint or "aws").encode()).hexdigest()[:8]  # one server's bucket, not another's
        cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "conv3d-search"
        return cache / endpoint / self.path.bucket / self.path.key / self.study.name

    @property
    def tune(self) -> Location:
        """Ray Tune's experiment folder of the search stage (its state, each trial's checkpoints and logs)."""
        return self.path / "tune"

    def search_tune(self, extension: int) -> Location:
        """The search stage's experiment (tune/), or an extension's: tune-extend-K/, the K-th `resume --samples`."""
        return self.tune if not extension else self.path / f"tune-extend-{extension}"

    def _extended(self) -> list[int]:
        """The numbers of the extensions that left any file or folder here, newest first (0: the run itself, last)."""
        found = {n.split("-")[2].removesuffix(".json") for n in storage.children(self.path)
                 if n.startswith(("tune-extend-", "final-extend-", "best-extend-"))}
        return sorted({0, *(int(k) for k in found if k.isdigit())}, reverse=True)

    def _newest(self, of: Callable[[int], T], made: Callable[[T], bool]) -> T:
        """of(K) for the newest extension K (0: the run itself) for which made(of(K)) holds, else of(0)."""
        return next((where for where in map(of, self._extended()) if made(where)), of(0))

    def finalists_tune(self) -> Location:
        """A new experiment folder for the finalist stage: tune-finalists, then tune-finalists-2, ... after a resume."""
        names = (FINALISTS, *(f"{FINALISTS}-{i}" for i in range(2, 1000)))
        return next(self.path / n for n in names if not storage.exists(self.path / n))

    @property
    def final(self) -> FinalDir:
        """The winner's final retrain and test: the newest that was tested (an extension's: the winner over the whole
        run then), else final/."""
        return self._newest(self.final_of, lambda final: storage.is_file(final.test_metrics))

    def final_of(self, extension: int) -> FinalDir:
        """final/, or an extension's final-extend-K/: the winner over the whole run after that search, tested once."""
        return FinalDir(self.path / ("final" if not extension else f"final-extend-{extension}"))

    def finalist_checkpoints(self, trial_id: str) -> list[Location]:
        """A finalist's checkpoint folders, newest first, in whichever finalist experiments trained it (a resumed
        one continues in the next: checkpoints.on_storage)."""
        found = []
        for experiment in finalist_experiments(storage.children(self.path)):
            trial = self.path / experiment / trial_id
            found += sorted((trial / n for n in storage.children(trial) if n.startswith(CHECKPOINT_PREFIX)),
                            key=lambda where: where.name, reverse=True)
        return found

    @property
    def final_ensemble(self) -> FinalDir:
        """The run's ensemble of finalists, retrained and tested once (search.ensemble): the newest that was tested."""
        return self._newest(self.ensemble_of, lambda final: storage.is_file(final.test_metrics))

    def ensemble_of(self, extension: int) -> FinalDir:
        """final-ensemble/, or an extension's final-extend-K-ensemble/."""
        return FinalDir(self.path / ("final-ensemble" if not extension else f"final-extend-{extension}-ensemble"))

    def new_ensemble(self) -> FinalDir:
        """A folder for another ensemble (`final --ensemble K`): final-ensemble-2, -3, ... (final-ensemble if free)."""
        names = ("final-ensemble", *(f"final-ensemble-{i}" for i in range(2, 1000)))
        return next(FinalDir(self.path / n) for n in names if not storage.exists(self.path / n))

    def final_within(self, trial_id: str) -> FinalDir:
        """final-pareto-TRIAL/: the trial `final --pareto` picked within a cost, tested once however often it is picked."""
        return FinalDir(self.path / f"final-pareto-{trial_id}")

    def final_for_rank(self, rank: int = 1) -> FinalDir:
        """final/ for the winner; final-rank-K/ for another rank (or for rank 1 once final/ exists)."""
        first = self.final_of(0)  # only a run never extended: an extension's winner goes to final-extend-K/ or here
        if rank == 1 and self._extended() == [0] and not storage.exists(first.path):
            return first
        return FinalDir(self.path / f"final-rank-{rank}")


def finalist_experiments(names: list[str]) -> list[str]:
    """Of a run folder's entries, the finalist experiments, the newest first: tune-finalists is the first,
    tune-finalists-K the K-th."""
    def order(name: str) -> int:
        suffix = name.removeprefix(FINALISTS).removeprefix("-")
        return int(suffix) if suffix.isdigit() else 1

    return sorted((n for n in names if n == FINALISTS or n.startswith(FINALISTS + "-")), key=order, reverse=True)
