"""The run's records: every trial's configuration, status and per-epoch metrics, as CSV leaderboards.

Plain data, no Ray: the tuner feeds results in; the records rank themselves (``TrialRecord.rank_key``) and
choose the finalists and the winner: by validation accuracy, or in a multi-objective run by the Pareto front of
accuracy and cost (search.objectives), its knee first. The trials that changed go to the run's journal (search.journal, what
``resume`` reads), and pandas writes the views: ``leaderboard.csv`` (one row per trial), ``epochs.csv`` (long
format, one row per trial and epoch) and ``trials.json`` (the same records, machine-readable), each atomically.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from search import objectives as goals
from search import storage
from search.errors import UserError
from search.journal import Journal
from search.params import PARAMS, validate
from search.protocol import ENDED, METRIC, TRAINED_CLEANLY, Stage, Status
from search.rundir import RunDir
from search.storage import Location

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

LEADERBOARD_COLUMNS = [
    "rank", "trial_id", "stage", "status", "best_val_accuracy", "best_epoch", "epochs_trained", "val_loss_at_best",
    "param_count", "train_seconds", "node", "baseline", "finalist_of", "error",
]
# A multi-objective run's columns beside them: each cost, and the trial's place on the Pareto front.
PARETO_COLUMNS = ["pareto", "pareto_rank", "flops", "latency_ms", "latency_device"]


@dataclass
class TrialRecord:
    """What we know of one trial: its configuration, where it ran, how it ended, and each epoch's metrics."""

    trial_id: str
    params: dict[str, Any]
    baseline: str = ""
    status: str = Status.RUNNING
    error: str = ""
    node: str = ""  # the Ray node it last ran on (each epoch's node is in epochs)
    param_count: int | None = None
    train_seconds: float = 0.0
    # epoch -> its metrics, the node it trained on, and the checkpointed epoch that stretch of
    # training resumed from (0: a fresh start)
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    stage: str = Stage.SEARCH
    finalist_of: str = ""  # a finalist: the search trial whose configuration it retrained at the full budget
    flops: int | None = None  # of one view's forward pass (search.objectives.COSTS)
    latency_ms: float | None = None  # per volume, measured where latency is an objective or a limit
    latency_device: str = ""  # the device and backend latency_ms was measured on

    def nodes(self) -> str:
        """Where it ran, in order: "worker-1>worker-2" for a trial restarted on another node."""
        seen = [m.get("node") or self.node for _, m in sorted(self.epochs.items())] or [self.node]
        return ">".join(n for i, n in enumerate(seen) if n and (i == 0 or n != seen[i - 1]))

    def best(self) -> tuple[int, dict[str, float]] | None:
        """(epoch, metrics) of the best validation accuracy; the earliest wins a tie."""
        if not self.epochs:
            return None
        return max(sorted(self.epochs.items()), key=lambda item: item[1]["val_accuracy"])

    def rank_key(self) -> tuple:
        """The ranking rule, sorted ascending: finalists that trained (or train) their full budget first, then the
        search's trials, then finalists that failed or were lost; within each, the best validation accuracy
        (fewer epochs to it on a tie, then the trial id), and trials with no epoch last."""
        finalist, good = self.stage == Stage.FINALIST, self.status in (Status.RUNNING, Status.COMPLETED)
        group = 0 if finalist and good else 2 if finalist else 1
        best = self.best()
        if best is None or math.isnan(best[1]["val_accuracy"]) or self.status == Status.INFEASIBLE:
            return group, 1, 0.0, 0, self.trial_id  # a latency limit refuses a trial after its first epoch
        return group, 0, -best[1]["val_accuracy"], best[0], self.trial_id

    def objective_row(self) -> dict[str, Any]:
        """What the objectives read of this trial: its best validation accuracy and its costs."""
        best = self.best()
        return {METRIC: best[1][METRIC] if best else None, "param_count": self.param_count, "flops": self.flops,
                "latency_ms": self.latency_ms}


@dataclass(frozen=True)
class Pick:
    """A trained trial chosen from the ranking (the winner, or another rank), as best.json holds it.

    Its params train for the epoch count where its validation accuracy peaked; they keep the trial's
    schedule_epochs (the cosine horizon), so a retrain's learning rate at each epoch is the one the trial had.
    """

    trial_id: str
    val_accuracy: float
    best_epoch: int
    baseline: str
    stage: str
    finalist_of: str
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Records:
    """All trials of a run, updated from each reported result and written out after each change."""

    def __init__(self, trials: dict[str, TrialRecord] | None = None, objectives: goals.Objectives = goals.Objectives()):
        self.trials = trials or {}
        self.objectives = objectives  # what ranks them (run.json's settings; accuracy alone by default)
        self.changed: set[str] = set()  # trial ids changed since the journal last took them (take_changed)

    def report(self, trial_id: str, params: dict[str, Any], baseline: str, result: dict[str, Any],
               stage: str = Stage.SEARCH, finalist_of: str = "") -> TrialRecord:
        """Fold one reported result (one epoch, or a terminal status) into the trial's record.

        A trial that had already ended keeps its record: after a driver crash, Tune's saved state can lag and
        run a finished trial again from its last checkpoint; what it reports then is not news (see finish).
        """
        if trial_id in self.trials and self.trials[trial_id].status in ENDED:
            return self.trials[trial_id]
        record = self.trials.setdefault(trial_id, TrialRecord(trial_id, params, baseline, stage=stage,
                                                              finalist_of=finalist_of))
        record.status = result.get("status", record.status)
        record.error = result.get("error", record.error)
        record.node = result.get("node") or record.node
        record.param_count = result.get("param_count", record.param_count)
        record.train_seconds = result.get("train_seconds", record.train_seconds)
        record.flops = result.get("flops", record.flops)
        record.latency_ms = result.get("latency_ms", record.latency_ms)
        record.latency_device = result.get("latency_device", record.latency_device)
        self.changed.add(trial_id)
        epoch = int(result.get("epoch") or 0)
        if epoch > 0 and all(k in result for k in EPOCH_METRICS):
            record.epochs[epoch] = {**{k: float(result[k]) for k in EPOCH_METRICS},
                                    "node": result.get("node", ""), "resumed_from": int(result.get("resumed_from", 0))}
            # A trial restarted from an older checkpoint re-trains later epochs: drop the stale ones.
            for later in [e for e in record.epochs if e > epoch]:
                del record.epochs[later]
        return record

    def finish(self, trial_id: str, error: str = "", status: str = "") -> None:
        """Tune ended the trial: without a terminal status of its own it was stopped, or errored.

        A trial that had already ended keeps its outcome: after a driver crash, Ray's lagging state
        may restart a finished trial and fail it (say, its old checkpoint is gone); that is not news.
        """
        record = self.trials.get(trial_id)
        if record is None:
            return
        self.changed.add(trial_id)
        if error and record.status not in ENDED:
            record.status, record.error = status or Status.ERROR, error
        elif record.status not in ENDED:
            record.status = Status.STOPPED
        if record.baseline and record.stage == Stage.SEARCH and record.status in (Status.COMPLETED, Status.STOPPED):
            record.status = Status.BASELINE

    def mark_lost(self, known: set[str], stage: str = Stage.SEARCH) -> None:
        """Unfinished records of `stage` whose trials the (restored) experiment does not know: their driver died first."""
        for record in self.trials.values():
            if record.stage == stage and record.trial_id not in known and record.status not in ENDED:
                self.changed.add(record.trial_id)
                record.status = Status.LOST
                record.error = ("its driver died before Ray saved this trial; the resumed search sampled another"
                                if stage == Stage.SEARCH else "its driver died; the resumed run trained this finalist again")

    def ranked(self, places: dict[str, tuple[int, float]] | None = None) -> list[TrialRecord]:
        """Every trial, best first (TrialRecord.rank_key): rank 1 is the winner, the best finalist where there are any.

        A multi-objective run ranks within the same groups by the Pareto front instead (front_places): the front
        first, its knee at the top, then each member by its distance to the ideal point; then the next front.
        places: front_places(), where the caller has them already."""
        by_accuracy = sorted(self.trials.values(), key=TrialRecord.rank_key)
        if not self.objectives.multi:
            return by_accuracy
        places = self.front_places() if places is None else places
        far = (np.inf, np.inf)  # no place on a front (no epoch or no cost): after every trial that has one
        return sorted(by_accuracy, key=lambda r: (r.rank_key()[0], places.get(r.trial_id, far)))

    def front_places(self) -> dict[str, tuple[int, float]]:
        """trial id -> (its Pareto rank from 1, its scaled distance to the ideal point) of a multi-objective run.

        Finalists are sorted among finalists and search trials among search trials (a finalist measures its
        configuration again, at the full budget). A trial is on a front once it has an epoch and all its costs,
        unless it failed; the distance scales each objective to the range of its front's first layer (objectives.knee).
        """
        names, places = self.objectives.names, {}
        for finalist in (True, False):
            rows = {r.trial_id: self.objectives.values(r.objective_row()) for r in self.trials.values()
                    if (r.stage == Stage.FINALIST) == finalist and r.epochs
                    and r.status in (*TRAINED_CLEANLY, Status.RUNNING)}
            rows = {tid: v for tid, v in rows.items() if v is not None}
            if not rows:
                continue
            points = np.array(list(rows.values()))
            ranks = goals.front_ranks(points, names)
            distances = goals.distances(points, names, points[ranks == 1])
            places.update({tid: (int(rank), float(d)) for tid, rank, d in zip(rows, ranks, distances)})
        return places

    def finalists(self, count: int) -> list[TrialRecord]:
        """The top `count` search trials that trained cleanly: the configurations the finalist stage retrains."""
        clean = [r for r in self.ranked() if r.stage == Stage.SEARCH and r.epochs and r.status in TRAINED_CLEANLY]
        return clean[:count]

    def front(self, stage: str = Stage.SEARCH, places: dict[str, tuple[int, float]] | None = None) -> list[TrialRecord]:
        """A multi-objective run's Pareto front among one stage's trials, its knee first (empty for accuracy alone);
        places: front_places(), where the caller has them already."""
        if places is None:
            places = self.front_places() if self.objectives.multi else {}
        on = [r for r in self.trials.values() if r.stage == stage and places.get(r.trial_id, (0,))[0] == 1]
        return sorted(on, key=lambda r: (places[r.trial_id][1], r.rank_key()))

    def front_line(self) -> str | None:
        """The console's last line for a multi-objective run: the search front's size and its knee."""
        front = self.front()
        if not front:
            return None
        knee = front[0].objective_row()
        shown = ", ".join(f"{n} {knee[n]:.4f}" if n == METRIC else f"{n} {goals.show(knee[n])}" for n in self.objectives.names)
        return (f"Pareto front of {' against '.join(self.objectives.names)}: {len(front)} search trials; "
                f"its knee {front[0].trial_id} ({shown})")

    def pick(self, rank: int = 1, within: str | None = None) -> Pick:
        """The trial ranked `rank` among those that trained (1: the winner); UserError if there is no such trial.

        within (`final --pareto "latency_ms<=1.5"`): instead the most accurate trial whose costs meet it, a
        finalist first as in the ranking."""
        trained = [r for r in self.ranked() if r.epochs and r.status != Status.INFEASIBLE]
        if not trained:
            raise UserError("no trial trained successfully; see leaderboard.csv for each trial's status")
        if within is not None:
            conditions = goals.parse_condition(within)
            fitting = [r for r in sorted(trained, key=TrialRecord.rank_key)
                       if r.status in (*TRAINED_CLEANLY, Status.RUNNING) and goals.meets(r.objective_row(), conditions)]
            if not fitting:
                raise UserError(f"--pareto {within!r}: no trained trial meets it (see the leaderboard's costs)")
            trained, rank = fitting, 1
        if not 1 <= rank <= len(trained):
            raise UserError(f"--rank {rank} is out of range (the leaderboard has {len(trained)} trained trials)")
        record = trained[rank - 1]
        epoch, metrics = record.best()
        return Pick(record.trial_id, float(metrics["val_accuracy"]), epoch, record.baseline, str(record.stage),
                    record.finalist_of, validate({**record.params, "epochs": epoch}))

    def take_changed(self) -> list[dict[str, Any]]:
        """The records changed since the last call, as dicts for the journal; the caller journals them or
        puts the ids back into `changed` (a failed write)."""
        taken, self.changed = self.changed, set()
        return [asdict(self.trials[tid]) for tid in sorted(taken)]

    def to_json(self) -> dict[str, Any]:
        return {tid: asdict(r) for tid, r in self.trials.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any], objectives: goals.Objectives = goals.Objectives()) -> Records:
        trials = {}
        for tid, r in data.items():
            r = dict(r, epochs={int(e): m for e, m in r["epochs"].items()})
            trials[tid] = TrialRecord(**r)
        return cls(trials, objectives)

    @classmethod
    def load(cls, run_dir: Location) -> Records:
        """The run's records: its journal replayed, or for a run made before the journal its trials.json
        (none before the first result)."""
        where = RunDir(run_dir)
        aims = objectives_of(run_dir)
        journal = Journal(where.journal)
        if journal.exists():
            return cls.from_json(journal.load(), aims)
        path = where.trials_json
        return cls.from_json(json.loads(storage.read_text(path)), aims) if storage.is_file(path) else cls(objectives=aims)


def objectives_of(run_dir: Location) -> goals.Objectives:
    """What the run optimizes, as its run.json's settings say (accuracy alone for a run made before objectives)."""
    from search.settings import Settings

    path = RunDir(run_dir).run_json
    if not storage.is_file(path):
        return goals.Objectives()
    try:
        return Settings.from_json(json.loads(storage.read_text(path))["space"]["settings"]).goals()
    except (ValueError, KeyError, TypeError, UserError):  # an unreadable run.json is provenance.read's to report
        return goals.Objectives()


def leaderboard(records: Records) -> pd.DataFrame:
    """One row per trial, in the records' ranking (Records.ranked), with its rank, outcome and hyperparameters."""
    rows = []
    places = records.front_places() if records.objectives.multi else {}
    for rank, r in enumerate(records.ranked(places), start=1):
        best = r.best()
        place = places.get(r.trial_id)
        pareto = {"pareto": bool(place and place[0] == 1), "pareto_rank": place[0] if place else None, "flops": r.flops,
                  "latency_ms": r.latency_ms, "latency_device": r.latency_device} if records.objectives.multi else {}
        rows.append({
            "rank": rank,
            "trial_id": r.trial_id,
            "stage": str(r.stage),  # plain text in the frame, whether the record came from memory or JSON
            "status": str(r.status),
            "best_val_accuracy": best[1]["val_accuracy"] if best else math.nan,
            "best_epoch": best[0] if best else 0,
            "epochs_trained": max(r.epochs, default=0),
            "val_loss_at_best": best[1]["val_loss"] if best else math.nan,
            "param_count": r.param_count,
            "train_seconds": round(r.train_seconds, 1),
            "node": r.nodes(),
            "baseline": r.baseline,
            "finalist_of": r.finalist_of,
            "error": r.error,
            **pareto,
            **r.params,
        })
    columns = LEADERBOARD_COLUMNS + (PARETO_COLUMNS if records.objectives.multi else [])
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    if records.objectives.multi:
        frame["pareto_rank"] = frame["pareto_rank"].astype("Int64")  # blank where the trial has no place on a front
    hyper = [c for c in PARAMS if c in frame.columns] + sorted(set(frame.columns) - set(PARAMS) - set(columns))
    return frame[columns + hyper]


def epochs(records: Records) -> pd.DataFrame:
    """Long format: one row per trial and epoch."""
    rows = [
        {"trial_id": r.trial_id, "epoch": e, **m}
        for r in records.trials.values()
        for e, m in sorted(r.epochs.items())
    ]
    return pd.DataFrame(rows, columns=["trial_id", "epoch", *EPOCH_METRICS, "node", "resumed_from"])


def write(run_dir: Location, records: Records) -> pd.DataFrame:
    """Rewrite the views, trials.json, epochs.csv and leaderboard.csv, each whole; return the leaderboard.
    (The journal, which resume reads, is the RecordKeeper's to append.)"""
    where = RunDir(run_dir)
    board = leaderboard(records)
    storage.write_json(where.trials_json, records.to_json())
    storage.write_text(where.epochs_csv, epochs(records).to_csv(index=False))
    storage.write_text(where.leaderboard_csv, board.to_csv(index=False))
    return board


def table(board: pd.DataFrame, top: int | None = None) -> str:
    """A readable terminal table of the leaderboard's main columns and the hyperparameters that vary."""
    shown = board.head(top) if top else board
    pareto = ["pareto", "pareto_rank", "param_count", "flops", "latency_ms"] if "pareto" in board.columns else []
    hyper = board.columns[len(LEADERBOARD_COLUMNS) + (len(PARETO_COLUMNS) if pareto else 0):]
    varying = [c for c in hyper if board[c].astype(str).nunique() > 1]
    columns = ["rank", "trial_id", "stage", "status", "best_val_accuracy", "best_epoch", "epochs_trained", *pareto,
               "baseline", "finalist_of", *varying]
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.float_format", "{:.4g}".format):
        return shown[columns].to_string(index=False)
