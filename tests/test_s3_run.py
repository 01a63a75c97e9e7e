"""A run folder in a bucket (issue 18), against a real S3 server (SeaweedFS on loopback, tests/s3.py).

The multi-node test: a head and two worker nodes (tests/clusters.py) that share no results folder and hold no
AWS credentials of their own search into a bucket; the server goes away for a while mid-search and comes back
on the same port and data; the driver (in a fresh working directory with its own cache folder, where the live
Optuna study is) is then SIGKILLed; another driver in another fresh directory and cache folder (as on another
machine) resumes the run from the bucket alone, leaving none of the killed driver's trial actors running;
a third reads it back with `leaderboard`, `report` and `final s3://... --rank 2` (beside final/, not over
it), and pandas reads the leaderboard straight from the bucket, mid-run and after. This is also the test of
a driver SIGKILLed and resumed on a multi-node cluster (test_faults.py has the other cluster faults). Its search
trains synthetically (search.synthetic); the final stage and `final` train and test real models.
The preflight test checks the one-line refusals of a bucket that cannot be used, before Ray starts.
"""

from __future__ import annotations

import contextlib
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
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
import pytest

from clusters import local_cluster
from s3 import seaweedfs
from search import storage
from search.protocol import Status
from searching import SPACES, finished_and_running, read_csv, records, wait_for

# A synthetic epoch about as long as a real one here: the 12 s outage starts after the first epoch and ends
# before the third of the 3 trials (2 at a time) has finished, so the driver is killed mid-search.
EPOCH_S = 3.0
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


def _cli(cwd: Path, cache: Path, *args: str, env: dict | None = None, log: Path | None = None,
         wait: bool = True, timeout: float = 400):
    """`python -m search ARGS` in its own working directory and cache folder (a machine of its own, but for /tmp);
    `run` and `resume` train synthetically (search.synthetic): the subject is the run folder in a bucket."""
    cwd.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "XDG_CACHE_HOME": str(cache), **(env or {})}
    synthetic = ["search.synthetic", "--epoch-s", str(EPOCH_S)] if args[0] in ("run", "resume") else ["search"]
    command = [sys.executable, "-m", *synthetic, *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=full_env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def _objects(server, prefix: str) -> set[str]:
    """Every object's key under prefix, relative to it."""
    fs = server.filesystem()
    infos = fs.get_file_info(storage.pafs.FileSelector(f"{server.bucket}/{prefix}", recursive=True))
    return {i.path.removeprefix(f"{server.bucket}/{prefix}/") for i in infos if i.type == storage.pafs.FileType.File}


class _Restartable:
    """A SeaweedFS of this test's own (the session's serves the other tests) that can go away and come back
    on the same port with the same data."""

    def __init__(self, folder: Path):
        self.folder, self.stack = folder, contextlib.ExitStack()
        self.server = self.stack.enter_context(seaweedfs(folder))

    def outage(self, seconds: float) -> None:
        ports = self.server.ports
        self.stack.close()  # SIGTERM, as a server going down for maintenance
        time.sleep(seconds)
        self.stack = contextlib.ExitStack()
        self.server = self.stack.enter_context(seaweedfs(self.folder, ports=ports))


@pytest.fixture
def own_s3(tmp_path, monkeypatch):
    """A restartable server, its writer's keys and endpoint in this test's environment (no AWS files)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    server = _Restartable(tmp_path / "weed")
    for name, value in server.server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.stack.close()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # pandas' s3fs keeps a client per process, on this server's endpoint


@pytest.mark.long
def test_a_search_in_a_bucket_rides_out_an_outage_survives_its_driver_and_resumes_elsewhere(own_s3, small_data_file,
                                                                                          tmp_path):
    server = own_s3.server  # the same endpoint, keys and bucket after the outage
    prefix = f"multi-{uuid.uuid4().hex[:8]}"
    uri = server.uri(prefix, "run")
    where = storage.parse(uri)
    with local_cluster(workers=2, unset=AWS_VARIABLES) as cluster:  # worker nodes: no keys, no endpoint
        os.environ.update(server.env())  # the nodes have started without them; the drivers and this test have them
        log = tmp_path / "driver.log"
        driver = _cli(tmp_path / "machine-1", tmp_path / "cache-1", "run", str(SPACES / "steady.py"),
                      "--data", str(small_data_file), "--results", server.uri(prefix), "--name", "run",
                      "--address", cluster.address, "--samples", "3",
                      env=cluster.env, log=log, wait=False)
        wait_for(where, driver, "a trained epoch", lambda trials: any(r.epochs for r in trials.values()), log=log)
        own_s3.outage(12)  # longer than pyarrow's own retries of an upload (3 attempts): uploads wait, records are kept
        before = wait_for(where, driver, "a finished and a running trial", finished_and_running, log=log)
        mid_run = read_csv(f"{uri}/leaderboard.csv")  # pandas, straight from the bucket, while the search runs
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
        # The killed driver's trial actors died with it (Ray ends a dead driver's actors); none is left running.
        leftovers = cluster.processes("ImplicitFunc")
        assert not leftovers, [p.cmdline() for p in leftovers]
        address = cluster.address
        final_metrics = storage.read_text(where / "final" / "test_metrics.json")
        # Retrain and test another configuration on demand, beside (not over) final/.
        retrained = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "final", uri, "--rank", "2",
                         "--address", cluster.address, env=cluster.env)
        assert retrained.returncode == 0 and f"wrote {uri}/final-rank-2" in retrained.stdout, retrained.stderr[-3000:]
        after = records(where)
        ranked = read_csv(f"{uri}/leaderboard.csv")
        # Extend the finished search by one trial from a fourth machine: the study and TPE's state come from the bucket.
        extended = _cli(tmp_path / "machine-4", tmp_path / "cache-4", "resume", uri, "--samples", "1", "--no-final",
                        "--address", cluster.address, env=cluster.env)
        assert extended.returncode == 0, extended.stdout[-2000:] + extended.stderr[-3000:]

    (added,) = set(records(where)) - set(after)
    kept = {t: r for t, r in after.items() if r.status != Status.LOST}
    assert len(kept) == 3 and {r.status for r in kept.values()} == {Status.COMPLETED}, after  # none lost
    for record in after.values():  # a trial Ray's lagging state forgot is flagged, not silently dropped
        assert record.status != Status.LOST or "driver died" in record.error
    for trial_id, record in before.items():  # finished before the kill: not run again
        assert after[trial_id].epochs == record.epochs and after[trial_id].train_seconds == record.train_seconds

    stored = _objects(server, f"{prefix}/run")
    for name in ("run.json", "trials.json", "leaderboard.csv", "epochs.csv", "best.json", "report.html",
                 "learning_curves.png", "optuna.journal", "final/model.keras", "final/test_metrics.json",
                 "final/predictions.csv", "final-rank-2/test_metrics.json", "tune/tuner.pkl"):
        assert name in stored, sorted(stored)
    assert any(n.startswith("tune/searcher-state") for n in stored)
    assert any(n.startswith(f"tune-extend-1/{added}/") for n in stored) and "best-extend-1.json" in stored
    assert any(n.startswith("journal/base-") for n in stored)  # the records' journal, compacted at the stage's end
    assert any("/checkpoint_" in n for n in stored)  # the worker nodes uploaded checkpoints themselves
    secrets = (server.env()["AWS_SECRET_ACCESS_KEY"]).encode()
    fs = server.filesystem()
    for name in [n for n in stored if n.endswith((".pkl", ".json"))]:  # keys never land in the bucket
        with fs.open_input_file(f"{server.bucket}/{prefix}/run/{name}") as file:
            assert secrets not in file.read(), name
    run_json = json.loads(storage.read_text(where / "run.json"))
    assert run_json["options"]["results"] == server.uri(prefix) and len(run_json["resumed"]) == 2
    assert [(e["samples"], e["trials_before"]) for e in run_json["extensions"]] == [(1, len(after))]
    assert run_json["resumed"][0]["cluster"]["address"] == address

    # The study came back from Tune's searcher state on machine 2: it holds every trial, the first driver's too.
    (tmp_path / "optuna.journal").write_bytes(storage.read_bytes(where / "optuna.journal"))
    study = optuna.load_study(study_name="run", storage=JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal"))))
    assert len(study.trials) == len(after) + 1 and sum(t.state.is_finished() for t in study.trials) >= len(kept) + 1

    board = read_csv(f"{uri}/leaderboard.csv")  # pandas (s3fs) straight from the bucket
    assert set(board["trial_id"]) == set(after) | {added} and (board.loc[board["status"] != Status.LOST, "epochs_trained"] == 4).all()
    epochs = read_csv(f"{uri}/epochs.csv")
    assert epochs.groupby("trial_id").size().to_dict() == board.set_index("trial_id")["epochs_trained"][lambda s: s > 0].to_dict()
    second = json.loads(storage.read_text(where / "final-rank-2" / "test_metrics.json"))
    assert second["params"]["epochs"] == ranked.set_index("rank").loc[2, "best_epoch"]
    assert storage.read_text(where / "final" / "test_metrics.json") == final_metrics
    shown = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "leaderboard", uri)
    assert shown.returncode == 0 and all(t in shown.stdout for t in kept), shown.stdout + shown.stderr
    rendered = _cli(tmp_path / "machine-3", tmp_path / "cache-3", "report", uri)  # from the bucket's copy of the study
    assert rendered.returncode == 0 and rendered.stdout.strip() == f"wrote {uri}/report.html", rendered.stderr
    assert "importance.png" in _objects(server, f"{prefix}/run") and not any((tmp_path / "machine-3").iterdir())


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


def test_the_run_folder_names_the_same_files_in_a_bucket(s3_env, tmp_path, monkeypatch):
    from search.rundir import RunDir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    run = RunDir(s3_env.uri(f"names-{uuid.uuid4().hex[:8]}", "run"))
    assert run.name == "run" and not run.local and str(run.trials_json) == f"{run.path}/trials.json"
    assert run.study_local.parts[-4:] == (s3_env.bucket, run.path.key.split("/")[0], "run", "optuna.journal")
    assert run.study_local.is_relative_to(tmp_path / "conv3d-search")  # on this machine's disk, not in the bucket
    assert run.final_for_rank(1) == run.final and run.finalists_tune().name == "tune-finalists"
    storage.write_json(run.final.test_metrics, {"accuracy": 0.5})
    storage.write_text(run.path / "tune-finalists" / "x", "")
    assert run.final_for_rank(1).path.name == "final-rank-1" and run.finalists_tune().name == "tune-finalists-2"
    with pytest.raises(Exception, match="already holds objects"):
        storage.new_dir(run.path)
