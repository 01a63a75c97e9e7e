"""What a person looks at a run with, wired into Ray Tune by the pipeline: TensorBoard logs.

Tune names each trial's folder by its trial id, so `tensorboard --logdir RUN_DIR` shows the trials side by
side under the ids the leaderboard uses. (The Optuna study, the other thing to look at, is search.study.)
"""

from __future__ import annotations

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, TBXLoggerCallback


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
