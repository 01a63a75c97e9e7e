"""What a person looks at a run with, wired into Ray Tune by the pipeline: TensorBoard logs and the Optuna study.

Tune names each trial's folder by its trial id, so `tensorboard --logdir RUN_DIR` shows the trials side by
side under the ids the leaderboard uses; the study lives in the run folder's SQLite file (RunDir.study),
where ``optuna.load_study`` and optuna-dashboard read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, TBXLoggerCallback

from search.rundir import RunDir


def study_name(run_dir: Path) -> str:
    """The study's name: the run folder's."""
    return Path(run_dir).resolve().name


def optuna_storage(run_dir: Path) -> dict[str, Any]:
    """OptunaSearch's storage arguments: the run's SQLite study (created, or loaded on resume)."""
    import optuna

    return {"storage": optuna.storages.RDBStorage(RunDir(run_dir).study_url), "study_name": study_name(run_dir)}


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
