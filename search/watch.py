"""What a person looks at a run with, wired into Ray Tune by the pipeline: TensorBoard logs and the Optuna study.

Tune names each trial's folder by its trial id, so `tensorboard --logdir RUN_DIR` shows the trials side by
side under the ids the leaderboard uses; the study lives in a SQLite file (RunDir.study_local: the
run folder's, or for a run in a bucket this machine's cache), where ``optuna.load_study`` and optuna-dashboard
read it; a bucket also gets a copy at each stage's end (export_study), and Tune's searcher state carries one
(tuner.StudySearch), so a resume on another machine finds it.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, TBXLoggerCallback

from search import storage
from search.rundir import RunDir
from search.storage import Location


def study_name(run_dir: Location) -> str:
    """The study's name: the run folder's."""
    return RunDir(run_dir).name


def optuna_storage(run_dir: Location) -> dict[str, Any]:
    """OptunaSearch's storage arguments: the run's SQLite study (created, or loaded on resume), on this machine's disk."""
    import optuna

    RunDir(run_dir).study_local.parent.mkdir(parents=True, exist_ok=True)
    return {"storage": optuna.storages.RDBStorage(RunDir(run_dir).study_url), "study_name": study_name(run_dir)}


def export_study(run_dir: Location) -> None:
    """For a run in a bucket, put a copy of the live study at RunDir.study (whole), where the report and users find it."""
    from search import tuner

    where = RunDir(run_dir)
    data = None if where.local else tuner.study_bytes(where.path)
    if data is not None:
        storage.write_bytes(where.study, data)


def tune_loggers() -> list[LoggerCallback]:
    """Tune's CSV and JSON loggers and a TensorBoard logger, given explicitly (Tune's automatic ones print a /tmp/ray hint)."""
    return [CSVLoggerCallback(), JsonLoggerCallback(), TensorBoard()]


class TensorBoard(LoggerCallback):
    """Tune's own TBXLoggerCallback, held rather than subclassed: Tune prints a misleading
    `tensorboard --logdir /tmp/ray/...` hint whenever one of the callbacks *is* a TBXLoggerCallback."""

    def __init__(self):
        self.tbx = TBXLoggerCallback()

    def log_trial_start(self, trial) -> None:
        self.tbx.log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        self.tbx.log_trial_result(iteration, trial, result)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        self.tbx.log_trial_end(trial, failed)
