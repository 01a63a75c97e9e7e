"""SIGTERM and Ctrl-C (SIGINT) take the same path: outside a Tune experiment they stop at once, inside one they go
to Tune's stop signal (SIGUSR1) and the run stops when the experiment has ended. The end-to-end stop and resume
of a real search is test_search_e2e.py::test_stopped_in_the_search_and_killed_in_the_finalist_stage_..."""

from __future__ import annotations

import os
import signal

import pytest

from search.stopping import Stopped, StopSignals


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_outside_an_experiment_a_signal_stops_at_once(tmp_path, signum, code):
    with pytest.raises(Stopped) as stopped, StopSignals(tmp_path):
        os.kill(os.getpid(), signum)
        pytest.fail("not stopped")
    assert stopped.value.signum == signum and stopped.value.exit_code == code and stopped.value.run_dir == tmp_path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_inside_an_experiment_the_signal_goes_to_tunes_stop_path_then_the_run_stops(tmp_path, signum):
    told, before = [], {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    with pytest.raises(Stopped) as stopped, StopSignals(tmp_path) as stop:
        with stop.tune():
            signal.signal(signal.SIGUSR1, lambda *_: told.append("tune"))  # as Tune's run loop installs it
            os.kill(os.getpid(), signum)
            told.append("the experiment went on to its end")  # Tune ends it and saves its state
    assert told == ["tune", "the experiment went on to its end"] and stopped.value.signum == signum
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are put back


def test_before_tune_listens_a_signal_still_stops_the_run(tmp_path):
    with pytest.raises(Stopped) as stopped, StopSignals(tmp_path) as stop:
        with stop.tune():  # Tune has not installed its SIGUSR1 handler yet
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("not stopped")
    assert stopped.value.signum == signal.SIGTERM
