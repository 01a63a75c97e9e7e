"""The run protocol: what a trial reports and the driver records, in one place.

The statuses, the metric Tune optimizes, the stages, the keys a Tune config carries beside the
hyperparameters (a baseline's name, a finalist's origin, an injected fault), and a stage's Plan. Trials, the tuner, the
leaderboard and the tests all speak it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

METRIC = "val_accuracy"  # what ASHA and TPE maximize, and what the leaderboard ranks by


class Status(StrEnum):
    """How a trial stands or ended. Values are words pandas reads back as text ("nan" would come back as NaN)."""

    RUNNING = "running"
    COMPLETED = "completed"  # trained its whole epoch budget
    STOPPED = "stopped"  # ended before its epoch budget: by the scheduler (ASHA), or by the search's time budget
    BASELINE = "baseline"  # a reference configuration (a seed preset) that trained cleanly beside the search
    INFEASIBLE = "infeasible"  # its architecture cannot be built; reported without training
    DIVERGED = "diverged"  # its loss became NaN or inf
    OOM = "oom"  # outgrew its memory share
    ERROR = "error"  # any other exception
    LOST = "lost"  # started by a driver that died before Ray saved it; the resumed run trained another


ENDED_BY_TRIAL = frozenset({Status.COMPLETED, Status.INFEASIBLE, Status.DIVERGED, Status.OOM, Status.ERROR})
ENDED = ENDED_BY_TRIAL | {Status.STOPPED, Status.BASELINE, Status.LOST}  # nothing later changes these
TRAINED_CLEANLY = frozenset({Status.COMPLETED, Status.STOPPED, Status.BASELINE})  # finalist candidates


class Stage(StrEnum):
    """Which experiment a trial belongs to: sampled by the search, or a finalist's full-budget retrain."""

    SEARCH = "search"
    FINALIST = "finalist"


# Keys a Tune config carries beside the hyperparameters; never passed to the model.
BASELINE_KEY = "baseline"  # the name of a baseline trial
FINALIST_KEY = "finalist_of"  # a finalist: the search trial whose configuration it retrains
CONTINUES_KEY = "continues"  # a resumed finalist: the dead driver's finalist trial whose record and checkpoints it continues
# Fault injection, for the fault tests and chaos drills: a baseline in a space file's SEARCH may carry
# one. "raise" raises at the start of epoch FAULT_AT_EPOCH, "nan" turns the weights to NaN there, "lost"
# ends the worker's process after uploading the epoch before's checkpoint and before reporting it.
FAULT_KEY = "fault"
FAULTS = ("raise", "nan", "lost")
FAULT_AT_EPOCH = 2  # after one checkpointed epoch
NOT_HYPERPARAMETERS = (BASELINE_KEY, FINALIST_KEY, CONTINUES_KEY, FAULT_KEY)


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Tune config -> (hyperparameters, the protocol keys it carries)."""
    params = {k: v for k, v in config.items() if k not in NOT_HYPERPARAMETERS}
    return params, {k: config[k] for k in NOT_HYPERPARAMETERS if k in config}


@dataclass(frozen=True)
class Plan:
    """How a stage's trials train and save, beyond their hyperparameters (from the search settings).

    Metrics are reported every epoch (ASHA and the leaderboard need them); a checkpoint (model.keras,
    the costly part of an epoch's bookkeeping on a GPU) only every `checkpoint_every` epochs, at
    ASHA's rung epochs and at the trial's last epoch. A lost worker costs at most checkpoint_every - 1 epochs.
    """

    checkpoint_every: int = 1
    rungs: tuple[int, ...] = ()  # ASHA's milestones, in epochs
    steps_per_execution: int = 1  # batches per compiled call (Keras's compile option)
    keep_val_predictions: bool = False  # the last checkpoint also holds the softmax on validation (ensembles)
    limits: tuple[tuple[str, float], ...] = ()  # costs a trial may not exceed (search.objectives): else infeasible
    measure_latency: bool = False  # measure latency_ms after the first epoch (an objective or a limit)

    def checkpoint_at(self, epoch: int, last: int) -> bool:
        """Whether the trial saves a checkpoint after `epoch` (counted from 1) of its `last`."""
        return epoch % self.checkpoint_every == 0 or epoch in self.rungs or epoch >= last
