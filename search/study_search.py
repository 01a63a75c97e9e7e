"""The searcher's persistence: TPE on the run's Optuna study, saved and restored with Tune's experiment state.

OptunaSearch as Tune ships it cannot resume a run on another machine, nor count a budget across a crash; this
module is what makes a resumed or extended search propose as the interrupted one would have gone on to.
"""

from __future__ import annotations

import io
import math
import pickle
import tempfile
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search import leaderboard, storage
from search import objectives as goals
from search import study as run_study
from search.errors import UserError
from search.protocol import ENDED, METRIC, Status
from search.rundir import RunDir
from search.storage import Location


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
    objectives = goals.Objectives()  # what the study is told of each trial (a run saved before objectives: accuracy)

    def __init__(self, *args, run_dir: Location, carry_study: bool = True, limit: int | None = None,
                 objectives: goals.Objectives = goals.Objectives(), **kwargs):
        super().__init__(*args, **kwargs)
        self.run_dir = run_dir
        self.carry_study = carry_study  # False for a local run: its optuna.journal is the study, and stays with it
        self.limit = limit
        self.objectives = objectives
        self.last_number = -1

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self._ot_trials:  # asked before (Tune may ask again for the same trial)
            return super().suggest(trial_id)
        if self.limit is not None and self.asked >= self.limit:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        self.asked += 1
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr(run_study.TUNE_TRIAL_ATTR, trial_id)  # its record, for reconcile
        self.last_number = ot_trial.number
        return config

    def reconcile(self) -> None:
        """After a restore: count against the budget the trials the dead driver proposed after Tune's last saved
        state and saw end (Tune does not know them and would propose others in their place); tell the study those
        it did not see end failed (they are lost: the restored experiment never runs them, and TPE's constant liar
        would otherwise count them as running forever).

        Which ended is the records' word where the study's trials name their Tune trial: Tune records a trial's
        last result, saves its checkpoint and only then tells the searcher, and tells the searcher of an early
        stop before the records, so a driver can die between the two either way. A trial ended in the records
        counts, and is told to the study as it ended where the study missed that; any other is lost (the records
        mark it so). A run saved before study trials named theirs goes by the study alone."""
        if self.last_number is None:
            return
        records = None
        for trial in self._ot_study.get_trials(deepcopy=False):
            if trial.number <= self.last_number or run_study.WARM_START_ATTR in trial.user_attrs:
                continue
            trial_id = trial.user_attrs.get(run_study.TUNE_TRIAL_ATTR)
            if trial_id is None:
                ended = trial.state.is_finished()
            else:
                records = leaderboard.Records.load(self.run_dir) if records is None else records
                record = records.trials.get(trial_id)
                ended = record is not None and record.status in ENDED and record.status != Status.LOST
                if ended and not trial.state.is_finished():  # told as the live search would have told it
                    self._ot_trials[trial_id] = optuna.Trial(self._ot_study, trial._trial_id)
                    self.on_trial_complete(trial_id, final_result(record))
            if ended:
                self.asked += 1
            elif not trial.state.is_finished():
                self._ot_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            self.last_number = trial.number

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Nothing: OptunaSearch stores every epoch as an intermediate value, for Optuna's pruners (ASHA prunes
        here), at a storage write each; TPE reads only the final value (on_trial_complete). Nor does a resumed
        run then write to a trial its live study had finished after Tune's last saved state (which raised)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and result and self.objectives.limits:  # TPE reads these: over a limit is infeasible
            for name, excess in self.objectives.constraints(result).items():
                ot_trial.set_constraint(name, excess)
        if ot_trial is not None and self.objectives.multi and (not result or self.objectives.values(result) is None):
            over = result and any(v > 0 for v in self.objectives.constraints(result).values())
            if over:  # over a limit before a cost was measured: infeasible (TPE reads its constraint, not its values)
                values = [result.get(n) if result.get(n) is not None else 0.0 if d == "max" else math.inf
                          for n, d in zip(self.objectives.names, self.objectives.directions())]
                self._ot_study.tell(ot_trial, values, skip_if_finished=True)
            else:  # no costs (it could not be built, or failed before its first epoch): nothing to place on a front
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            self._completed_trials.add(trial_id)
        else:
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
            if last is not None and self.objectives.multi:  # its costs beside its last accuracy
                last = self.objectives.values({**record.objective_row(), METRIC: last})
            state = optuna.trial.TrialState.COMPLETE if last is not None else optuna.trial.TrialState.FAIL
            self._ot_study.tell(ot_trial, last, state=state, skip_if_finished=True)
            del self._ot_trials[trial_id]


def final_result(record: leaderboard.TrialRecord) -> dict[str, Any]:
    """What an ended trial last reported (search.trial), rebuilt from its record: its costs and its last epoch's
    accuracy, or 0.0 where it ended by an error or before its first epoch (an infeasible configuration)."""
    failed = record.status in (Status.ERROR, Status.OOM) or not record.epochs
    return {**record.objective_row(), METRIC: 0.0 if failed else record.epochs[max(record.epochs)][METRIC]}


def searcher_state(experiment: Location) -> Location:
    """The searcher state Tune last saved in an experiment folder (newest by name, as Tune's own restore picks it);
    UserError if there is none."""
    saved = [n for n in storage.children(experiment) if n.startswith("searcher-state-") and n.endswith(".pkl")]
    if not saved:
        raise UserError(f"{experiment}: no saved searcher state to go on from (was the folder removed?)")
    return experiment / max(saved)


def restore_searcher(searcher: StudySearch, experiment: Location) -> None:
    """A StudySearch in the state Tune last saved for it in an experiment folder (local or in a bucket)."""
    with tempfile.TemporaryDirectory() as folder:  # Searcher.restore reads a local file
        local = Path(folder) / "searcher-state.pkl"
        local.write_bytes(storage.read_bytes(searcher_state(experiment)))
        searcher.restore(str(local))
