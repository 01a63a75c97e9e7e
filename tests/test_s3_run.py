"""A run folder in a bucket (issue 18), against a real S3 server (SeaweedFS on loopback, tests/s3.py).

The multi-node test: a head and two worker nodes (tests/clusters.py) that share no results folder and hold no
AWS credentials of their own; the driver runs in a fresh working directory with its own cache folder (where the live Optuna study is), is SIGKILLed
mid-search, and the run is resumed from the bucket alone by another driver in another fresh directory and
cache folder (as on another machine), then read back with `leaderboard s3://...` and with pandas straight from the bucket.
The preflight tests check the one-line refusals of a bucket that cannot be used, before Ray starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest

from clusters import local_cluster
from search import storage
from search.protocol import Status
from searching import SPACES, finished_and_running, records, tail, wait_for

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


def _cli(cwd: Path, cache: Path, *args: str, env: dict | None = None, log: Path | None = None,
         wait: bool = True, timeout: float = 400):
    """`python -m search ARGS` in its own working directory and cache folder (a machine of its own, but for /tmp)."""
    cwd.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "XDG_CACHE_HOME": str(cache), **(env or {})}
    command = [sys.executable, "-m", "search", *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=full_env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def _objects(server, prefix: str) -> set[str]:
    """Every object's key under prefix, relative to it."""
    fs = server.filesystem()
    infos = fs.get_file_info(storage.pafs.FileSelector(f"{server.bucket}/{prefix}", recursive=True))
    return {i.path.removeprefix(f"{server.bucket}/{prefix}/") for i in infos if i.type == storage.pafs.FileType.File}


def test_a_search_in_a_bucket_survives_its_driver_and_resumes_on_another_machine(s3_env, small_data_file, tmp_path):
    prefix = f"multi-{uuid.uuid4().hex[:8]}"
    uri = s3_env.uri(prefix, "run")
    where = storage.parse(uri)
    with local_cluster(workers=2, unset=AWS_VARIABLES) as cluster:  # worker nodes: no keys, no endpoint
        os.environ.update(s3_env.env())  # the nodes have started without them; the drivers and this test have them
        log = tmp_path / "driver.log"
        driver = _cli(tmp_path / "machine-1", tmp_path / "cache-1", "run", str(SPACES / "steady.py"),
                      "--data", str(small_data_file), "--results", s3_env.uri(prefix), "--name", "run",
                      "--address", cluster.address, "--samples", "3",
                      env=cluster.env, log=log, wait=False)
        before = wait_for(where, driver, "a finished and a running trial", finished_and_running, log=log)
        mid_run = pd.read_csv(f"{uri}/leaderboard.csv")  # pandas, straight from the bucket, while the search runs
        assert set(before) <= set(mid_run["trial_id"]), mid_run
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and everything it started, as a crash would
        driver.wait()
        session = json.loads(storage.read_text(where / "run.json"))["cluster"]["session"]
        # Nothing of the first driver survives on "machine 2": not its folder, its cache (the study), nor Tune's staging.
        shutil.rmtree(tmp_path / "machine-1")
        shutil.rmtree(tmp_path / "cache-1")
        shutil.rmtree(Path(session) / "artifacts", ignore_errors=True)

        resumed = _cli(tmp_path / "machine-2", tmp_path / "cache-2", "resume", uri, "--address", cluster.address,
                       env=cluster.env)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
        assert not any((tmp_path / "machine-2").iterdir())  # everything went to the bucket
        retrained = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "final", uri, "--rank", "2",
                         "--address", cluster.address, env=cluster.env)
        assert retrained.returncode == 0 and f"wrote {uri}/final-rank-2" in retrained.stdout, retrained.stderr[-3000:]

    after = records(where)
    kept = {t: r for t, r in after.items() if r.status != Status.LOST}
    assert len(kept) == 3 and {r.status for r in kept.values()} == {Status.COMPLETED}, after  # none lost
    for record in after.values():  # a trial Ray's lagging state forgot is flagged, not silently dropped
        assert record.status != Status.LOST or "driver died" in record.error
    for trial_id, record in before.items():  # finished before the kill: not run again
        assert after[trial_id].epochs == record.epochs and after[trial_id].train_seconds == record.train_seconds

    stored = _objects(s3_env, f"{prefix}/run")
    for name in ("run.json", "trials.json", "leaderboard.csv", "epochs.csv", "best.json", "report.html",
                 "learning_curves.png", "optuna.db", "final/model.keras", "final/test_metrics.json",
                 "final/predictions.csv", "final-rank-2/test_metrics.json", "tune/tuner.pkl"):
        assert name in stored, sorted(stored)
    assert any(n.startswith("tune/searcher-state") for n in stored)
    assert any("/checkpoint_" in n for n in stored)  # the worker nodes uploaded checkpoints themselves
    secrets = (s3_env.env()["AWS_SECRET_ACCESS_KEY"]).encode()
    fs = s3_env.filesystem()
    for name in [n for n in stored if n.endswith((".pkl", ".json"))]:  # keys never land in the bucket
        with fs.open_input_file(f"{s3_env.bucket}/{prefix}/run/{name}") as file:
            assert secrets not in file.read(), name
    run_json = json.loads(storage.read_text(where / "run.json"))
    assert run_json["options"]["results"] == s3_env.uri(prefix) and len(run_json["resumed"]) == 1

    # The study came back from Tune's searcher state on machine 2: it holds every trial, the first driver's too.
    (tmp_path / "optuna.db").write_bytes(storage.read_bytes(where / "optuna.db"))
    study = optuna.load_study(study_name="run", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == len(after) and sum(t.state.is_finished() for t in study.trials) >= len(kept)

    board = pd.read_csv(f"{uri}/leaderboard.csv")  # pandas (s3fs) straight from the bucket
    assert set(board["trial_id"]) == set(after) and (board.loc[board["status"] != Status.LOST, "epochs_trained"] == 4).all()
    shown = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "leaderboard", uri)
    assert shown.returncode == 0 and all(t in shown.stdout for t in kept), shown.stdout + shown.stderr
    rendered = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "report", uri)  # from the bucket's copy of the study
    assert rendered.returncode == 0 and rendered.stdout.strip() == f"wrote {uri}/report.html", rendered.stderr
    assert "importance.png" in _objects(s3_env, f"{prefix}/run") and not any((tmp_path / "machine-3").iterdir())


def test_a_bucket_that_cannot_be_used_is_refused_in_one_line_before_ray(s3_env, small_data_file, tmp_path, monkeypatch):
    from s3 import READER
    from search import api
    from search.errors import UserError

    started = time.monotonic()
    missing = _cli(tmp_path, tmp_path / "cache", "run", str(SPACES / "tiny.py"), "--data", str(small_data_file),
                   "--results", "s3://no-such-bucket/x")
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1, missing.stderr
    assert lines[0].startswith("error: s3://no-such-bucket/x/tiny-"), lines
    assert lines[0].endswith(f"bucket 'no-such-bucket' does not exist at {s3_env.endpoint}"), lines
    assert time.monotonic() - started < 60 and not (tmp_path / "s3:").exists()

    for name, value in s3_env.env(identity=READER).items():  # keys that may read and list, not write
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="the credentials may not write here"):
        api.start(SPACES / "tiny.py", data=str(small_data_file), results=s3_env.uri("read-only"))
    with pytest.raises(UserError, match="the credentials may not write here"):
        api.resume(s3_env.uri("read-only", "run"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(UserError, match="cannot reach the S3 endpoint"):
        api.resume(s3_env.uri("somewhere", "run"))
    with pytest.raises(UserError, match="not a run folder"):
        api.open_run(storage.parse(s3_env.uri("nothing-here"), endpoint=s3_env.endpoint)).leaderboard()


def test_an_endpoint_gone_for_a_while_mid_run_loses_no_finished_result(small_data_file, tmp_path, monkeypatch):
    """The S3 server stops mid-search for ~15 s and comes back on the same port and data: checkpoint uploads and
    the driver's record writes retry, and the run finishes (or stops saying how to resume, and resume finishes it)."""
    from s3 import seaweedfs, stop

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    with seaweedfs(tmp_path / "weed") as server:
        ports = server.ports
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        uri = server.uri("outage", "run")
        where = storage.parse(uri)
        log = tmp_path / "driver.log"
        driver = _cli(tmp_path / "work", tmp_path / "cache", "run", str(SPACES / "steady.py"), "--data",
                      str(small_data_file), "--results", server.uri("outage"), "--name", "run", "--samples", "2",
                      "--no-final", log=log, wait=False)
        wait_for(where, driver, "a trained epoch", lambda trials: any(r.epochs for r in trials.values()), log=log)
        stop(server.process)  # the endpoint goes away...
    time.sleep(12)  # longer than pyarrow's own retries of an upload (3 attempts)
    with seaweedfs(tmp_path / "weed", ports=ports):  # ...and comes back where it was, with its data
        code = driver.wait(timeout=400)
        if code != 0:  # it stopped: it must say how to continue, and that must finish the run
            assert f"python -m search resume {uri}" in log.read_text(), tail(log)
            resumed = _cli(tmp_path / "work", tmp_path / "cache", "resume", uri)
            assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = records(where)
    assert len(after) == 2 and all(sorted(r.epochs) == [1, 2, 3, 4] for r in after.values()), (after, tail(log))
    assert {r.status for r in after.values()} == {Status.COMPLETED}, tail(log)


def test_the_run_folder_names_the_same_files_in_a_bucket(s3_env, tmp_path, monkeypatch):
    from search.rundir import RunDir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    run = RunDir(s3_env.uri(f"names-{uuid.uuid4().hex[:8]}", "run"))
    assert run.name == "run" and not run.local and str(run.trials_json) == f"{run.path}/trials.json"
    assert run.study_local.parts[-4:] == (s3_env.bucket, run.path.key.split("/")[0], "run", "optuna.db")
    assert run.study_local.is_relative_to(tmp_path / "conv3d-search")  # on this machine's disk, not in the bucket
    assert run.final_for_rank(1) == run.final and run.finalists_tune().name == "tune-finalists"
    storage.write_json(run.final.test_metrics, {"accuracy": 0.5})
    storage.write_text(run.path / "tune-finalists" / "x", "")
    assert run.final_for_rank(1).path.name == "final-rank-1" and run.finalists_tune().name == "tune-finalists-2"
    with pytest.raises(Exception, match="already holds objects"):
        storage.new_dir(run.path)
