"""Whether the results disk can hold what a run keeps: refused up front, not when a checkpoint fails at hour three.

What a run keeps is mostly checkpoints: Tune keeps each trial's last two (tuner._run_config), each a
model.keras with the weights and Adam's two moments, 12 bytes per parameter (measured: 12.05-12.3 for
the three seed presets). The model sizes come from the space itself: its baselines and a few random draws.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from search.errors import UserError
from search.space import Space

BYTES_PER_PARAM = 12  # float32 weights + Adam's m and v
FILE_OVERHEAD = 256 * 2**10  # a model.keras's config and zip headers, and state.json
CHECKPOINTS_KEPT = 2  # per trial: tune.CheckpointConfig(num_to_keep=2)
DRAWS = 16  # random configurations of the space whose sizes stand for its trials


def checkpoint_bytes(param_count: int) -> int:
    """The size of one trial checkpoint of a model with param_count weights."""
    return BYTES_PER_PARAM * param_count + FILE_OVERHEAD


def run_bytes(space: Space) -> int:
    """What the run's checkpoints will take: every trial (samples, baselines, finalists) keeps two of the average size."""
    counts = _param_counts(space)
    settings = space.settings
    trials = settings.samples + len(settings.baselines) + settings.finalists
    return trials * CHECKPOINTS_KEPT * checkpoint_bytes(sum(counts) // max(1, len(counts)))


def check_room(run_dir: Path, space: Space) -> None:
    """UserError if the disk under run_dir has less free space than run_bytes(space)."""
    needed, free = run_bytes(space), shutil.disk_usage(run_dir).free
    if needed > free:
        raise UserError(f"{run_dir}: the run will keep about {needed / 2**30:.1f} GiB of checkpoints "
                        f"({space.settings.samples} samples, {CHECKPOINTS_KEPT} checkpoints of each trial), "
                        f"but only {free / 2**30:.1f} GiB are free there; free some space or choose --results elsewhere")


def _param_counts(space: Space) -> list[int]:
    """Weights of the baselines and of DRAWS random feasible configurations of the space (infeasible ones train nothing)."""
    from search import console, model, params
    from search.bridge import sample, throwaway_study
    from search.protocol import split_config

    configs = list(space.settings.baseline_configs().values())
    study = throwaway_study(space.settings.seed)
    configs += [sample(space, study.ask()) for _ in range(DRAWS)]
    hyperparameters = [params.validate(split_config(c)[0]) for c in configs]
    with console.filtered_stderr():  # this is the driver's first Keras op: TensorFlow's GPU lookup, quietly
        return [model.count_params(c) for c in hyperparameters if params.check(c) is None] or [0]
