"""Many trials through the real pipeline, with synthetic training (search.synthetic): the records' journal under a
crash, its compaction, the views, resume losing and repeating nothing (the report at scale: test_report.py)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from search import leaderboard
from search.protocol import ENDED, Status
from searching import ROOT, read_csv, records, start, tail, wait

SAMPLES = 24  # enough for ASHA's three rungs and a crash with trials ended, running and not yet started
SYNTHETIC_EPOCH_S = 0.02  # search.synthetic's epochs


@pytest.mark.long
def test_a_crashed_run_of_many_trials_resumes_with_every_trial_once_and_its_journal_compacted(small_data_file, tmp_path):
    run_dir = tmp_path / "many"
    args = [str(ROOT / "benchmarks" / "scale_space.py"), "--data", str(small_data_file), "--results", str(tmp_path),
            "--name", "many", "--samples", str(SAMPLES), "--cpus-per-trial", "0.5", "--no-final"]  # 4 at once
    log = tmp_path / "driver.log"
    driver = start(log, "run", *args, synthetic_epoch_s=SYNTHETIC_EPOCH_S)
    before = _wait_until(run_dir, driver, log, lambda trials: sum(r.status in ENDED for r in trials.values()) >= 8)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and all it started, as a crash would
    driver.wait()
    assert len(list((run_dir / "journal").glob("part-*.jsonl"))) > 1  # parts, not one rewritten file

    log = tmp_path / "resume.log"
    resumed = start(log, "resume", str(run_dir), "--no-final", synthetic_epoch_s=SYNTHETIC_EPOCH_S)
    wait(resumed, log, timeout=600)
    after = leaderboard.Records.load(run_dir).trials
    live = {t: r for t, r in after.items() if r.status != Status.LOST}
    assert len(live) == SAMPLES, tail(log)  # the budget, once: none lost, none extra
    for trial_id, record in before.items():
        if record.status in ENDED:  # finished before the crash: kept as it was, not run again
            assert after[trial_id].epochs == record.epochs and after[trial_id].status == record.status
    for record in live.values():  # every epoch once, none missing, ASHA's stops at its rungs (1 and 3 of 9)
        assert record.status in ENDED and sorted(record.epochs) == list(range(1, max(record.epochs) + 1))
        assert max(record.epochs) in (1, 3, 9)
    # The stage's end compacted the journal into one base file; the views agree with it.
    assert [p.name for p in (run_dir / "journal").iterdir()][0].startswith("base-")
    assert len(list((run_dir / "journal").iterdir())) == 1
    views = leaderboard.Records.from_json(json.loads((run_dir / "trials.json").read_text()))
    assert views.to_json() == leaderboard.Records.load(run_dir).to_json()
    board = read_csv(run_dir / "leaderboard.csv")
    assert len(board) == len(after) and board["trial_id"].is_unique
    epochs = read_csv(run_dir / "epochs.csv")
    assert len(epochs) == sum(len(r.epochs) for r in after.values())
    assert json.loads((run_dir / "run.json").read_text())["ended"]


def _wait_until(run_dir, driver, log, found, timeout: float = 300):
    """The records once found(trials) holds (read from the journal, as resume reads them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, tail(log)
        trials = records(run_dir)
        if found(trials):
            return trials
        time.sleep(0.1)
    pytest.fail(f"timed out:\n{tail(log)}")
