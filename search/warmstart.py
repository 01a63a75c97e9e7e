"""Warm start: earlier runs' trials told to a new run's study before TPE proposes.

A trial is told only if the new space could have proposed it: its configuration (with the trainer's
defaults for any knob it lacked, which is what it trained with) is asked of the new space through Optuna's
FixedTrial, every value must lie in the new space's distributions, and every value the new space fixes must
be the one it trained with. It is told at the fidelity it reached: a trial that trained the new run's
max_epochs as COMPLETE with its validation accuracy there, one that stopped earlier (ASHA, or a shorter
budget) as PRUNED with its accuracy per epoch, which TPE ranks below every complete trial, by the epoch it
reached. Earlier trials are not rows of the new leaderboard: every row there is a trial the new run trained.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna

from search import bridge, params, provenance
from search.errors import UserError
from search.leaderboard import Records, TrialRecord
from search.protocol import METRIC, Stage, Status
from search.space import Space
from search.study import WARM_START_ATTR
from search.storage import Location

FIDELITY = ("epochs", "schedule_epochs", "seed")  # how long and with which seed, not what was trained


@dataclass
class Source:
    """One earlier run: the trials to tell and how many of its search trials did not fit."""

    run_dir: str
    trials: list[optuna.trial.FrozenTrial] = field(default_factory=list)
    skipped: int = 0

    def to_json(self) -> dict:
        return {"run": self.run_dir, "told": len(self.trials), "skipped": self.skipped}


def read(space: Space, run_dirs: Sequence[Location], data_sha256: str) -> list[Source]:
    """Every earlier run's trials that fit space, as Optuna trials; UserError (one line) for a run that is not
    a run folder, was made on other data, or has no trial that fits."""
    if space.settings.goals().multi:
        raise UserError(f"{space.path.name}: warm start tells TPE accuracies only; a multi-objective search starts cold")
    sources = []
    for run_dir in run_dirs:
        info = provenance.read(run_dir)
        if info.data.sha256 != data_sha256:
            raise UserError(f"{run_dir}: made on another data file ({info.data.path}); its validation "
                            "accuracies do not compare with this run's")
        source = Source(str(run_dir))
        for record in Records.load(run_dir).trials.values():
            if record.stage != Stage.SEARCH:
                continue  # finalists retrain search trials' configurations
            told = _as_optuna_trial(space, record)
            if told is None:
                source.skipped += 1
            else:
                source.trials.append(told)
        if not source.trials:
            raise UserError(f"{run_dir}: none of its {source.skipped} search trials fits {space.path.name}")
        sources.append(source)
    return sources


def tell(sources: Sequence[Source], storage: optuna.storages.BaseStorage, study_name: str) -> None:
    """Add every source's trials to the run's study (created here, as OptunaSearch then loads it)."""
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True)
    study.add_trials([t for source in sources for t in source.trials])


def _as_optuna_trial(space: Space, record: TrialRecord) -> optuna.trial.FrozenTrial | None:
    """record as a finished Optuna trial of space, or None: it did not finish training, or space could not
    have proposed it."""
    if record.status not in (Status.COMPLETED, Status.STOPPED, Status.BASELINE, Status.INFEASIBLE):
        return None  # failed, lost or running: nothing learned about the configuration
    try:
        trained = params.validate(record.params)
        fixed = optuna.trial.FixedTrial(trained)
        with warnings.catch_warnings():  # a value out of the new range: create_trial below refuses it
            warnings.simplefilter("ignore", UserWarning)
            proposed = params.validate(bridge.sample(space, fixed))
    except (UserError, ValueError):  # a knob the new space asks for that this trial cannot answer
        return None
    if any(proposed[k] != trained.get(k) for k in proposed if k not in FIDELITY):
        return None  # the new space fixes a value this trial did not train with
    accuracies = {epoch: m[METRIC] for epoch, m in sorted(record.epochs.items())}
    attrs = {WARM_START_ATTR: record.trial_id}
    try:
        if record.status == Status.INFEASIBLE:  # as the study tells an infeasible trial: 0
            return optuna.trial.create_trial(params=fixed.params, distributions=fixed.distributions, value=0.0,
                                             user_attrs=attrs)
        within = {e: a for e, a in accuracies.items() if e <= space.settings.max_epochs}
        if not within:
            return None
        if max(within) >= space.settings.max_epochs:
            return optuna.trial.create_trial(params=fixed.params, distributions=fixed.distributions,
                                             value=within[max(within)], intermediate_values=within, user_attrs=attrs)
        return optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params=fixed.params,
                                         distributions=fixed.distributions, intermediate_values=within,
                                         user_attrs=attrs)
    except ValueError:  # a value outside the new space's range (Optuna checks it)
        return None
