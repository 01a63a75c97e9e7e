"""Write pacing: when a costly rewrite (the report, the record views) may run again, so it takes a bounded share.

A paced rewrite runs at most every ``every_s`` seconds, at most once per ``spacing`` times its last duration
(a bounded share of the caller's time however large the work grows), and, with ``growth``, only once what it
shows (a count the caller passes) grew by that fraction since the last one (a bounded cost per item however
slow the caller gets: a rewrite that costs what the run holds is then paid once per ``growth`` of the run).
The caller runs it once more at the end, due or not (``run``). Used by search.report.ReportWriter and
search.record_keeper.RecordKeeper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Pacer:
    """Whether a rewrite is due, and the rewrite itself, timed to set when the next one is due."""

    growth, shown = 0.0, 0  # as in __init__: a Pacer pickled in a run's Tune state before growth existed has neither

    def __init__(self, every_s: float, spacing: float, growth: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.spacing = spacing
        self.growth = growth
        self.clock = clock
        self.due = 0.0  # the clock's time of the next rewrite: the first is due at once
        self.shown = 0  # the count the last rewrite showed

    def is_due(self, count: int = 0) -> bool:
        return self.clock() >= self.due and count - self.shown >= self.growth * count

    def run(self, rewrite: Callable[[], T], count: int = 0) -> T:
        """rewrite() now, due or not, showing `count`; the next is due every_s or spacing times its duration after
        it started. A rewrite that raises leaves the next as due as it was (tried again at the next chance)."""
        started = self.clock()
        result = rewrite()
        self.due = started + max(self.every_s, self.spacing * (self.clock() - started))
        self.shown = count
        return result
