"""What a search proposes, how long each trial trains and what it keeps: the policy the engine (search.tuner) runs.

TPE on the run's study with the seed baselines first (told every objective), ASHA's rungs (sorting fronts in a
multi-objective run: ParetoASHA), each stage's checkpoint plan, and which configurations become the finalists.
Nothing here runs an experiment.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np
import optuna
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from search import leaderboard
from search import objectives as goals
from search.bridge import define_by_run
from search.protocol import BASELINE_KEY, CONTINUES_KEY, ENDED, FINALIST_KEY, METRIC, Plan, Stage, Status
from search.resources import Resources
from search.rundir import RunDir
from search.settings import Settings
from search.space import Space
from search.storage import Location
from search.study_search import StudySearch, restore_searcher


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


class FixedConfigs(Searcher):
    """Hands out a fixed list of configurations, one trial each, then reports that it is finished (the finalists)."""

    def __init__(self, configs: list[dict[str, Any]]):
        super().__init__(metric=METRIC, mode="max")
        self.pending = [dict(c) for c in configs]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return self.pending.pop(0) if self.pending else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


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
    aims = settings.goals()  # a multi-objective study is told every objective, and the limits as constraints
    metric, mode = (list(aims.names), aims.directions()) if aims.multi else (METRIC, "max")
    searcher: Searcher = StudySearch(space=define_by_run(space), metric=metric, mode=mode, sampler=sampler,
                                     run_dir=RunDir(run_dir).path, carry_study=not RunDir(run_dir).local,
                                     limit=settings.samples, objectives=aims, **study)
    if extension:
        restore_searcher(searcher, RunDir(run_dir).search_tune(extension - 1))
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


def scheduler(settings: Settings, run_dir: Location | None = None) -> ASHAScheduler:
    """ASHA on epochs (Tune's training_iteration: one result per epoch), as the settings size it, its rungs refilled
    from run_dir's records after a resume; ParetoASHA in a multi-objective run."""
    asha = dict(time_attr="training_iteration", max_t=settings.max_epochs, grace_period=settings.grace_period,
                reduction_factor=settings.reduction_factor, brackets=settings.brackets, run_dir=run_dir)
    return ParetoASHA(settings.goals(), settings.rungs(), **asha) if settings.goals().multi else ResumableASHA(**asha)


class ResumableASHA(ASHAScheduler):
    """Ray's ASHA, whose rungs survive a resume.

    Tune saves no scheduler state: a restored experiment's ASHA is the one the search started with, rungs empty,
    so a trial resumed past a rung would be judged at it on a later epoch's accuracy, against only the trials
    recorded since (the crash test saw one stopped at epoch 2 of rungs 1 and 3). Each restored trial Tune adds
    puts back, from the run's records, what it scored at the rungs it had reached."""

    run_dir: Location | None = None  # class defaults: a ParetoASHA pickled before this class has neither
    _records: leaderboard.Records | None = None  # read at the first restored trial

    def __init__(self, run_dir: Location | None = None, **asha: Any):
        super().__init__(**asha)
        self.run_dir = run_dir

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_records": None}

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        if self.run_dir is None or not (trial.last_result or {}).get(self._time_attr):  # new: nothing to put back
            return
        if self._records is None:
            self._records = leaderboard.Records.load(self.run_dir)
        record = self._records.trials.get(trial.trial_id)
        if record is not None:  # up to where Tune's state has it: epochs past that are reported again, and judged
            self.refill(trial.trial_id, record, reached=trial.last_result[self._time_attr])

    def refill(self, trial_id: str, record: leaderboard.TrialRecord, reached: int) -> None:
        """Record the trial at each rung it reached, as on_trial_result did then."""
        for milestone, recorded in self._trial_info[trial_id]._rungs:
            if milestone <= reached and milestone in record.epochs:
                recorded[trial_id] = self._metric_op * record.epochs[milestone][METRIC]


class ParetoASHA(ResumableASHA):
    """ASHA whose rungs keep the top 1 / reduction_factor of the trials by non-dominated sorting of (accuracy so far,
    each cost), within a front by NSGA-II's crowding distance (both ends first), instead of by accuracy alone
    (docs/design.md, "Accuracy against cost").

    Costs are known at a trial's first result (param_count and flops before training, latency_ms after epoch 1), so
    a cheap trial is judged against what the others give for their cost: accuracy-only ASHA would stop the cheap end
    of the front at the first rung, since small models learn slower and top out lower. One bracket (Settings).
    """

    def __init__(self, objectives: goals.Objectives, rungs: tuple[int, ...], **asha: Any):
        super().__init__(**asha)
        self.objectives = objectives
        self.recorded: dict[int, dict[str, list[float]]] = {rung: {} for rung in rungs}  # rung -> trial -> values

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._time_attr not in result or result[self._time_attr] >= self._max_t:
            return super().on_trial_result(tune_controller, trial, result)
        if result.get("status") == Status.INFEASIBLE:  # over a limit: it ends, and is no rung's point
            return TrialScheduler.CONTINUE
        epoch = result[self._time_attr]
        values = self.objectives.values(result)
        for rung in sorted(self.recorded, reverse=True):  # ASHA's order: the highest rung reached decides
            recorded = self.recorded[rung]
            if epoch < rung or trial.trial_id in recorded:
                continue
            if values is None:  # a result without its costs (a failed trial's): judged on nothing, as ASHA's None
                return TrialScheduler.CONTINUE
            keep = self.keeps(values, list(recorded.values()))
            recorded[trial.trial_id] = values
            if not keep:
                self._num_stopped += 1
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def refill(self, trial_id: str, record: leaderboard.TrialRecord, reached: int) -> None:
        if record.status == Status.INFEASIBLE:  # over a limit: no rung's point (on_trial_result)
            return
        for rung, recorded in self.recorded.items():
            values = self.objectives.values({**record.objective_row(), METRIC: record.epochs[rung][METRIC]}) \
                if rung <= reached and rung in record.epochs else None
            if values is not None:
                recorded[trial_id] = values

    def keeps(self, values: list[float], others: list[list[float]]) -> bool:
        """Whether a trial reaching a rung with these objective values is among the top 1 / rf of everyone there."""
        points, names = np.array([values, *others]), self.objectives.names
        # By front, then by crowding within it (its ends first: the most accurate and the cheapest), then accuracy.
        order = np.lexsort((-points[:, 0], -goals.crowding(points, names), goals.front_ranks(points, names)))
        return int(np.flatnonzero(order == 0)[0]) < max(1, math.ceil(len(points) / self._reduction_factor))


def asha_rungs(settings: Settings) -> tuple[int, ...]:
    """The epochs at which ASHA (one bracket, as configured below) compares trials: grace * rf^k < max_t."""
    return settings.rungs()


def plan(settings: Settings, stage: Stage = Stage.SEARCH) -> Plan:
    """How the stage's trials checkpoint and step (finalists run without ASHA: no rungs, and keep their
    validation predictions for the ensemble)."""
    search = stage == Stage.SEARCH
    return Plan(checkpoint_every=settings.checkpoint_every, rungs=asha_rungs(settings) if search else (),
                keep_val_predictions=stage == Stage.FINALIST,  # the ensemble picks its members on them
                steps_per_execution=settings.steps_per_execution,
                limits=settings.limits if search else (),  # a finalist's configuration met them in the search
                measure_latency=settings.goals().measures_latency())


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


def unfinished_finalists(records: leaderboard.Records, settings: Settings) -> list[dict[str, Any]]:
    """The finalists' configurations that have no finished finalist trial yet (a resume trains only those); one
    that a dead driver had started continues that trial (its record, from its newest checkpoint: CONTINUES_KEY)."""
    finalists = [r for r in records.trials.values() if r.stage == Stage.FINALIST]
    done = {r.finalist_of for r in finalists if r.status in ENDED and r.status != Status.LOST}
    started = {r.finalist_of: r.trial_id for r in finalists if r.status not in ENDED}
    return [{**c, **({CONTINUES_KEY: started[c[FINALIST_KEY]]} if c[FINALIST_KEY] in started else {})}
            for c in finalist_configs(records, settings) if c[FINALIST_KEY] not in done]
