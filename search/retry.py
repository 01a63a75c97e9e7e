"""Retrying a call that can fail for a while (a storage that does not answer, a file replaced mid-read): one loop.

Each caller names what it waits out (``on``), how often or how long (``attempts``, ``patience_s``), how long it
waits between tries (``delay_s``, growing by ``backoff`` up to ``max_delay_s``), and says why in a comment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry(call: Callable[[], T], on: type[BaseException] | tuple[type[BaseException], ...], *,
          attempts: int | None = None, patience_s: float | None = None, delay_s: float = 0.0, backoff: float = 1.0,
          max_delay_s: float = math.inf, before_wait: Callable[[BaseException, float], None] | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> T:
    """call()'s value; an exception of the types `on` is retried, any other raised at once.

    A failure is raised as it is once `attempts` tries (the first included) failed, or when the wait before the
    next try would end more than patience_s after the first began (no wait outlasts the patience). Otherwise
    before_wait(error, wait) (a log line, say), then the wait; waits start at delay_s (0: none) and are
    multiplied by backoff after each, up to max_delay_s.
    """
    deadline = None if patience_s is None else clock() + patience_s
    delay, tries = delay_s, 0
    while True:
        try:
            return call()
        except on as error:
            tries += 1
            if (attempts is not None and tries >= attempts) or (deadline is not None and clock() + delay > deadline):
                raise
            if before_wait:
                before_wait(error, delay)
            if delay > 0:
                sleep(delay)
            delay = min(delay * backoff, max_delay_s)
