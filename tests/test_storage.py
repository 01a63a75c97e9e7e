"""search.storage against a real S3 server (SeaweedFS on loopback, tests/s3.py): parsing, the preflight, whole objects."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest

from s3 import READER
from search import storage
from search.errors import UserError

PREFLIGHT_BOUND_S = 15


def _prefix(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- parsing (no server) ---


def test_a_local_value_stays_a_path():
    assert storage.parse("results") == Path("results")
    assert storage.parse(Path("/tmp/x/y")) == Path("/tmp/x/y")


@pytest.mark.parametrize("value, problem", [
    ("gs://bucket/x", "only local folders and s3://"),
    ("s3://Not_A_Bucket/x", "is not a bucket name"),
    ("s3:///x", "is not a bucket name"),
    ("s3://bucket/x?endpoint_override=h:1", "no query"),
])
def test_a_uri_that_is_not_a_bucket_folder_is_refused_in_one_line(value, problem):
    with pytest.raises(UserError, match=problem) as refused:
        storage.parse(value)
    assert "\n" not in str(refused.value) and value in str(refused.value)


def test_an_s3_uri_names_bucket_key_and_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # no region lookup (it would ask AWS)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    where = storage.parse("s3://runs/team/a/")
    assert (where.bucket, where.key, where.endpoint, str(where)) == ("runs", "team/a", "http://127.0.0.1:9", "s3://runs/team/a")
    assert str(where / "RUN" / "trials.csv") == "s3://runs/team/a/RUN/trials.csv"
    assert (where / "RUN").name == "RUN" and (where / "RUN").parent == where
    assert storage.parse("s3://runs", endpoint="http://127.0.0.1:10").endpoint == "http://127.0.0.1:10"  # the flag wins
    assert storage.tune_storage(where / "RUN")["storage_path"] == "runs/team/a/RUN"
    assert storage.tune_restore(where / "RUN" / "tune")["path"] == "runs/team/a/RUN/tune"


# --- the preflight: one line each, within seconds ---


def _refusal(uri: str, **parse) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(UserError) as refused:
        storage.check_writable(storage.parse(uri, **parse))
    elapsed = time.monotonic() - started
    line = str(refused.value)
    assert "\n" not in line and uri.rstrip("/") in line, line
    assert elapsed < PREFLIGHT_BOUND_S, f"{elapsed:.1f} s: {line}"
    return line, elapsed


def test_a_writable_bucket_folder_passes_and_leaves_nothing(s3_env):
    where = storage.parse(s3_env.uri(_prefix("ok")))
    storage.check_writable(where)
    assert storage.children(where) == []
    storage.check_writable(storage.parse(s3_env.uri()))  # the bucket's top


def test_a_missing_bucket_is_one_line(s3_env):
    line, _ = _refusal("s3://no-such-bucket/x")
    assert "bucket 'no-such-bucket' does not exist at http://127.0.0.1:" in line


def test_no_credentials_is_one_line(s3_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    line, _ = _refusal(s3_env.uri("x"))
    assert "no AWS credentials found" in line


def test_credentials_the_server_does_not_know_are_one_line(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    line, _ = _refusal(s3_env.uri("x"))
    assert "refused the credentials" in line


def test_read_only_credentials_are_one_line(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READER[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READER[1])
    line, _ = _refusal(s3_env.uri("x"))
    assert "the credentials may not write here" in line


def test_an_endpoint_nobody_listens_on_is_one_line_at_once(s3_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    line, _ = _refusal(s3_env.uri("x"), endpoint=closed)
    assert f"cannot reach the S3 endpoint {closed}" in line


def test_an_endpoint_that_never_answers_is_refused_within_the_bound_not_a_hang(s3_env):
    """A port that accepts connections and then says nothing (a hung server, a firewall's half-open port)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        accepted = []
        stop = threading.Event()

        def accept():  # hold every connection open, silent
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except OSError:
                    pass
        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
            line, elapsed = _refusal(s3_env.uri("x"), endpoint=silent)
        finally:
            stop.set()
            thread.join(2)
            for connection in accepted:
                connection.close()
    assert f"cannot reach the S3 endpoint {silent}" in line
    assert elapsed >= storage.PREFLIGHT.request_s * 0.8  # it did wait for an answer, and then gave up


# --- whole objects ---


def test_a_written_object_reads_back_whole_and_is_listed(s3_env):
    where = storage.parse(s3_env.uri(_prefix("roundtrip")))
    data = bytes(range(256)) * 40_000  # 10 MB: more than one part of a multipart upload
    storage.write_bytes(where / "blob.bin", data)
    storage.write_text(where / "sub" / "note.txt", "hello\n")
    assert storage.read_bytes(where / "blob.bin") == data
    assert storage.read_text(where / "sub" / "note.txt") == "hello\n"
    assert storage.children(where) == ["blob.bin", "sub"]
    assert storage.exists(where / "sub") and storage.exists(where / "blob.bin") and not storage.exists(where / "nope")
    storage.write_text(where / "sub" / "note.txt", "replaced\n")
    assert storage.read_text(where / "sub" / "note.txt") == "replaced\n"


def test_a_reader_never_sees_half_an_object_while_it_is_replaced(s3_env):
    """Objects of one part (one PutObject) and of several (a multipart upload), growing as a CSV does, read while replaced."""
    for size in (64 << 10, 12 << 20):
        where = storage.parse(s3_env.uri(_prefix("whole"))) / "trials.csv"
        versions = [bytes([ord("a") + i]) * (size + i * 4096) for i in range(6)]
        storage.write_bytes(where, versions[0])
        done, read = threading.Event(), threading.Event()

        def replace():
            try:
                for version in versions[1:] * 2:
                    storage.write_bytes(where, version)
                    read.clear()
                    read.wait(10)  # the reader reads on while the next version is written; a starved one still gets a turn
            finally:
                done.set()
        writer = threading.Thread(target=replace)
        writer.start()
        seen = set()
        try:
            while not done.is_set():
                try:
                    data = storage.read_bytes(where)
                except OSError as e:  # replaced under every attempt (a tight loop on a loaded machine): refused, not mixed
                    assert "replaced during every one" in str(e)
                    continue
                assert data in versions, f"a partial or mixed object of {len(data)} bytes"
                seen.add(data[:1])
                read.set()
        finally:
            writer.join()
        assert storage.read_bytes(where) == versions[-1] and len(seen) >= 2


def test_local_paths_get_the_same_operations(tmp_path):
    where = storage.parse(tmp_path / "run")
    storage.check_writable(where)
    storage.write_text(where / "a.txt", "x")
    assert storage.read_text(where / "a.txt") == "x" and storage.children(where) == ["a.txt"]
    assert storage.tune_storage(where) == {"storage_path": str(where.resolve())}


def test_pandas_reads_a_csv_straight_from_the_bucket(s3_env):
    where = storage.parse(s3_env.uri(_prefix("csv"))) / "trials.csv"
    frame = pd.DataFrame({"trial_id": ["a", "b"], "val_accuracy": [0.5, 0.75]})
    storage.write_text(where, frame.to_csv(index=False))
    # What a user types (pandas through fsspec's s3fs, which reads AWS_ENDPOINT_URL like the AWS tools) ...
    pd.testing.assert_frame_equal(pd.read_csv(str(where)), frame)
    # ... and with the run's own filesystem, no s3fs needed.
    with where.filesystem.open_input_file(where.path) as f:
        pd.testing.assert_frame_equal(pd.read_csv(f), frame)
    assert where.filesystem.get_file_info(where.path).type == pafs.FileType.File
