"""Write pacing: when a costly rewrite (the report, the record views) may run again, so it takes a bounded share.

A paced rewrite runs at most every ``every_s`` seconds and at most once per ``spacing`` times its last duration
(a bounded share of the caller's time however large the work grows); the caller runs it once more at the end,
due or not (``run``). Used by search.report.ReportWriter and search.record_keeper.RecordKeeper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Pacer:
    """Whether a rewrite is due, and the rewrite itself, timed to set when the next one is due."""

    def __init__(self, every_s: float, spacing: float, clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.spacing = spacing
        self.clock = clock
        self.due = 0.0  # the clock's time of the next rewrite: the first is due at once

    def is_due(self) -> bool:
        return self.clock() >= self.due

    def run(self, rewrite: Callable[[], T]) -> T:
        """rewrite() now, due or not; the next is due every_s or spacing times its duration after it started.
        A rewrite that raises leaves the next as due as it was (tried again at the next chance)."""
        started = self.clock()
        result = rewrite()
        self.due = started + max(self.every_s, self.spacing * (self.clock() - started))
        return result
