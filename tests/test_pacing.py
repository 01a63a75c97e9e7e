"""search.pacing: a paced rewrite runs at most once per period (or per SPACING times its duration) and once more
at the end; and the report's writer reads its period when it is made (a bad value: a warning, not an error)."""

from __future__ import annotations

import pytest

from search import report
from search.pacing import Pacer


class Clock:
    """A clock the test moves: no sleeping, no timing asserts."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_paced_rewrite_runs_at_most_once_per_period_and_always_at_the_end():
    clock = Clock()
    pacer = Pacer(every_s=10.0, spacing=20, clock=clock)
    written = []
    for tick in range(1000):  # an ask every 0.1 s for 100 s
        clock.now = 100.0 + tick / 10
        if pacer.is_due():
            pacer.run(lambda: written.append(clock.now))
    assert written[0] == 100.0  # the first ask writes at once
    assert len(written) == 10 and all(later - earlier >= 10.0 - 1e-9 for earlier, later in zip(written, written[1:]))
    assert not pacer.is_due()
    pacer.run(lambda: written.append(clock.now))  # the end: due or not
    assert len(written) == 11 and written[-1] == clock.now


def test_a_slow_rewrite_spaces_the_next_by_spacing_times_its_duration():
    clock = Clock()
    pacer = Pacer(every_s=10.0, spacing=20, clock=clock)

    def slow() -> str:
        clock.now += 2.0  # 2 s to write: the next is due 40 s after this one started
        return "written"

    assert pacer.run(slow) == "written" and pacer.due == 140.0
    clock.now = 139.9
    assert not pacer.is_due()
    clock.now = 140.0
    assert pacer.is_due()


def test_a_failed_rewrite_leaves_it_due():
    pacer = Pacer(every_s=10.0, spacing=20, clock=Clock())

    def fails() -> None:
        raise OSError("bucket gone")

    with pytest.raises(OSError, match="bucket gone"):
        pacer.run(fails)
    assert pacer.is_due() and pacer.due == 0.0  # tried again at the next chance


def test_the_report_writer_reads_its_period_when_made_and_a_bad_one_falls_back_with_one_line(tmp_path, monkeypatch,
                                                                                            capsys):
    monkeypatch.setenv(report.EVERY_S_VARIABLE, "7.5")
    assert report.ReportWriter(tmp_path).pacer.every_s == 7.5
    monkeypatch.delenv(report.EVERY_S_VARIABLE)
    assert report.ReportWriter(tmp_path).pacer.every_s == report.ReportWriter.EVERY_S == 30.0
    capsys.readouterr()
    for bad in ("soon", "0", "-1", "nan"):
        monkeypatch.setenv(report.EVERY_S_VARIABLE, bad)
        assert report.ReportWriter(tmp_path).pacer.every_s == 30.0
        assert capsys.readouterr().err.splitlines() == [
            f"report: ${report.EVERY_S_VARIABLE}={bad!r}: expected a number of seconds above 0; using 30"]


def test_with_growth_a_rewrite_waits_until_what_it_shows_grew_by_that_fraction():
    clock = Clock()
    pacer = Pacer(every_s=1.0, spacing=20, growth=0.1, clock=clock)
    shown = []
    for count in range(1, 2001):  # a result a second: time alone would allow a rewrite at every one
        clock.now += 1.0
        if pacer.is_due(count):
            pacer.run(lambda: shown.append(count), count)
    assert shown[:3] == [1, 2, 3]  # small counts grow fast
    assert all(later - earlier >= 0.1 * later for earlier, later in zip(shown, shown[1:]))
    assert len(shown) < 100 and shown[-1] > 1800  # about log(2000) / log(1/0.9) rewrites, not 2000
