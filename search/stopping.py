"""SIGTERM and Ctrl-C stop a run cleanly: Tune saves its experiment state, our CSVs are rewritten, and we exit.

SIGTERM is what `ray job stop`, Kubernetes and batch schedulers send. During a Tune experiment both
signals are handed to Tune's own stop path (SIGUSR1, which Tune always handles: it ends the
experiment and checkpoints its state one last time, and our RecordKeeper writes the CSVs on the way
out); the pipeline then raises Stopped instead of going on. Outside one, Stopped is raised at once.
A second signal stops at once, as Tune's own second Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path



class Stopped(Exception):
    """The run was stopped by a signal, after saving what it had; `python -m search resume` continues it."""

    def __init__(self, signum: int, run_dir: Path):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.run_dir = signum, run_dir

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for death by signal: 130 for SIGINT, 143 for SIGTERM


class StopSignals:
    """Catches SIGTERM and SIGINT for the length of a run in run_dir (main thread only); see the module docstring."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.received: int | None = None
        self.in_tune = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        # Tune's own SIGINT handler would end the experiment without telling us; SIGUSR1 does the same for us.
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        # Until Tune installs its SIGUSR1 handler (its default would kill us), ours stops at once.
        self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._before_tune_listens)
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if kind is Stopped:  # disconnect now, so no late worker output follows the resume hint
            import ray

            ray.shutdown()

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None or not self.in_tune:
            self.received = signum
            raise Stopped(signum, self.run_dir)
        self.received = signum
        print(f"\n{signal.Signals(signum).name}: stopping the search after Ray Tune saves its state "
              "(send it again to stop at once)", flush=True)
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's stop path: ends the experiment, saves its state

    def _before_tune_listens(self, signum: int, frame: object) -> None:
        raise Stopped(self.received or signum, self.run_dir)

    @contextlib.contextmanager
    def tune(self) -> Iterator[None]:
        """Wrap a Tuner.fit(): a signal inside ends the experiment through Tune, then raises Stopped here."""
        self.check()
        self.in_tune = True
        try:
            yield
        finally:
            self.in_tune = False
        self.check()

    def check(self) -> None:
        """Raise Stopped if a signal came."""
        if self.received is not None:
            raise Stopped(self.received, self.run_dir)

