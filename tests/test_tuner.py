"""Tuner stage: how Tune's failures become statuses, ASHA's rungs and the checkpoint plan, the finalists' configurations
(the search itself runs in test_search_e2e and test_faults)."""

from __future__ import annotations

from ray.exceptions import ActorDiedError, OutOfMemoryError

from search.leaderboard import Records
from search.settings import Settings
from search.protocol import FINALIST_KEY
from search.protocol import Plan
from search.tuner import asha_rungs, failure_status, finalist_configs, plan


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
