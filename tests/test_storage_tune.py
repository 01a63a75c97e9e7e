"""Ray Tune with its storage in a bucket (search.storage.tune_storage) on a real S3 server: state and checkpoints
land in the bucket, and an interrupted experiment is restored from the bucket alone in a fresh working directory.

Trivial function trainables (no Keras): what is tested is where Tune keeps things. Ray starts with no AWS
variable in its environment, as on nodes with no credentials of their own: the trials get the endpoint with
the filesystem Tune pickles to them, and the driver's keys from Tune itself, which copies AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN into every trainable's runtime_env.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import ray
from ray import cloudpickle, tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from search import storage


@pytest.fixture(scope="module")
def ray_without_credentials(s3_server):
    """Ray started with no AWS variable in its environment (nor a runtime_env): nodes without credentials."""
    aws = {k: os.environ.pop(k) for k in [k for k in os.environ if k.startswith("AWS_")]}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import a test module
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        os.environ.update(aws)
    yield
    ray.shutdown()


def counter(config):
    """Three iterations, a checkpoint each; on its first run (no checkpoint yet) it dies after config['die_after']."""
    checkpoint = tune.get_checkpoint()
    start = 0
    if checkpoint:
        with checkpoint.as_directory() as folder:
            start = json.loads(open(os.path.join(folder, "state.json")).read())["i"]
    for i in range(start, 3):
        if checkpoint is None and i == config.get("die_after"):
            raise RuntimeError("the worker died")
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as out:
                json.dump({"i": i + 1}, out)
            tune.report({"i": i + 1, "resumed_from": start}, checkpoint=tune.Checkpoint.from_directory(folder))


def _keys(fs: pafs.FileSystem, path: str) -> list[str]:
    return [info.path[len(path) + 1:] for info in fs.get_file_info(pafs.FileSelector(path, recursive=True))
            if info.type == pafs.FileType.File]


def test_tune_keeps_its_state_and_checkpoints_in_the_bucket(s3_env, ray_without_credentials, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = storage.parse(s3_env.uri(f"tune-{uuid.uuid4().hex[:8]}"))
    results = tune.Tuner(
        counter, param_space={"x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(name="tune", checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                                  # given, not Tune's automatic ones: importing search.tuner (any test
                                  # module that does, at collection) turns those off for the process
                                  callbacks=[CSVLoggerCallback(), JsonLoggerCallback()],
                                  **storage.tune_storage(where)),
    ).fit()
    assert not results.errors and sorted(r.metrics["i"] for r in results) == [3, 3]
    assert all(r.checkpoint.path.startswith(f"{where.path}/tune/") for r in results)

    keys = _keys(s3_env.filesystem(), (where / "tune").path)  # read with our own keys: not through the module
    assert any(k.startswith("experiment_state-") for k in keys) and "tuner.pkl" in keys
    checkpoints = sorted(k for k in keys if "/checkpoint_" in k)
    assert len(checkpoints) == 4 and all(k.endswith("/state.json") for k in checkpoints)  # two trials, two kept
    assert sum(k.endswith("/progress.csv") for k in keys) == 2
    assert not list(tmp_path.iterdir())  # nothing in the working directory
    for key in keys:  # the credentials travel in the environment, never into the bucket
        if key.endswith((".json", ".pkl")):
            assert b"writer-secret" not in storage.read_bytes(where / "tune" / key), key


def test_an_interrupted_experiment_resumes_from_the_bucket_in_a_fresh_folder(s3_env, ray_without_credentials,
                                                                            tmp_path, monkeypatch):
    where = storage.parse(s3_env.uri(f"resume-{uuid.uuid4().hex[:8]}"))
    monkeypatch.chdir(tmp_path)
    first = tune.Tuner(
        counter, param_space={"die_after": tune.grid_search([2, None])},
        run_config=tune.RunConfig(name="tune", checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                                  **storage.tune_storage(where)),
    ).fit()
    assert len(first.errors) == 1

    # Nothing local survives: Tune's staging folders in this Ray session go, as on another machine.
    shutil.rmtree(Path(ray._private.worker._global_node.get_session_dir_path()) / "artifacts", ignore_errors=True)
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    experiment = storage.parse(str(where / "tune"))  # only the URI: a new parse, a new filesystem
    assert tune.Tuner.can_restore(**storage.tune_restore(experiment))
    restored = tune.Tuner.restore(trainable=counter, resume_errored=True, **storage.tune_restore(experiment)).fit()
    assert not restored.errors and sorted(r.metrics["i"] for r in restored) == [3, 3]
    resumed = [r for r in restored if r.config["die_after"] == 2][0]
    assert resumed.metrics["resumed_from"] == 2  # from its checkpoint in the bucket, not from scratch
    assert not list(fresh.iterdir())
