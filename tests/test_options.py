"""Run options are typed end to end: run.json stores them under the flags' names, resume reads back the same types."""

from __future__ import annotations

import json
from pathlib import Path

from search.options import RunOptions
from search.resources import Resources


def test_run_json_round_trip_gives_back_the_same_typed_options():
    options = RunOptions(Path("spaces/wide.py"), data="data.h5", results=Path("/mnt/results"), name="r", address="auto",
                         samples=48, time_budget_s=240.0, max_epochs=150, seed=1, final=False,
                         resources=Resources(2.0, 0.25, 8, 3.5, mps=True, precision="mixed_bfloat16"),
                         backend="jax", wait_for_resources=900.0)
    stored = json.loads(json.dumps(options.to_json()))  # as run.json holds it
    assert stored["space_path"] == "spaces/wide.py" and stored["results"] == "/mnt/results"
    assert (stored["cpus_per_trial"], stored["gpus_per_trial"], stored["max_concurrent"], stored["memory_per_trial"]) \
        == (2.0, 0.25, 8, 3.5)
    assert (stored["mps"], stored["precision"], stored["time_budget_s"]) == (True, "mixed_bfloat16", 240.0)  # GPU settings
    assert options.settings_overrides() == {"samples": 48, "time_budget_s": 240.0, "max_epochs": 150, "seed": 1}
    restored = RunOptions.from_json(stored)
    assert restored == options and isinstance(restored.results, Path) and isinstance(restored.resources, Resources)


def test_a_run_json_from_before_a_field_existed_takes_its_default():
    old = {"space_path": "spaces/quick.py", "results": "results", "cpus_per_trial": 1.0, "gpus_per_trial": 0.0,
           "max_concurrent": None, "final": True, "dashboard_host": "127.0.0.1", "address": None}
    options = RunOptions.from_json(old)
    assert options.wait_for_resources is None and options.backend is None and options.resources == Resources()
    assert options.settings_overrides() == {} and options.wait_s() == 0.0  # a local Ray: no wait
