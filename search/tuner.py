"""The engine: builds and runs Ray Tune experiments (a stage each) from the policy (search.policy) and a trainable.

The trainable is passed in (search.trial.run_trial by default; the tests and the scale benchmark pass the
synthetic one, search.synthetic). Our records come from search.record_keeper, the searcher's persistence from
search.study_search; what watches a stage (TensorBoard logs, the Optuna study's storage, the report) is the
pipeline's to attach (``Watchers``). ``setup`` is called once by the pipeline before any stage runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray import tune

from search import leaderboard, policy, retention, storage
from search.data import Volumes
from search.record_keeper import RecordKeeper, record_id
from search.resources import Resources
from search.protocol import METRIC, Plan, Stage
from search.provenance import DEFAULT_TRAINABLE
from search.retention import NamedCheckpoints
from search.rundir import RunDir
from search.settings import Settings
from search.space import Space
from search.storage import Location

# A trial may run in an ended trial's actor (same resources): it skips a Ray worker's start and the Ray
# Tune and Keras imports, seconds a trial (search.trial waits long enough for the ended trial's thread).
REUSE_ACTORS = True

Trainable = Callable[..., None]  # run_trial's protocol: (config, train, val, plan, gpu), reporting to Tune


def default_trainable() -> Trainable:
    """search.trial.run_trial, imported only when a stage runs: it imports Keras, after the run chose its backend."""
    from search.trial import run_trial

    return run_trial


def trainable_name(trainable: Trainable | None) -> str:
    """What run.json records of a trainable (None: the default, named without importing it), and what a resume
    checks it is given again."""
    if trainable is None:
        return DEFAULT_TRAINABLE
    return getattr(trainable, "trainable_name", None) or f"{trainable.__module__}:{trainable.__qualname__}"


def setup() -> None:
    """Tune's settings for our stages, once per driver before any stage runs (not at import, so importing the
    package changes nothing of Tune's)."""
    # The loggers are the pipeline's (Watchers): Tune's automatic TensorBoard logger makes it print a
    # `tensorboard --logdir /tmp/ray/...` hint that points at a staging folder, not at the run folder.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    retention.install()


def _metric_check(settings: Settings) -> None:
    """Tune refuses a result without every metric the searcher reads; a multi-objective study reads the costs, which
    a trial that could not be built (or failed first) cannot report: StudySearch tells the study of such a trial."""
    if settings.goals().multi:
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


@dataclass(frozen=True)
class Watchers:
    """What the pipeline attaches to a stage: Tune callbacks (TensorBoard, CSV and JSON logs), OptunaSearch's
    ``storage`` and ``study_name`` (empty: an in-memory study), and a function called after each rewrite of the
    records, with the count of results they show. A resumed experiment keeps those it was started with (Tune restores them with its state)."""

    callbacks: tuple[tune.Callback, ...] = ()
    study: dict[str, Any] = field(default_factory=dict)
    on_write: Callable[[int], None] | None = None


def search(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
           watchers: Watchers = Watchers(), extension: int = 0, trainable: Trainable | None = None) -> leaderboard.Records:
    """The search stage, Tune's experiment in run_dir/tune (an extension's in tune-extend-K: see
    policy.make_searcher); every trial's record when it ends."""
    make_tuner(space, train, val, run_dir, resources, watchers, extension, trainable).fit()
    return leaderboard.Records.load(run_dir)  # RecordKeeper wrote them at the experiment's end


def resume_search(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
                  extension: int = 0, trainable: Trainable | None = None) -> leaderboard.Records:
    """The interrupted search stage (or extension) continued to its budget (see restore_tuner); every trial's
    record when it ends."""
    _metric_check(space.settings)
    restore_tuner(run_dir, train, val, resources, space.settings, extension, trainable).fit()
    return leaderboard.Records.load(run_dir)


def finalists(records: leaderboard.Records, settings: Settings, train: Volumes, val: Volumes, run_dir: Location,
              resources: Resources, watchers: Watchers = Watchers(), trainable: Trainable | None = None
              ) -> leaderboard.Records:
    """The finalist stage: retrain the search's top configurations that have no finished finalist yet; all records.

    A resumed run trains the unfinished finalists in a new Tune experiment rather than restoring the old one:
    Tune's restore of a stage killed right after a trial started can keep that trial in the concurrency
    limiter's live set forever, and the stage waits on it. Each continues the dead driver's finalist trial
    (policy.unfinished_finalists): its record, its folder name, and its newest checkpoint (search.checkpoints).
    """
    configs = policy.unfinished_finalists(records, settings)
    if not configs:
        return records
    print(f"finalists: retraining {len(configs)} of the top configurations for {settings.max_epochs} epochs", flush=True)
    make_finalists_tuner(configs, settings, train, val, run_dir, resources, watchers, trainable).fit()
    return leaderboard.Records.load(run_dir)


def _trainable(trainable: Trainable | None, train: Volumes, val: Volumes, resources: Resources, trial_plan: Plan):
    """The trial function with the data and the plan put into the object store once, and the per-trial resources."""
    request = {"cpu": resources.cpus, "gpu": resources.gpus}
    if resources.memory_gib:
        request["memory"] = int(resources.memory_gib * 2**30)
    gpu = (resources.mps, resources.precision)
    return tune.with_resources(tune.with_parameters(trainable or default_trainable(), train=train, val=val,
                                                    plan=trial_plan, gpu=gpu), request)


def _run_config(run_dir: Location, name: str, stage: Stage, watchers: Watchers = Watchers(),
                time_budget_s: float | None = None) -> tune.RunConfig:
    """Tune's experiment in the folder `name` of the run folder, with our records and the pipeline's watchers."""
    return tune.RunConfig(
        name=name,
        **storage.tune_storage(RunDir(run_dir).path),  # a folder, or a bucket every node uploads to
        failure_config=tune.FailureConfig(max_failures=3),  # lost nodes/workers: retry from checkpoint
        checkpoint_config=retention.RunOwned(),  # superseded checkpoints: deleted by the run, not by Tune
        callbacks=[RecordKeeper(run_dir, stage, watchers.on_write, time_budget_s), NamedCheckpoints(),
                   *watchers.callbacks],
        verbose=1,
    )


def _trial_dirname(trial) -> str:
    """A trial's folder in the experiment: its record's trial id, the name the leaderboard and TensorBoard show
    (Tune's default is a long list of its parameters); a continued finalist's is the one it continues."""
    return record_id(trial)


def make_tuner(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
               watchers: Watchers = Watchers(), extension: int = 0, trainable: Trainable | None = None) -> tune.Tuner:
    """A Tuner for the space's settings, storing Ray's experiment state under run_dir/tune (an extension's:
    RunDir.search_tune(extension)). An extension's ASHA starts afresh: it compares the new trials among themselves."""
    settings = space.settings
    _metric_check(settings)
    return tune.Tuner(
        _trainable(trainable, train, val, resources, policy.plan(settings)),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=policy.make_searcher(space, run_dir, resources, watchers.study, extension),
            scheduler=policy.scheduler(settings, run_dir),
            num_samples=settings.samples + (0 if extension else len(settings.baselines)),
            time_budget_s=settings.time_budget_s,
            reuse_actors=REUSE_ACTORS,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=_run_config(run_dir, RunDir(run_dir).search_tune(extension).name, Stage.SEARCH, watchers,
                               settings.time_budget_s),
    )


def make_finalists_tuner(configs: list[dict[str, Any]], settings: Settings, train: Volumes, val: Volumes,
                         run_dir: Location, resources: Resources, watchers: Watchers = Watchers(),
                         trainable: Trainable | None = None) -> tune.Tuner:
    """The finalist stage: each configuration trains its full budget (no scheduler), as many at once as fit.

    Each call is a new experiment (tune-finalists, then tune-finalists-2, ... after a resume).
    """
    return tune.Tuner(
        _trainable(trainable, train, val, resources, policy.plan(settings, Stage.FINALIST)),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", search_alg=policy.FixedConfigs(configs), num_samples=len(configs),
            max_concurrent_trials=resources.max_concurrent or settings.max_concurrent, reuse_actors=REUSE_ACTORS,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=_run_config(run_dir, RunDir(run_dir).finalists_tune().name, Stage.FINALIST, watchers),
    )


def restore_tuner(run_dir: Location, train: Volumes, val: Volumes, resources: Resources, settings: Settings,
                  extension: int = 0, trainable: Trainable | None = None) -> tune.Tuner:
    """The interrupted search's (or extension's) Tuner: finished trials stay finished, unfinished ones continue
    from checkpoints."""
    return tune.Tuner.restore(
        **storage.tune_restore(RunDir(run_dir).search_tune(extension)),
        trainable=_trainable(trainable, train, val, resources, policy.plan(settings)),
        resume_unfinished=True,
        resume_errored=True,
    )


def can_restore(run_dir: Location, extension: int = 0) -> bool:
    return tune.Tuner.can_restore(**storage.tune_restore(RunDir(run_dir).search_tune(extension)))


# Tune's saved experiment state (tuner.pkl) of a run made before this module was split names these classes here.
from search.policy import BaselinesFirst, FixedConfigs  # noqa: E402,F401
from search.study_search import StudySearch  # noqa: E402,F401
