"""Stopped and killed runs resume exactly: through the real CLI and a real local Ray, with synthetic trials
(search.synthetic: the subject is the pipeline's state, not the training)."""

from __future__ import annotations

import json
import os
import signal

import psutil

from search import leaderboard
from search.protocol import Status
from searching import SPACES, WITH_DASHBOARD, finished_and_running, read_csv, search, start, wait_for

EPOCH_S = 1.0  # interrupted.py: 3 epochs a trial, one trial at a time


def test_a_sigterm_to_the_whole_job_in_the_search_and_a_kill_in_the_finalists_resume_exactly(small_data_file, tmp_path):
    """SIGTERM to the driver's whole process group, as `timeout`, systemd, Slurm and batch systems send it (the local
    Ray's processes get it too), with one search trial finished and one running: the run stops cleanly. Resume;
    SIGKILL the resumed driver and all it started (as a crash would) with one finalist finished and one running;
    resume again: it stops what the dead driver's local Ray left running. Nothing finished trains again, nothing
    is missing, and the killed finalist continues from its newest checkpoint under its own record."""
    run_dir = tmp_path / "stopped"
    log = tmp_path / "driver.log"
    driver = start(log, "run", str(SPACES / "interrupted.py"), "--data", str(small_data_file), "--results", str(tmp_path),
                   "--name", "stopped", env=WITH_DASHBOARD, synthetic_epoch_s=EPOCH_S)
    wait_for(run_dir, driver, "a finished and a running trial", finished_and_running, log=log)
    os.killpg(driver.pid, signal.SIGTERM)
    assert driver.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    output = log.read_text()
    assert output.splitlines()[-1] == (f"stopped by SIGTERM: Ray Tune's state and every finished trial are saved in "
                                       f"{run_dir}. Continue with: python -m search resume {run_dir}")
    assert "Traceback" not in output
    before = leaderboard.Records.load(run_dir).trials
    board = read_csv(run_dir / "leaderboard.csv")  # consistent with the records: every trial, one row each
    assert sorted(board["trial_id"]) == sorted(before) and "running" in set(board["status"])
    assert not json.loads((run_dir / "run.json").read_text()).get("search_ended")

    def finalist_finished_and_running(trials: dict) -> dict | None:
        return finished_and_running({t: r for t, r in trials.items() if r.stage == "finalist"})

    log = tmp_path / "resume.log"
    driver = start(log, "resume", str(run_dir), env=WITH_DASHBOARD, synthetic_epoch_s=EPOCH_S)
    before_finalists = wait_for(run_dir, driver, "a finished and a running finalist", finalist_finished_and_running, log=log)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    killed = {t: r for t, r in leaderboard.Records.load(run_dir).trials.items() if r.stage == "finalist" and r.status == "running"}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["search_ended"]
    session = info["resumed"][0]["cluster"]["session"]
    assert _orphans(session)  # the dead driver's local Ray left agents running, holding files in its session folder

    result = search("resume", str(run_dir), env=WITH_DASHBOARD, synthetic_epoch_s=EPOCH_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not _orphans(session)  # the resume stopped them
    after = leaderboard.Records.load(run_dir).trials
    searched = {t: r for t, r in after.items() if r.stage == "search"}
    finalists = {t: r for t, r in after.items() if r.stage == "finalist"}
    assert len(searched) == 3 and {r.status for r in searched.values()} == {"completed"}, after  # none lost, none extra
    assert len(finalists) == 2 and {r.status for r in finalists.values()} == {"completed"}, after  # none lost
    finalist_of = {r.finalist_of for r in finalists.values()}
    assert len(finalist_of) == 2 and finalist_of <= set(searched)  # two search trials' configurations, once each
    assert all(sorted(r.epochs) == [1, 2, 3] for r in finalists.values())
    for trial_id, record in before.items():
        if record.status == "completed":  # finished before the stop: not run again
            assert after[trial_id].train_seconds == record.train_seconds and after[trial_id].epochs == record.epochs
        else:  # stopped mid-run: continued from its checkpoint, its epochs kept
            assert set(record.epochs) <= set(after[trial_id].epochs) and sorted(after[trial_id].epochs) == [1, 2, 3]
            assert all(after[trial_id].epochs[e] == record.epochs[e] for e in record.epochs)
    for trial_id, record in before_finalists.items():  # finished before the kill: not run again
        assert after[trial_id].epochs == record.epochs and after[trial_id].train_seconds == record.train_seconds
    (trial_id, dead), = killed.items()  # the killed finalist continued in tune-finalists-2 under its own record
    # from its newest checkpoint in tune-finalists (its worker may have trained on past the record before it died)
    newest = max((run_dir / "tune-finalists" / trial_id).glob("checkpoint_*"))
    trained = json.loads((newest / "state.json").read_text())["epoch"]
    resumed = {e: m["resumed_from"] for e, m in after[trial_id].epochs.items()}
    assert trained >= max(dead.epochs) and all(resumed[e] == trained for e in resumed if e > trained)
    assert all(resumed[e] < trained for e in resumed if e <= trained), (trained, resumed)  # none trained again
    assert (run_dir / "tune-finalists-2" / trial_id).is_dir() and not any(
        p.name != trial_id for p in (run_dir / "tune-finalists-2").iterdir() if p.is_dir())
    # Tune's iteration (ASHA's clock) is the epoch in every result of the search, resumed trials included.
    results = [json.loads(line) for path in (run_dir / "tune").glob("*/result.json") for line in path.read_text().splitlines()]
    assert len(results) == 3 * 3 and all(r["training_iteration"] == r["epoch"] for r in results)
    best = json.loads((run_dir / "best.json").read_text())
    assert best["stage"] == "finalist" and best["trial_id"] in finalists
    assert (run_dir / "final" / "test_metrics.json").is_file()
    assert len(json.loads((run_dir / "run.json").read_text())["resumed"]) == 2
    assert Status.LOST not in {r.status for r in after.values()}


def _orphans(session: str) -> list[int]:
    """Processes holding files in a Ray session's folder."""
    return [p.pid for p in psutil.process_iter() if _holds_files_of(p, session)]


def _holds_files_of(process: psutil.Process, session: str) -> bool:
    try:
        return any(session in f.path for f in process.open_files())
    except (psutil.Error, OSError):
        return False
