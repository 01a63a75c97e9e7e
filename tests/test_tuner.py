"""Tuner stage: how Tune's failures become statuses (the search itself runs in test_search_e2e and test_faults)."""

from __future__ import annotations

from ray.exceptions import ActorDiedError, OutOfMemoryError

from search.tuner import failure_status


def test_a_worker_killed_by_rays_memory_monitor_is_oom_and_other_failures_are_errors():
    assert failure_status(OutOfMemoryError("Task was killed due to the node running low on memory.")) == "oom"
    assert failure_status(RuntimeError("worker crashed: the node running low on memory")) == "oom"
    assert failure_status(ActorDiedError()) == "error"
    assert failure_status(None) == "error"
