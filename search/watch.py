"""What a person looks at a run with, wired into Ray Tune: TensorBoard logs and the Optuna study, in the run folder.

Each trial's folder is named by its trial id, so `tensorboard --logdir RUN_DIR` shows the trials side by side
under the ids the leaderboard uses; the study lives in ``RUN_DIR/optuna.db`` (SQLite), where
``optuna.load_study`` and optuna-dashboard read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, TBXLoggerCallback

from search.report import study_url


def study_name(run_dir: Path) -> str:
    """The study's name: the run folder's."""
    return Path(run_dir).resolve().name


def optuna_storage(run_dir: Path) -> dict[str, Any]:
    """OptunaSearch's storage arguments: the run's SQLite study (created, or loaded on resume)."""
    import optuna

    return {"storage": optuna.storages.RDBStorage(study_url(run_dir)), "study_name": study_name(run_dir)}


def trial_dirname(trial) -> str:
    """A trial's folder under tune/: its trial id (Tune's default name is a long list of its parameters)."""
    return trial.trial_id


def tune_loggers() -> list[LoggerCallback]:
    """Tune's CSV and JSON loggers and a TensorBoard logger, given explicitly (see tuner: no /tmp/ray hint)."""
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
