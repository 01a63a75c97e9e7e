"""Tuner stage: how Tune's failures become statuses, ASHA's rungs and the checkpoint plan, the finalists' configurations
(the search itself runs in test_search_e2e and test_faults)."""

from __future__ import annotations

import os
from pathlib import Path

from ray.exceptions import ActorDiedError, OutOfMemoryError

from search import provenance, synthetic, trial
from search.leaderboard import Records
from search.settings import Settings
from search.protocol import FINALIST_KEY
from search.protocol import Plan
from search.policy import asha_rungs, finalist_configs, plan
from search.record_keeper import failure_status
from search.tuner import trainable_name


def test_a_worker_killed_by_rays_memory_monitor_is_oom_and_other_failures_are_errors():
    assert failure_status(OutOfMemoryError("Task was killed due to the node running low on memory.")) == "oom"
    assert failure_status(RuntimeError("worker crashed: the node running low on memory")) == "oom"
    assert failure_status(ActorDiedError()) == "error"
    assert failure_status(None) == "error"


def test_asha_rungs_are_rays_milestones():
    assert asha_rungs(Settings(max_epochs=150, grace_period=10, reduction_factor=3)) == (10, 30, 90)
    assert asha_rungs(Settings(max_epochs=3, grace_period=1, reduction_factor=2)) == (1, 2)
    assert asha_rungs(Settings(max_epochs=4, grace_period=4, reduction_factor=2)) == ()


def test_checkpoints_every_k_epochs_at_the_rungs_and_at_the_last_epoch():
    search = plan(Settings(max_epochs=150, grace_period=10, reduction_factor=3, checkpoint_every=25, steps_per_execution=4))
    assert search == Plan(checkpoint_every=25, rungs=(10, 30, 90), steps_per_execution=4)
    saved = [e for e in range(1, 151) if search.checkpoint_at(e, last=150)]
    assert saved == [10, 25, 30, 50, 75, 90, 100, 125, 150]
    assert [e for e in range(1, 8) if search.checkpoint_at(e, last=7)] == [7]  # a trial's own shorter budget
    assert plan(Settings(max_epochs=150, grace_period=10), "finalist").rungs == ()  # no ASHA in that stage
    assert all(Plan().checkpoint_at(e, 4) for e in range(1, 5))  # the tests' spaces: every epoch


def test_finalists_are_the_top_clean_search_trials_at_the_full_budget_with_the_next_seed():
    records = Records()
    metrics = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0}
    for trial_id, acc, status in [("a", 0.9, "diverged"), ("b", 0.8, "stopped"), ("c", 0.7, "completed"),
                                  ("d", 0.6, "completed"), ("e", 0.5, "stopped")]:
        records.report(trial_id, {"blocks": 2, "epochs": 20, "schedule_epochs": 20, "seed": 0}, "",
                       {**metrics, "val_accuracy": acc, "epoch": 1, "status": status})
        records.finish(trial_id)
    configs = finalist_configs(records, Settings(max_epochs=20, finalists=3))
    assert [c[FINALIST_KEY] for c in configs] == ["b", "c", "d"]  # a diverged trial is no finalist
    assert all(c["epochs"] == c["schedule_epochs"] == 20 and c["seed"] == 1 for c in configs)
    assert finalist_configs(records, Settings(finalists=0)) == []


def test_tune_copies_a_whole_experiment_state_snapshot_before_writing_the_next(tmp_path, monkeypatch):
    """Tune's upload of one snapshot must not list a temporary file of the next (issue 17: an ERROR and a
    FileNotFoundError traceback at the end of a clean search). The upload lists while the next save's temporary
    file exists and reads after its rename: without the wait, the read fails."""
    import logging
    import threading

    from ray.train._internal import storage as ray_storage
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    from search import tuner

    tuner.setup()  # the pipeline's setup makes Tune wait for the upload (importing search.tuner does not)

    monkeypatch.setattr(ray_storage, "_get_ray_train_session_dir", lambda: str(tmp_path / "staging"))
    store = ray_storage.StorageContext(str(tmp_path / "runs"), "experiment")
    staging = Path(store.experiment_driver_staging_path)
    tmp_written, listed, renamed = threading.Event(), threading.Event(), threading.Event()

    def upload(local_path, fs, fs_path, exclude=None):  # as pyarrow's copy: list the folder, then read each file
        tmp_written.wait(0.5)
        files = [Path(d, f) for d, _, names in os.walk(local_path) for f in names]
        listed.set()
        renamed.wait(0.5)
        for path in files:
            path.read_bytes()

    saves = []

    def save():  # as Tune's searcher state: a temporary name, then a rename
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / ".uuid-tmp-search_gen_state.json"
        temporary.write_text("{}")
        if saves:
            tmp_written.set()
            listed.wait(0.5)
        temporary.replace(staging / "search_gen_state.json")
        if saves:
            renamed.set()
        saves.append(1)

    errors = []
    handler = logging.Handler()
    handler.emit = errors.append
    logger = logging.getLogger("ray.tune.execution.experiment_state")
    logger.addHandler(handler)
    monkeypatch.setattr(ray_storage, "_upload_to_fs_path", upload)
    try:
        manager = _ExperimentCheckpointManager(storage=store, checkpoint_period=0)
        manager.sync_up_experiment_state(save, force=True)
        manager.sync_up_experiment_state(save, force=True, wait=True)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in errors] == [] and len(saves) == 2


def test_a_trainable_is_named_for_run_json_and_the_synthetic_one_by_its_epoch():
    assert trainable_name(trial.run_trial) == provenance.DEFAULT_TRAINABLE == "search.trial:run_trial"
    assert trainable_name(synthetic.trainable(0.02)) == "search.synthetic:trainable(epoch_s=0.02)"
    assert trainable_name(synthetic.trainable()) != trainable_name(synthetic.trainable(0.5))
