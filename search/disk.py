"""Whether the results disk can hold what a run keeps: refused up front, not when a checkpoint fails at hour three.

What a run keeps is mostly checkpoints: a trial holds at most CHECKPOINTS_KEPT (search.retention), each a model.keras
with the weights and Adam's two moments, 12 bytes per parameter. The model sizes are the caller's: the
space's baselines and a few random draws (bridge.param_counts).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from search.errors import UserError
from search.rundir import CHECKPOINTS_KEPT
from search.settings import Settings

BYTES_PER_PARAM = 12  # float32 weights + Adam's m and v
FILE_OVERHEAD = 256 * 2**10  # a model.keras's config and zip headers, and state.json


def checkpoint_bytes(param_count: int) -> int:
    """The size of one trial checkpoint of a model with param_count weights."""
    return BYTES_PER_PARAM * param_count + FILE_OVERHEAD


def run_bytes(settings: Settings, param_counts: list[int]) -> int:
    """What the run's checkpoints will take: every trial (samples, baselines, finalists) keeps CHECKPOINTS_KEPT
    of the average size of param_counts."""
    trials = settings.samples + len(settings.baselines) + settings.finalists
    return trials * CHECKPOINTS_KEPT * checkpoint_bytes(sum(param_counts) // max(1, len(param_counts)))


def check_room(run_dir: Path, settings: Settings, param_counts: list[int]) -> None:
    """UserError if the disk under run_dir has less free space than run_bytes (a bucket has no such limit)."""
    if not isinstance(run_dir, Path):
        return
    needed, free = run_bytes(settings, param_counts), shutil.disk_usage(run_dir).free
    if needed > free:
        raise UserError(f"{run_dir}: the run will keep about {needed / 2**30:.1f} GiB of checkpoints "
                        f"({settings.samples} samples, {CHECKPOINTS_KEPT} checkpoints of each trial), "
                        f"but only {free / 2**30:.1f} GiB are free there; free some space or choose --results elsewhere")
