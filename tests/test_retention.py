"""Checkpoint retention owned by the run (search.retention), on a real Ray Tune with synthetic trials.

The race of issue 35, made deterministic: the storage refuses Tune's experiment-state uploads (tests/refused_state.py)
while a trial goes on checkpointing, then the driver is killed and the run resumed in another process. With Tune's
own retention (num_to_keep=2) the stored state then names a checkpoint Tune had deleted, and the resumed trial
fails ("Could not recover from checkpoint as it does not exist on storage anymore").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


from searching import ROOT, SPACES, records, run_in_process, tail

EPOCH_S = 0.5


def _checkpoints(trial_folder) -> list[int]:
    return sorted(int(p.name.split("_")[1]) for p in trial_folder.glob("checkpoint_*"))


def _trial_folders(run_dir):
    return [p for p in (run_dir / "tune").iterdir() if p.is_dir()] if (run_dir / "tune").is_dir() else []


def test_a_stored_state_never_names_a_deleted_checkpoint_and_a_missing_one_falls_back(tmp_path, capfd):
    run_dir, flag, log = tmp_path / "r", tmp_path / "refusing", tmp_path / "driver.log"
    # steady.py's trials at 30 epochs, and ASHA's grace period with them: a trial resumed at a rung below the cut
    # (from a checkpoint at epoch 4, say) would be stopped there without training again, proving nothing.
    space = tmp_path / "steady_30.py"
    space.write_text((SPACES / "steady.py").read_text() + '\nSEARCH = {**SEARCH, "max_epochs": 30, "grace_period": 30}\n')
    argv = ["--epoch-s", str(EPOCH_S), "run", str(space), "--results", str(tmp_path), "--name", "r", "--no-final"]
    driver = subprocess.Popen([sys.executable, str(ROOT / "tests" / "refused_state.py"), str(flag), *argv], cwd=ROOT,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():  # the last stored state names a checkpoint; every upload after it is refused
            assert driver.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.1)
        at_outage = {p.name: max(_checkpoints(p), default=-1) for p in _trial_folders(run_dir)}
        chosen = None
        while chosen is None:  # a trial three checkpoints past the state: Tune's retention would have deleted the named one
            assert driver.poll() is None and time.monotonic() < deadline, tail(log)
            chosen = next((p for p in _trial_folders(run_dir)
                           if max(_checkpoints(p), default=-1) >= at_outage.get(p.name, -1) + 3), None)
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its local Ray, as a machine that dies
        driver.wait()
    time.sleep(3)  # a trial's worker outlives its raylet by a moment, and may finish an upload
    kept = _checkpoints(chosen)
    named_at_most = at_outage.get(chosen.name, -1)
    assert kept[0] <= max(named_at_most, 0), f"{chosen.name}: {kept}: the stored state's checkpoint was deleted"

    # and if a named checkpoint is lost all the same, the trial resumes from its newest instead of failing
    for index in kept:
        if index <= named_at_most:
            for f in sorted((chosen / f"checkpoint_{index:06d}").rglob("*"), reverse=True):
                f.rmdir() if f.is_dir() else f.unlink()
            (chosen / f"checkpoint_{index:06d}").rmdir()
    newest_epoch = json.loads((chosen / f"checkpoint_{kept[-1]:06d}" / "state.json").read_text())["epoch"]

    capfd.readouterr()
    assert run_in_process("resume", str(run_dir), epoch_s=EPOCH_S) == 0
    out = capfd.readouterr().out
    assert "does not exist on storage" not in out
    trials = records(run_dir)
    assert all(r.status in ("completed", "stopped") for r in trials.values()), {t: r.status for t, r in trials.items()}
    resumed = trials[chosen.name]
    # from its newest checkpoint: not from scratch (0), nor from the older one the stored state named
    assert max(m["resumed_from"] for m in resumed.epochs.values()) == newest_epoch, resumed.epochs
    assert f"trial {chosen.name}: its saved checkpoint" in out
    # retention swept what the dead driver left: each trial holds the checkpoint the stored state names and, if a
    # resumed trial ended before it registered one, the newer one it resumed from (search.retention)
    named = _named(run_dir)
    held = {p.name: _checkpoints(p) for p in _trial_folders(run_dir)}
    assert all(set(kept) <= {named.get(t, -1), max(kept)} for t, kept in held.items()), (held, named, out[-3000:])


def _named(run_dir) -> dict[str, int]:
    """Each trial's checkpoint as the stored experiment state names it."""
    from ray import tune

    analysis = tune.ExperimentAnalysis(str(run_dir / "tune"))
    return {t.trial_id: int(t.checkpoint.path.rsplit("_", 1)[1]) for t in analysis.trials if t.checkpoint}
