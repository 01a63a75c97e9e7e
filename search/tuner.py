"""The one module that owns Ray Tune: Tuner, Optuna TPE, ASHA, storage, restore, and our records callback.

Policy (what to sample, how long to train) comes from the space file's settings; this module only
wires it into Tune and turns Tune's events into plain ``leaderboard.Records``. What watches a stage
(TensorBoard logs, the Optuna study's storage, the report) is the pipeline's to attach (``Watchers``).
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import logging
import os
import pickle
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from search import leaderboard, storage
from search import study as run_study
from search.data import Volumes
from search.errors import UserError, exception_line
from search.journal import Journal
from search.resources import Resources
from search.bridge import define_by_run
from search.settings import Settings
from search.space import Space
from search.protocol import BASELINE_KEY, ENDED, FINALIST_KEY, METRIC, Plan, Stage, Status, split_config
from search.rundir import CHECKPOINTS_KEPT, RunDir
from search.storage import Location

# With num_to_keep set each checkpoint forces a save of Tune's experiment state: that keeps resume's
# view fresh (on purpose), so Tune's warning about it is only noise.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# The loggers are the pipeline's (Watchers): Tune's automatic TensorBoard logger makes it print a
# `tensorboard --logdir /tmp/ray/...` hint that points at a staging folder, not at the run folder.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# A trial may run in an ended trial's actor (same resources): it skips a Ray worker's start and the Ray
# Tune and Keras imports, seconds a trial (search.trial waits long enough for the ended trial's thread).
REUSE_ACTORS = True


def _snapshot_after_upload() -> None:
    """Make Tune finish copying one experiment-state snapshot to the run folder before it writes the next.

    Tune writes each snapshot into a staging folder (the searcher's files under a temporary name, then
    renamed) while a background thread may still be copying the last one from there: a temporary file the
    copy listed and the rename removed fails the copy with FileNotFoundError (Tune logs an ERROR with its
    traceback and that snapshot never reaches the run folder), and a file rewritten mid-copy arrives torn.
    Tune has no setting for this, so its snapshot step is wrapped: wait for the copy in flight, then save.
    """
    from ray.tune.execution import experiment_state

    manager = experiment_state._ExperimentCheckpointManager
    sync_up = manager.sync_up_experiment_state
    if getattr(sync_up, "after_upload", False):
        return

    @functools.wraps(sync_up)
    def sync_up_after_upload(self, save_fn, force: bool = False, wait: bool = False) -> None:
        def save() -> None:
            try:
                self._storage.syncer.wait()
            except Exception:  # noqa: BLE001 - as Tune reports a failed upload: logged, and the next one retries
                logging.getLogger(experiment_state.__name__).error(
                    f"Saving experiment state to storage at '{self._storage.experiment_fs_path}' failed with exception: ",
                    exc_info=True)
            save_fn()

        sync_up(self, save, force=force, wait=wait)

    sync_up_after_upload.after_upload = True
    manager.sync_up_experiment_state = sync_up_after_upload


_snapshot_after_upload()


@dataclass(frozen=True)
class Watchers:
    """What the pipeline attaches to a stage: Tune callbacks (TensorBoard, CSV and JSON logs), OptunaSearch's
    ``storage`` and ``study_name`` (empty: an in-memory study), and a function called after each rewrite of the
    records. A resumed experiment keeps those it was started with (Tune restores them with its state)."""

    callbacks: tuple[tune.Callback, ...] = ()
    study: dict[str, Any] = field(default_factory=dict)
    on_write: Callable[[], None] | None = None


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


class StudySearch(OptunaSearch):
    """OptunaSearch whose saved state carries the study's journal bytes instead of a connection to its file.

    OptunaSearch pickles its storage, which reconnects to the study file's absolute path: on another
    machine (a resume from a bucket) that path is absent and the restore fails. Here Tune's searcher state
    (which Tune uploads with its experiment state) holds a copy of the study's journal; a restore puts it
    back at this machine's RunDir.study_local unless a study at least as long is there, and reattaches to it. A local run's
    state carries no copy (carry_study False: its optuna.journal is in the run folder), so its snapshots do not
    grow with the study.
    """

    _STUDY_STATE = "conv3d-search study journal"
    _SQLITE_STATE = "conv3d-search study bytes"  # a run made before the journal: its study in SQLite bytes

    # The sample budget, counted here rather than by Tune (see reconcile). Class defaults: a run saved before them.
    limit: int | None = None  # trials to propose in all (None: as many as Tune asks for)
    asked = 0  # trials proposed so far
    asked_when_saved = 0  # as the state last restored had it, before reconcile
    last_number: int | None = None  # the study's number of the last trial proposed

    def __init__(self, *args, run_dir: Location, carry_study: bool = True, limit: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_dir = run_dir
        self.carry_study = carry_study  # False for a local run: its optuna.journal is the study, and stays with it
        self.limit = limit
        self.last_number = -1

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self._ot_trials:  # asked before (Tune may ask again for the same trial)
            return super().suggest(trial_id)
        if self.limit is not None and self.asked >= self.limit:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        self.asked += 1
        self.last_number = self._ot_trials[trial_id].number
        return config

    def reconcile(self) -> None:
        """After a restore: count against the budget the trials the dead driver proposed after Tune's last saved
        state and saw end (Tune does not know them and would propose others in their place); tell the study those
        it did not see end failed (they are lost: the restored experiment never runs them, and TPE's constant liar
        would otherwise count them as running forever)."""
        if self.last_number is None:
            return
        for trial in self._ot_study.get_trials(deepcopy=False):
            if trial.number <= self.last_number or run_study.WARM_START_ATTR in trial.user_attrs:
                continue
            if trial.state.is_finished():
                self.asked += 1
            else:
                self._ot_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            self.last_number = trial.number

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Nothing: OptunaSearch stores every epoch as an intermediate value, for Optuna's pruners (ASHA prunes
        here), at a storage write each; TPE reads only the final value (on_trial_complete). Nor does a resumed
        run then write to a trial its live study had finished after Tune's last saved state (which raised)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, result, error)
        # Told to the study: OptunaSearch keeps every trial it asked for, which every snapshot would pickle.
        self._ot_trials.pop(trial_id, None)

    def _shared(self) -> dict[int, str]:
        """The objects that are the study and its storage: saved by reference, rebuilt on restore."""
        study = self._ot_study
        return {id(o): key for key, o in (("storage", self._storage), ("study", study)) if o is not None}

    def __getstate__(self) -> dict[str, Any]:  # tuner.pkl: no connection to a file of this machine
        return {**self.__dict__, "_storage": None, "_ot_study": None, "_ot_trials": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._storage is None and self._study_name != "optuna":  # "optuna": OptunaSearch's in-memory study
            self._storage = run_study.live_storage(self.run_dir)

    def save(self, checkpoint_path: str) -> None:
        if self._storage is None or self._ot_study is None:
            return super().save(checkpoint_path)
        # A copy in every snapshot costs O(trials) each: only where a resume needs it.
        journal = run_study.snapshot(self.run_dir) if self.carry_study else None
        shared = self._shared()
        buffer = io.BytesIO()
        pickle.dump({self._STUDY_STATE: journal, "study_name": self._study_name}, buffer)
        pickler = pickle.Pickler(buffer)
        pickler.persistent_id = lambda obj: shared.get(id(obj))
        pickler.dump(self.__dict__.copy())
        with open(checkpoint_path, "wb") as out:
            out.write(buffer.getvalue())

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            head = pickle.load(file)
            if not (isinstance(head, dict) and {self._STUDY_STATE, self._SQLITE_STATE} & head.keys()):
                file.seek(0)  # OptunaSearch's own format
                return super().restore(checkpoint_path)
            live = run_study.live_storage(self.run_dir)
            copy = head[self._STUDY_STATE] if self._STUDY_STATE in head else head[self._SQLITE_STATE]
            # Tune's copy, unless this machine's study is that copy and more lines (its own, after the copy was made):
            # its cache may be from before another machine went on with the run, or may have diverged from it.
            local = RunDir(self.run_dir).study_local
            older = (copy is not None and self._STUDY_STATE in head
                     and not (local.is_file() and local.read_bytes().startswith(copy)))
            if older or head["study_name"] not in optuna.get_all_study_names(live):
                if copy is None:
                    raise UserError(f"{local}: the run's Optuna study is missing")
                run_study.put_back(self.run_dir, copy, sqlite=self._SQLITE_STATE in head)
                live = run_study.live_storage(self.run_dir)
            study = optuna.load_study(study_name=head["study_name"], storage=live)
            objects = {"storage": live, "study": study, "cached": live}  # "cached": SQLite's cache, before the journal
            unpickler = pickle.Unpickler(file)
            unpickler.persistent_load = objects.__getitem__
            saved = unpickler.load()
            here = {"run_dir": self.run_dir, "carry_study": self.carry_study}  # where the run is now (it may have moved)
            self.__dict__.update(saved, **here)
        study.sampler = self._sampler
        self.asked_when_saved = self.asked
        self.reconcile()

    def tell_unfinished(self, records: leaderboard.Records) -> None:
        """Tell the study every trial it still has running, as its record ended (its last epoch's accuracy, or failed):
        when an extension starts none runs, but a time budget ends trials without telling the searcher."""
        for trial_id, ot_trial in list(self._ot_trials.items()):
            record = records.trials.get(trial_id)
            last = record.epochs[max(record.epochs)][METRIC] if record and record.epochs else None
            state = optuna.trial.TrialState.COMPLETE if last is not None else optuna.trial.TrialState.FAIL
            self._ot_study.tell(ot_trial, last, state=state, skip_if_finished=True)
            del self._ot_trials[trial_id]


class RecordKeeper(tune.Callback):
    """Folds every trial result into our records, in the driver, as results arrive, and keeps them on storage.

    Two writes, priced apart. The journal (search.journal) gets the trials that changed: at every checkpoint
    a trial reports, at every trial's end, at the experiment's end, and otherwise at most every
    WRITE_EVERY_S seconds; it costs what changed, so resume, which replays it, loses nothing written before
    a crash. The views (trials.json, leaderboard.csv, epochs.csv) are rewritten whole, which costs what the
    run holds: at most once per VIEWS_SPACING times their last write's duration (a bounded share of the
    driver however large the run grows) and once VIEWS_GROWTH more results arrived (a bounded cost per
    result, however slow the driver gets), and always at the experiment's end. The report follows them. ``on_write`` is called after
    each rewrite of the views. Trials that a time budget (time_budget_s) ended are recorded as stopped.
    """

    WRITE_EVERY_S = 1.0
    VIEWS_SPACING = 20  # the views' rewrites take at most 1/20 of the driver's time
    VIEWS_GROWTH = 0.05  # and wait for 5 % more results: each result then pays a constant share of the rewrites
    PATIENCE_S = 300.0  # at the experiment's end, how long to keep trying a storage that does not answer

    def __init__(self, run_dir: Location, stage: Stage = Stage.SEARCH, on_write: Callable[[], None] | None = None,
                 time_budget_s: float | None = None):
        self.run_dir = RunDir(run_dir).path
        self.stage = stage
        self.on_write = on_write
        self.time_budget_s = time_budget_s
        self.started = time.monotonic()
        self.records = leaderboard.Records()
        self.journal: Journal | None = None
        self.journaled = 0.0
        self.views_due = 0.0  # monotonic time of the next rewrite of the views
        self.results = 0  # results folded in by this driver, and how many of them the views last showed
        self.results_in_views = 0

    def setup(self, **info) -> None:
        self.started = time.monotonic()
        self.records = leaderboard.Records.load(self.run_dir)
        self.journal = Journal(RunDir(self.run_dir).journal)
        if self.records.trials and not self.journal.exists():  # a run made before the journal: its trials.json first
            self.journal.compact(self.records.to_json().values())

    def _report(self, trial, result: dict) -> None:
        params, extras = split_config(trial.config)
        self.records.report(trial.trial_id, params, extras.get(BASELINE_KEY, ""), result, stage=self.stage,
                            finalist_of=extras.get(FINALIST_KEY, ""))

    def _write(self, now: bool = True, must: bool = False) -> None:
        """Journal the changed trials (now, or if WRITE_EVERY_S passed), then the views if they are due (must:
        both, and the journal compacted). A failed write (a bucket gone for a while) keeps the records in memory
        for the next one; must: retry for up to PATIENCE_S, then raise."""
        if not (now or must or time.monotonic() - self.journaled >= self.WRITE_EVERY_S):
            return
        deadline = time.monotonic() + self.PATIENCE_S
        while True:
            try:
                self._journal(compact=must)
                grown = self.results - self.results_in_views >= self.VIEWS_GROWTH * self.results
                if must or (grown and time.monotonic() >= self.views_due):
                    self._views()
                return
            except OSError as e:
                if not must or time.monotonic() > deadline:
                    if must:
                        raise
                    print(f"records: could not write them to {self.run_dir} ({exception_line(str(e))}); "
                          "kept, written with the next result", file=sys.stderr, flush=True)
                    return
                time.sleep(5)

    def _journal(self, compact: bool) -> None:
        """Append the changed trials as one part, or (compact) replace the journal with every record."""
        if compact:
            self.journal.compact(self.records.to_json().values())
            self.records.changed.clear()
        else:
            changed = self.records.take_changed()
            try:
                self.journal.append(changed)
            except OSError:
                self.records.changed.update(r["trial_id"] for r in changed)
                raise
        self.journaled = time.monotonic()

    def _views(self) -> None:
        started = time.monotonic()
        self.results_in_views = self.results
        leaderboard.write(self.run_dir, self.records)
        self.views_due = started + max(self.WRITE_EVERY_S, self.VIEWS_SPACING * (time.monotonic() - started))
        if self.on_write:
            self.on_write()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.results += 1
        self._report(trial, result)
        self._write(now=result.get("checkpointed", True) or result.get("status") != Status.RUNNING)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.records.finish(trial.trial_id)
        self._write()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = trial.get_error()
        self._report(trial, {})
        message = exception_line(str(error)) if error else "error (see Ray's logs)"
        self.records.finish(trial.trial_id, error=message, status=failure_status(error))
        self._write()

    def on_experiment_end(self, trials, **info) -> None:
        # After a driver crash, Ray's saved state can lag: a trial the dead driver had started may be
        # unknown to the restored experiment, which samples a new trial in its place. Say so.
        self.records.mark_lost(known={t.trial_id for t in trials}, stage=self.stage)
        if self.time_budget_s and time.monotonic() - self.started >= self.time_budget_s:
            for trial in trials:  # the budget ended them, and Tune tells no callback so: they stopped there
                if trial.status == trial.TERMINATED:
                    self.records.finish(trial.trial_id)
        self._write(must=True)


class FixedConfigs(Searcher):
    """Hands out a fixed list of configurations, one trial each, then reports that it is finished (the finalists)."""

    def __init__(self, configs: list[dict[str, Any]]):
        super().__init__(metric=METRIC, mode="max")
        self.pending = [dict(c) for c in configs]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return self.pending.pop(0) if self.pending else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def search(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
           watchers: Watchers = Watchers(), extension: int = 0) -> leaderboard.Records:
    """The search stage, Tune's experiment in run_dir/tune (an extension's in tune-extend-K: see make_searcher);
    every trial's record when it ends."""
    make_tuner(space, train, val, run_dir, resources, watchers, extension).fit()
    return leaderboard.Records.load(run_dir)  # RecordKeeper wrote them at the experiment's end


def resume_search(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
                  extension: int = 0) -> leaderboard.Records:
    """The interrupted search stage (or extension) continued to its budget (see restore_tuner); every trial's
    record when it ends."""
    restore_tuner(run_dir, train, val, resources, space.settings, extension).fit()
    return leaderboard.Records.load(run_dir)


def finalists(records: leaderboard.Records, settings: Settings, train: Volumes, val: Volumes, run_dir: Location,
              resources: Resources, watchers: Watchers = Watchers()) -> leaderboard.Records:
    """The finalist stage: retrain the search's top configurations that have no finished finalist yet; all records.

    A resumed run starts the unfinished finalists afresh in a new Tune experiment rather than restoring the
    old one: Tune's restore of a stage killed right after a trial started can keep that trial in the
    concurrency limiter's live set forever, and the search waits on it.
    A finalist is at most max_epochs of one trial; the finished ones are kept, the dead driver's others show as lost.
    """
    done = {r.finalist_of for r in records.trials.values()
            if r.stage == Stage.FINALIST and r.status in ENDED and r.status != Status.LOST}
    configs = [c for c in finalist_configs(records, settings) if c[FINALIST_KEY] not in done]
    if not configs:
        return records
    print(f"finalists: retraining {len(configs)} of the top configurations for {settings.max_epochs} epochs", flush=True)
    make_finalists_tuner(configs, settings, train, val, run_dir, resources, watchers).fit()
    return leaderboard.Records.load(run_dir)


def asha_rungs(settings: Settings) -> tuple[int, ...]:
    """The epochs at which ASHA (one bracket, as configured below) compares trials: grace * rf^k < max_t."""
    return settings.rungs()


def plan(settings: Settings, stage: Stage = Stage.SEARCH) -> Plan:
    """How the stage's trials checkpoint and step (finalists run without ASHA: no rungs, and keep their
    validation predictions for the ensemble)."""
    return Plan(checkpoint_every=settings.checkpoint_every, rungs=asha_rungs(settings) if stage == Stage.SEARCH else (),
                keep_val_predictions=stage == Stage.FINALIST,  # the ensemble picks its members on them
                steps_per_execution=settings.steps_per_execution)


TRIAL_FUNCTION = "CONV3D_SEARCH_TRIAL"  # "module:function": another trainable with run_trial's protocol


def trial_function() -> Callable[..., None]:
    """search.trial.run_trial, or the function $CONV3D_SEARCH_TRIAL names (the scale benchmark and tests plug
    in search.synthetic:run_trial, which reports the same protocol without Keras)."""
    named = os.environ.get(TRIAL_FUNCTION, "search.trial:run_trial")
    module, _, name = named.partition(":")
    try:  # search.trial imports Keras: only once a stage runs, after the run chose its backend
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise UserError(f"${TRIAL_FUNCTION}={named!r}: no such function (expected module:function)") from None


def _trainable(train: Volumes, val: Volumes, resources: Resources, trial_plan: Plan):
    """The trial function with the data and the plan put into the object store once, and the per-trial resources."""
    run_trial = trial_function()
    request = {"cpu": resources.cpus, "gpu": resources.gpus}
    if resources.memory_gib:
        request["memory"] = int(resources.memory_gib * 2**30)
    gpu = (resources.mps, resources.precision)
    return tune.with_resources(tune.with_parameters(run_trial, train=train, val=val, plan=trial_plan, gpu=gpu), request)


def _run_config(run_dir: Location, name: str, stage: Stage, watchers: Watchers = Watchers(),
                time_budget_s: float | None = None) -> tune.RunConfig:
    """Tune's experiment in the folder `name` of the run folder, with our records and the pipeline's watchers."""
    return tune.RunConfig(
        name=name,
        **storage.tune_storage(RunDir(run_dir).path),  # a folder, or a bucket every node uploads to
        failure_config=tune.FailureConfig(max_failures=3),  # lost nodes/workers: retry from checkpoint
        # Two, not one: Ray's saved experiment state can name the checkpoint before the newest,
        # and resume fails a trial whose named checkpoint was already deleted.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        callbacks=[RecordKeeper(run_dir, stage, watchers.on_write, time_budget_s), *watchers.callbacks],
        verbose=1,
    )


def _trial_dirname(trial) -> str:
    """A trial's folder in the experiment: its trial id, the name the leaderboard and TensorBoard show (Tune's
    default is a long list of its parameters)."""
    return trial.trial_id


def make_searcher(space: Space, run_dir: Location, resources: Resources, study: dict[str, Any],
                  extension: int = 0) -> Searcher:
    """The search stage's proposer: the baselines first, then TPE on the run's study (study: OptunaSearch's
    storage and study_name), at most max_concurrent trials at once.

    An extension's TPE is the previous search stage's, restored from the state Tune saved at its end: the same
    study and the same sampler with its random state, so it proposes as that search would have gone on to; it
    proposes `samples` more, and the baselines (which ran) are not repeated."""
    settings = space.settings
    # TPE, multivariate and grouped (the space is conditional), with a constant liar so concurrent
    # trials don't pile onto one point; random start-up as the settings say.
    with warnings.catch_warnings():  # `group` is experimental in Optuna; we chose it on purpose
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=settings.seed, multivariate=True, group=True, constant_liar=True,
            n_startup_trials=settings.tpe_startup_trials(),
        )
    # The study lives in Optuna's own storage in the run folder (optuna-dashboard, optuna.load_study).
    # Optuna's INFO line per trial looks up the best trial, which costs O(trials) on a journal storage; the
    # console and the leaderboard say it anyway.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher: Searcher = StudySearch(space=define_by_run(space), metric=METRIC, mode="max", sampler=sampler,
                                     run_dir=RunDir(run_dir).path, carry_study=not RunDir(run_dir).local,
                                     limit=settings.samples, **study)
    if extension:
        _restore_searcher(searcher, RunDir(run_dir).search_tune(extension - 1))
        searcher.tell_unfinished(leaderboard.Records.load(run_dir))
        # Counted from the last search's end: a first attempt at this extension that died before Tune saved its
        # state proposed trials that count against this one's samples (restore counted them in `asked`).
        searcher.limit = searcher.asked_when_saved + settings.samples
    elif settings.baselines:
        searcher = BaselinesFirst(searcher, settings.baseline_configs())
    max_concurrent = resources.max_concurrent or settings.max_concurrent
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    return searcher


def searcher_state(experiment: Location) -> Location:
    """The searcher state Tune last saved in an experiment folder (newest by name, as Tune's own restore picks it);
    UserError if there is none."""
    saved = [n for n in storage.children(experiment) if n.startswith("searcher-state-") and n.endswith(".pkl")]
    if not saved:
        raise UserError(f"{experiment}: no saved searcher state to go on from (was the folder removed?)")
    return experiment / max(saved)


def _restore_searcher(searcher: StudySearch, experiment: Location) -> None:
    """A StudySearch in the state Tune last saved for it in an experiment folder (local or in a bucket)."""
    with tempfile.TemporaryDirectory() as folder:  # Searcher.restore reads a local file
        local = Path(folder) / "searcher-state.pkl"
        local.write_bytes(storage.read_bytes(searcher_state(experiment)))
        searcher.restore(str(local))


def make_tuner(space: Space, train: Volumes, val: Volumes, run_dir: Location, resources: Resources,
               watchers: Watchers = Watchers(), extension: int = 0) -> tune.Tuner:
    """A Tuner for the space's settings, storing Ray's experiment state under run_dir/tune (an extension's:
    RunDir.search_tune(extension)). An extension's ASHA starts afresh: it compares the new trials among themselves."""
    settings = space.settings
    searcher = make_searcher(space, run_dir, resources, watchers.study, extension)
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=settings.max_epochs,
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
        brackets=settings.brackets,
    )
    return tune.Tuner(
        _trainable(train, val, resources, plan(settings)),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.samples + (0 if extension else len(settings.baselines)),
            time_budget_s=settings.time_budget_s,
            reuse_actors=REUSE_ACTORS,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=_run_config(run_dir, RunDir(run_dir).search_tune(extension).name, Stage.SEARCH, watchers,
                               settings.time_budget_s),
    )


def finalist_configs(records: leaderboard.Records, settings: Settings) -> list[dict[str, Any]]:
    """The top `finalists` search trials that trained cleanly, as configurations for the full budget.

    Each trains max_epochs under the same schedule horizon, with the next seed (a second draw of
    initialization, shuffling and augmentation, so the winner isn't whoever had the luckiest one), on
    the same split. A finalist of a baseline keeps its baseline name.
    """
    configs = []
    for record in records.finalists(settings.finalists):  # finalists: 0 gives none
        params = {**record.params, "epochs": settings.max_epochs, "seed": (settings.seed + 1) % 2**31}
        params.setdefault("schedule_epochs", settings.max_epochs)
        configs.append({**params, FINALIST_KEY: record.trial_id, **({BASELINE_KEY: record.baseline} if record.baseline else {})})
    return configs


def make_finalists_tuner(configs: list[dict[str, Any]], settings: Settings, train: Volumes, val: Volumes,
                         run_dir: Location, resources: Resources, watchers: Watchers = Watchers()) -> tune.Tuner:
    """The finalist stage: each configuration trains its full budget (no scheduler), as many at once as fit.

    Each call is a new experiment (tune-finalists, then tune-finalists-2, ... after a resume).
    """
    return tune.Tuner(
        _trainable(train, val, resources, plan(settings, Stage.FINALIST)),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", search_alg=FixedConfigs(configs), num_samples=len(configs),
            max_concurrent_trials=resources.max_concurrent or settings.max_concurrent, reuse_actors=REUSE_ACTORS,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=_run_config(run_dir, RunDir(run_dir).finalists_tune().name, Stage.FINALIST, watchers),
    )


def restore_tuner(run_dir: Location, train: Volumes, val: Volumes, resources: Resources, settings: Settings,
                  extension: int = 0) -> tune.Tuner:
    """The interrupted search's (or extension's) Tuner: finished trials stay finished, unfinished ones continue
    from checkpoints."""
    return tune.Tuner.restore(
        **storage.tune_restore(RunDir(run_dir).search_tune(extension)),
        trainable=_trainable(train, val, resources, plan(settings)),
        resume_unfinished=True,
        resume_errored=True,
    )


def can_restore(run_dir: Location, extension: int = 0) -> bool:
    return tune.Tuner.can_restore(**storage.tune_restore(RunDir(run_dir).search_tune(extension)))


def failure_status(error: BaseException | None) -> str:
    """"oom" when Ray's memory monitor killed the trial's worker (it does so when a node runs low), else "error"."""
    text = f"{type(error).__name__}: {error}" if error else ""
    return Status.OOM if "OutOfMemoryError" in text or "running low on memory" in text else Status.ERROR
