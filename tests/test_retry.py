"""search.retry: exactly the tries asked for, on the named exceptions only, the last failure raised as it is."""

from __future__ import annotations

import pytest

from search.retry import retry


class Flaky:
    """Fails with `error` the first `failures` calls, then returns "done"; counts its calls."""

    def __init__(self, failures: int, error: BaseException):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


class Time:
    """A clock that only the injected sleep moves: waits are recorded, never slept."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_it_retries_the_named_exceptions_up_to_the_attempts_and_then_raises_the_last():
    assert retry(Flaky(2, FileNotFoundError("gone")), FileNotFoundError, attempts=3) == "done"
    error = FileNotFoundError("gone for good")
    call = Flaky(5, error)
    with pytest.raises(FileNotFoundError) as raised:
        retry(call, FileNotFoundError, attempts=3)
    assert raised.value is error and call.calls == 3


def test_it_does_not_retry_other_exceptions():
    call = Flaky(1, ValueError("a bug, not a storage"))
    with pytest.raises(ValueError):
        retry(call, OSError, attempts=3)
    assert call.calls == 1
    call = Flaky(1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry(call, (OSError, ValueError), attempts=3)
    assert call.calls == 1


def test_waits_grow_by_the_backoff_up_to_the_cap_and_each_is_announced_first():
    time, said = Time(), []
    call = Flaky(7, OSError("endpoint down"))
    value = retry(call, OSError, delay_s=1.0, backoff=2, max_delay_s=30.0, sleep=time.sleep, clock=time.clock,
                  before_wait=lambda e, wait: said.append((str(e), wait)))
    assert value == "done" and call.calls == 8
    assert time.waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert said == [("endpoint down", w) for w in time.waits]


def test_no_wait_outlasts_the_patience():
    time = Time()
    call = Flaky(1000, OSError("endpoint down"))
    with pytest.raises(OSError):  # trial.report_checkpoint's: 1 s doubling up to 30 s, for 300 s
        retry(call, OSError, patience_s=300.0, delay_s=1.0, backoff=2, max_delay_s=30.0, sleep=time.sleep,
              clock=time.clock)
    assert sum(time.waits) <= 300.0 and sum(time.waits) + 30.0 > 300.0
    assert call.calls == len(time.waits) + 1 == 14  # 1+2+4+8+16 = 31 s, 8 waits of 30 s: 271 s; one more ends at 301


def test_a_patience_one_wait_longer_tries_until_a_failure_comes_after_the_patience():
    time = Time()
    call = Flaky(1000, OSError("bucket gone"))
    with pytest.raises(OSError):  # record_keeper.RecordKeeper's end: every 5 s until a try fails after 300 s
        retry(call, OSError, patience_s=300.0 + 5.0, delay_s=5.0, sleep=time.sleep, clock=time.clock)
    assert call.calls == 62 and time.now == 305.0  # tries at 0, 5, ..., 300 and 305


def test_zero_delay_never_sleeps():
    time = Time()
    assert retry(Flaky(4, OSError()), OSError, attempts=5, sleep=time.sleep, clock=time.clock) == "done"
    assert time.waits == []
