"""Tune's events as our records: a Tune callback that folds every result into ``leaderboard.Records`` in the
driver and keeps the records' journal and views (trials.json, the CSVs) on storage."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ray import tune

from search import leaderboard
from search.errors import exception_line
from search.journal import Journal
from search.pacing import Pacer
from search.protocol import BASELINE_KEY, CONTINUES_KEY, FINALIST_KEY, Stage, Status, split_config
from search.retry import retry
from search.rundir import RunDir
from search.storage import Location


class RecordKeeper(tune.Callback):
    """Folds every trial result into our records, in the driver, as results arrive, and keeps them on storage.

    Two writes, priced apart. The journal (search.journal) gets the trials that changed: at every checkpoint
    a trial reports, at every trial's end, at the experiment's end, and otherwise at most every
    WRITE_EVERY_S seconds; it costs what changed, so resume, which replays it, loses nothing written before
    a crash. The views (trials.json, leaderboard.csv, epochs.csv) are rewritten whole, which costs what the
    run holds: at most once per VIEWS_SPACING times their last write's duration (a bounded share of the
    driver however large the run grows) and once VIEWS_GROWTH more results arrived (a bounded cost per
    result, however slow the driver gets), and always at the experiment's end (search.pacing). The report
    follows them: ``on_write`` is called after each rewrite of the views, with the count of results they
    show. Trials that a time budget (time_budget_s) ended are recorded as stopped.
    """

    WRITE_EVERY_S = 1.0
    VIEWS_SPACING = 20  # the views' rewrites take at most 1/20 of the driver's time
    VIEWS_GROWTH = 0.05  # and wait for 5 % more results: each result then pays a constant share of the rewrites
    PATIENCE_S = 300.0  # at the experiment's end, how long to keep trying a storage that does not answer
    RETRY_S = 5.0  # and how long to wait between those tries

    def __init__(self, run_dir: Location, stage: Stage = Stage.SEARCH, on_write: Callable[[int], None] | None = None,
                 time_budget_s: float | None = None):
        self.run_dir = RunDir(run_dir).path
        self.stage = stage
        self.on_write = on_write
        self.time_budget_s = time_budget_s
        self.started = time.monotonic()
        self.records = leaderboard.Records()
        self.journal: Journal | None = None
        self.journaled = 0.0
        self.views = Pacer(self.WRITE_EVERY_S, self.VIEWS_SPACING, self.VIEWS_GROWTH)  # when the views may be rewritten
        self.results = 0  # results folded in by this driver

    def setup(self, **info) -> None:
        self.started = time.monotonic()
        self.records = leaderboard.Records.load(self.run_dir)
        self.journal = Journal(RunDir(self.run_dir).journal)
        if self.records.trials and not self.journal.exists():  # a run made before the journal: its trials.json first
            self.journal.compact(self.records.to_json().values())

    def _report(self, trial, result: dict) -> None:
        params, extras = split_config(trial.config)
        self.records.report(record_id(trial), params, extras.get(BASELINE_KEY, ""), result, stage=self.stage,
                            finalist_of=extras.get(FINALIST_KEY, ""))

    def _write(self, now: bool = True, must: bool = False) -> None:
        """Journal the changed trials (now, or if WRITE_EVERY_S passed), then the views if they are due (must:
        both, and the journal compacted). A failed write (a bucket gone for a while) keeps the records in memory
        for the next one; must: retry for up to PATIENCE_S, then raise."""
        if not (now or must or time.monotonic() - self.journaled >= self.WRITE_EVERY_S):
            return
        if must:
            # The experiment's end: nothing comes after to write them, so a storage gone for a while is waited out,
            # a try every RETRY_S until one fails after PATIENCE_S (retry stops where its next wait would end past
            # its patience: hence one wait more).
            retry(self._write_all, OSError, patience_s=self.PATIENCE_S + self.RETRY_S, delay_s=self.RETRY_S)
            return
        try:
            self._journal(compact=False)
            if self.views.is_due(self.results):
                self._views()
        except OSError as e:
            print(f"records: could not write them to {self.run_dir} ({exception_line(str(e))}); "
                  "kept, written with the next result", file=sys.stderr, flush=True)

    def _write_all(self) -> None:
        """The journal compacted and the views, due or not."""
        self._journal(compact=True)
        self._views()

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
        self.views.run(lambda: leaderboard.write(self.run_dir, self.records), self.results)
        if self.on_write:
            self.on_write(self.results)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.results += 1
        self._report(trial, result)
        self._write(now=result.get("checkpointed", True) or result.get("status") != Status.RUNNING)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.records.finish(record_id(trial))
        self._write()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = trial.get_error()
        self._report(trial, {})
        message = exception_line(str(error)) if error else "error (see Ray's logs)"
        self.records.finish(record_id(trial), error=message, status=failure_status(error))
        self._write()

    def on_experiment_end(self, trials, **info) -> None:
        # After a driver crash, Ray's saved state can lag: a trial the dead driver had started may be
        # unknown to the restored experiment, which samples a new trial in its place. Say so.
        self.records.mark_lost(known={record_id(t) for t in trials}, stage=self.stage)
        if self.time_budget_s and time.monotonic() - self.started >= self.time_budget_s:
            for trial in trials:  # the budget ended them, and Tune tells no callback so: they stopped there
                if trial.status == trial.TERMINATED:
                    self.records.finish(record_id(trial))
        self._write(must=True)


def record_id(trial) -> str:
    """The record a Tune trial reports into: its own, or the dead driver's finalist it continues."""
    return trial.config.get(CONTINUES_KEY) or trial.trial_id


def failure_status(error: BaseException | None) -> str:
    """"oom" when Ray's memory monitor killed the trial's worker (it does so when a node runs low), else "error"."""
    text = f"{type(error).__name__}: {error}" if error else ""
    return Status.OOM if "OutOfMemoryError" in text or "running low on memory" in text else Status.ERROR
