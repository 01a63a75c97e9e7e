"""Helpers for tests that drive `python -m search` as a user would: start it, watch its records, wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from search import connection, leaderboard, protocol

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "tests" / "spaces"
TERMINAL = protocol.ENDED  # the statuses a trial ends with
# A driver's local Ray with its dashboard, as a user's is by default (tests/conftest.py turns it off elsewhere).
WITH_DASHBOARD = {connection.DASHBOARD_VARIABLE: "1"}


def read_csv(path, **options) -> pd.DataFrame:
    """A run's CSV (a path or an s3:// URI) read as the README tells a user to: trial ids as text, since
    Tune's 8-hex-digit ids such as 051e9472 would otherwise parse as numbers (that one as inf)."""
    return pd.read_csv(path, dtype={"trial_id": str, "finalist_of": str}, **options)


def _cli(synthetic_epoch_s: float | None) -> list[str]:
    """The CLI's command: `python -m search`, or with synthetic training (search.synthetic) epochs of that many seconds."""
    if synthetic_epoch_s is None:
        return [sys.executable, "-m", "search"]
    return [sys.executable, "-m", "search.synthetic", "--epoch-s", str(synthetic_epoch_s)]


def search(*args: str, env: dict | None = None, timeout: float = 600,
           synthetic_epoch_s: float | None = None) -> subprocess.CompletedProcess:
    """Run the CLI to completion."""
    return subprocess.run([*_cli(synthetic_epoch_s), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def start(log: Path, *args: str, env: dict | None = None, synthetic_epoch_s: float | None = None) -> subprocess.Popen:
    """Start the CLI in its own process group (so a test can SIGKILL it and all it started), output to log."""
    return subprocess.Popen([*_cli(synthetic_epoch_s), *args], cwd=ROOT, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})


def run_in_process(*argv: str, epoch_s: float | None = 0.05, timeout_s: float = 600) -> int:
    """The CLI in this process with synthetic training (search.synthetic), or the real trial if epoch_s is None: its
    exit code. After timeout_s it fails (SIGALRM), as a CLI process would time out, instead of hanging the suite.
    Ray is shut down after, so the next test in this worker starts clean."""
    import ray

    from search import cli, synthetic

    def expire(*_):
        raise TimeoutError(f"`{' '.join(argv[:2])}` still running after {timeout_s:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return cli.main(list(argv), trainable=None if epoch_s is None else synthetic.trainable(epoch_s))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        ray.shutdown()


def records(run_dir: Path) -> dict[str, leaderboard.TrialRecord]:
    """The run's records as they are on disk now ({} before the first result)."""
    try:
        return leaderboard.Records.load(run_dir).trials
    except FileNotFoundError:
        return {}


def wait_for(run_dir: Path, driver: subprocess.Popen, what: str, found: Callable[[dict], object],
             timeout: float = 400, log: Path | None = None):
    """Poll the records until found(trials) is truthy and return it; fail if the driver ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            pytest.fail(f"the driver ended (exit {driver.returncode}) before {what}:\n{tail(log)}")
        value = found(records(run_dir))
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{tail(log)}")


def finished_and_running(trials: dict) -> dict | None:
    """The finished trials, once one trial has finished and another has trained an epoch."""
    finished = {t: r for t, r in trials.items() if r.status in TERMINAL and r.epochs}
    running = [r for r in trials.values() if r.status == "running" and r.epochs]
    return finished if finished and running else None


def tail(log: Path | None, lines: int = 40) -> str:
    return "\n".join(log.read_text().splitlines()[-lines:]) if log and log.exists() else ""


def wait(driver: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    assert driver.wait(timeout=timeout) == 0, tail(log)
