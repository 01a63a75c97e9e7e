"""The one module that owns Ray Tune: Tuner, Optuna TPE, ASHA, storage, restore, and our records callback.

Policy (what to sample, how long to train) comes from the space file's settings; this module only
wires it into Tune and turns Tune's events into plain ``leaderboard.Records``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from search import leaderboard
from search.data import Volumes
from search.space import Space, define_by_run
from search.trial import BASELINE_KEY, ERROR, METRIC, OOM, run_trial, split_config

TUNE_DIR = "tune"  # Ray's experiment folder inside the run folder
# Every epoch checkpoints, and with num_to_keep set each checkpoint forces a save of Tune's experiment
# state: that keeps resume's view fresh (on purpose), so Tune's warning about it is only noise.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


@dataclass(frozen=True)
class Resources:
    """Per-trial resources (fractions allowed) and how many trials may run at once.

    memory_gib reserves memory on a node for each trial, and the trial holds itself to it (see search.trial).
    """

    cpus: float = 1.0
    gpus: float = 0.0
    max_concurrent: int | None = None
    memory_gib: float | None = None


class BaselinesFirst(Searcher):
    """Hands out the seed presets first (as flagged baseline trials), then defers to the wrapped searcher.

    Baselines train under the same scheduler and epoch cap as every trial but are not fed to TPE:
    they are reference rows, and their parameters may lie outside the space.
    """

    def __init__(self, searcher: Searcher, baselines: dict[str, dict[str, Any]]):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.pending = [{**p, BASELINE_KEY: name} for name, p in baselines.items()]
        self.baseline_trials: set[str] = set()

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        super().set_search_properties(metric, mode, config, **spec)
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.pending:
            self.baseline_trials.add(trial_id)
            return self.pending.pop(0)
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.baseline_trials:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.baseline_trials:
            self.searcher.on_trial_complete(trial_id, result, error)

    # Tune's wrapper protocol (as ConcurrencyLimiter): our own state travels via get/set_state,
    # the wrapped searcher saves and restores itself.
    def get_state(self) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "searcher"})

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


class RecordKeeper(tune.Callback):
    """Folds every trial result into our records and rewrites the CSVs, in the driver, as results arrive.

    On ``resume`` it starts from the records on disk, so nothing written before a crash is lost.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.records = leaderboard.Records()

    def setup(self, **info) -> None:
        self.records = leaderboard.Records.load(self.run_dir)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        params, baseline = split_config(trial.config)
        self.records.report(trial.trial_id, params, baseline or "", result)
        leaderboard.write(self.run_dir, self.records)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.records.finish(trial.trial_id)
        leaderboard.write(self.run_dir, self.records)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = trial.get_error()
        params, baseline = split_config(trial.config)
        self.records.report(trial.trial_id, params, baseline or "", {})
        message = _first_line(str(error)) if error else "error (see Ray's logs)"
        self.records.finish(trial.trial_id, error=message, status=failure_status(error))
        leaderboard.write(self.run_dir, self.records)

    def on_experiment_end(self, trials, **info) -> None:
        # After a driver crash, Ray's saved state can lag: a trial the dead driver had started may be
        # unknown to the restored experiment, which samples a new trial in its place. Say so.
        self.records.mark_lost(known={t.trial_id for t in trials})
        leaderboard.write(self.run_dir, self.records)


def _trainable(train: Volumes, val: Volumes, resources: Resources):
    """run_trial with the data put into the object store once, and the per-trial resources."""
    request = {"cpu": resources.cpus, "gpu": resources.gpus}
    if resources.memory_gib:
        request["memory"] = int(resources.memory_gib * 2**30)
    return tune.with_resources(tune.with_parameters(run_trial, train=train, val=val), request)


def make_tuner(space: Space, train: Volumes, val: Volumes, run_dir: Path, resources: Resources) -> tune.Tuner:
    """A Tuner for the space's settings, storing Ray's experiment state under run_dir/tune."""
    settings = space.settings
    seed = settings.seed
    # TPE, multivariate and grouped (the space is conditional), with a constant liar so concurrent
    # trials don't pile onto one point; random start-up scaled to small budgets so TPE gets to work.
    sampler = optuna.samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=True,
        n_startup_trials=min(10, max(2, settings.samples // 3)),
    )
    searcher: Searcher = OptunaSearch(space=define_by_run(space), metric=METRIC, mode="max", sampler=sampler)
    if settings.baselines:
        searcher = BaselinesFirst(searcher, settings.baseline_configs())
    max_concurrent = resources.max_concurrent or settings.max_concurrent
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=settings.max_epochs,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
    )
    return tune.Tuner(
        _trainable(train, val, resources),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.samples + len(settings.baselines),
            # A new actor per trial: reuse_actors=True saved the TensorFlow import per trial, but Tune
            # 2.60 sometimes failed a trial with "reuse requires reset_config()" (README, Benchmarks).
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(Path(run_dir).resolve()),
            failure_config=tune.FailureConfig(max_failures=3),  # lost nodes/workers: retry from checkpoint
            # Two, not one: Ray's saved experiment state can name the checkpoint before the newest,
            # and resume fails a trial whose named checkpoint was already deleted.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[RecordKeeper(run_dir)],
            verbose=1,
        ),
    )


def restore_tuner(run_dir: Path, train: Volumes, val: Volumes, resources: Resources) -> tune.Tuner:
    """The interrupted run's Tuner: finished trials stay finished, unfinished ones continue from checkpoints."""
    return tune.Tuner.restore(
        str(Path(run_dir).resolve() / TUNE_DIR),
        trainable=_trainable(train, val, resources),
        resume_unfinished=True,
        resume_errored=True,
    )


def can_restore(run_dir: Path) -> bool:
    return tune.Tuner.can_restore(str(Path(run_dir).resolve() / TUNE_DIR))


def failure_status(error: BaseException | None) -> str:
    """"oom" when Ray's memory monitor killed the trial's worker (it does so when a node runs low), else "error"."""
    text = f"{type(error).__name__}: {error}" if error else ""
    return OOM if "OutOfMemoryError" in text or "running low on memory" in text else ERROR


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
