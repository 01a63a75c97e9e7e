"""Where a run's folder lives: a local folder (a ``pathlib.Path``) or a prefix in an S3 bucket (an ``S3Path``).

``--results s3://bucket/prefix`` names a place in S3 or an S3-compatible server (the endpoint as the AWS tools
take it: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, or given explicitly). Credentials are pyarrow's: the
standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, a web identity, an instance role).
Every object is written whole: one complete upload, so a reader never sees half a file; on disk, a temp and a rename.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.fs as pafs

from search import files
from search.errors import UserError
from search.retry import retry

SCHEME = "s3://"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rule for bucket names
_READ_ATTEMPTS = 5
_AWS_ERROR = re.compile(r"AWS Error (\w+)(?: \(HTTP status (\d+)\))? during (\w+) operation: ?(.*)")


@dataclass(frozen=True)
class Timeouts:
    """How long one request may take and how often it is tried: a bound on every S3 call, never a hang.

    connect_s bounds a connection that is not accepted; request_s a connection that stops sending (curl's
    "less than 1 byte/s for this long", not the length of a large upload); attempts counts the first try.
    """

    connect_s: float
    request_s: float
    attempts: int


PREFLIGHT = Timeouts(connect_s=3, request_s=5, attempts=2)  # a refusal within ~10 s, before any trial trains
RUN = Timeouts(connect_s=10, request_s=60, attempts=10)  # uploads ride out an endpoint gone for a while


@dataclass(frozen=True)
class S3Path:
    """A folder (a key prefix) in a bucket, with the filesystem that reaches it: ``/`` and ``name`` as on a Path."""

    bucket: str
    key: str  # without a leading or trailing "/"; "" is the bucket's top
    endpoint: str | None  # None: AWS itself
    region: str | None  # None: pyarrow's default (us-east-1 with an endpoint)
    filesystem: pafs.S3FileSystem = field(compare=False, repr=False)

    @property
    def path(self) -> str:
        """The path inside the filesystem (pyarrow's and Tune's): bucket/key."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parent(self) -> S3Path:
        return S3Path(self.bucket, str(PurePosixPath(self.key).parent).strip("."), self.endpoint, self.region,
                      self.filesystem)

    def __truediv__(self, name: str) -> S3Path:
        key = str(PurePosixPath(self.key, name)).strip("/")
        return S3Path(self.bucket, key, self.endpoint, self.region, self.filesystem)

    def __str__(self) -> str:
        return SCHEME + self.path


Location = Path | S3Path


def parse(value: str | os.PathLike, endpoint: str | None = None) -> Location:
    """A ``--results`` value: ``s3://bucket/prefix`` becomes an S3Path, anything else stays a local Path.

    endpoint overrides ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (an S3-compatible server); other
    URI schemes are refused rather than becoming a local folder named after them.
    """
    text = os.fspath(value)
    scheme = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):/", text)
    if not scheme:
        return Path(text)
    if not text.startswith(SCHEME):
        raise UserError(f"{text}: only local folders and {SCHEME}bucket/prefix are supported")
    bucket, _, key = text[len(SCHEME):].partition("/")
    if "?" in text or "#" in text:
        raise UserError(f"{text}: no query in the URI; give the endpoint with AWS_ENDPOINT_URL or the endpoint flag")
    if not _BUCKET.fullmatch(bucket):
        raise UserError(f"{text}: '{bucket}' is not a bucket name (3-63 lowercase letters, digits, '.', '-')")
    endpoint = endpoint or endpoint_from_env()
    region = region_of(bucket, endpoint)
    return S3Path(bucket, key.strip("/"), endpoint, region, s3_filesystem(endpoint, region))


def endpoint_from_env() -> str | None:
    """The endpoint the AWS tools would use: ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``, else AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def region_of(bucket: str, endpoint: str | None) -> str | None:
    """AWS_REGION / AWS_DEFAULT_REGION; else, against AWS itself, the bucket's region (asked once, here)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region or endpoint is not None:
        return region
    try:
        return pafs.resolve_s3_region(bucket)
    except OSError:
        return None  # the preflight names the problem (a missing bucket, no network) in its own words


def s3_filesystem(endpoint: str | None, region: str | None, timeouts: Timeouts = RUN) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem: credentials from the AWS chain, bounded timeouts and retries.

    An S3-compatible endpoint is addressed path-style (bucket in the path, not the host name). Delayed open:
    an object smaller than a multipart part (all our CSVs, JSON, PNGs) is sent as one PutObject when closed.
    """
    return pafs.S3FileSystem(
        endpoint_override=endpoint, region=region, force_virtual_addressing=False, allow_delayed_open=True,
        connect_timeout=timeouts.connect_s, request_timeout=timeouts.request_s,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=timeouts.attempts),
    )


# --- the preflight ---------------------------------------------------------------------------------------


def check_writable(where: Location) -> None:
    """Refuse, in one line, a bucket folder this process cannot list, write and delete in, within seconds.

    One line each for: no such bucket, no credentials, credentials refused, credentials without write (or
    delete: Tune removes old checkpoints) permission, an endpoint that does not answer. A local folder is
    checked where it is made (files.new_dir).
    """
    if isinstance(where, Path):
        return
    fs = s3_filesystem(where.endpoint, where.region, PREFLIGHT)
    probe = f"{where.path}/.write-check-{uuid.uuid4().hex}"
    try:
        fs.get_file_info(pafs.FileSelector(where.path, allow_not_found=True))  # list: reach, bucket, credentials
    except OSError as e:
        raise refusal(where, e, "read") from None
    try:
        with fs.open_output_stream(probe) as out:
            out.write(b"conv3d-search write check\n")
    except OSError as e:
        raise refusal(where, e, "write") from None
    try:
        fs.delete_file(probe)
    except OSError as e:
        raise refusal(where, e, "delete") from None


def refusal(where: Location, error: OSError, action: str) -> UserError:
    """The one line for a failed S3 call: what is wrong, in the user's terms, from pyarrow's AWS error."""
    if isinstance(where, Path):
        return UserError(f"{where}: cannot {action} ({error.strerror or error})")
    text = str(error)
    match = _AWS_ERROR.search(text)
    code, status, detail = (match.group(1), match.group(2), match.group(4)) if match else ("", None, text)
    endpoint = where.endpoint or "AWS S3"
    if code == "NETWORK_CONNECTION":
        return UserError(f"{where}: cannot reach the S3 endpoint {endpoint} ({_curl_detail(detail)}); "
                         "check AWS_ENDPOINT_URL or the endpoint flag")
    if code == "NO_SUCH_BUCKET":
        return UserError(f"{where}: bucket '{where.bucket}' does not exist at {endpoint}")
    if code in ("INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "EXPIRED_TOKEN", "INVALID_CLIENT_TOKEN_ID"):
        return UserError(f"{where}: {endpoint} refused the credentials ({_first_sentence(detail)})")
    if code == "ACCESS_DENIED" or status == "403":
        if not credential_sources():
            return UserError(f"{where}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                             "or AWS_PROFILE)")
        return UserError(f"{where}: the credentials may not {action} here ({_first_sentence(detail)})")
    return UserError(f"{where}: cannot {action} ({_first_sentence(detail) or type(error).__name__})")


def _curl_detail(detail: str) -> str:
    found = re.search(r"Details: (.*)", detail)
    return _first_sentence(found.group(1) if found else detail)


def _first_sentence(text: str) -> str:
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text.strip().splitlines()[0] if text.strip() else "").strip()


def credential_sources() -> list[str]:
    """Where the AWS chain could find credentials here: named environment variables and files, not their contents.

    Only the wording of a refusal uses it: the server's answer decides that access is denied; this says whether
    nothing was there to send. (An instance role cannot be seen without asking the network; it is not listed.)
    """
    env = os.environ
    sources = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
               if env.get(name)]
    for variable, default in (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), ("AWS_CONFIG_FILE", "~/.aws/config")):
        if Path(env.get(variable) or default).expanduser().is_file():
            sources.append(env.get(variable) or default)
    return sources


# --- whole objects ---------------------------------------------------------------------------------------


def write_bytes(where: Location, data: bytes) -> None:
    """Replace the file or object at where with data, whole: one upload (S3), or a temp and a rename (disk)."""
    if isinstance(where, Path):
        files.write_atomic(where, lambda tmp: tmp.write_bytes(data))
        return
    content_type = mimetypes.guess_type(where.name)[0] or "application/octet-stream"
    # All of data in one write: pyarrow's stream completes the upload when closed, even if the block raised,
    # so nothing that can fail may run between opening it and having written everything.
    with where.filesystem.open_output_stream(where.path, metadata={"Content-Type": content_type}) as out:
        out.write(data)


def write_text(where: Location, text: str) -> None:
    write_bytes(where, text.encode())


def write_json(where: Location, obj: Any) -> None:
    """Pretty JSON, whole (as files.write_json)."""
    write_text(where, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_with(where: Location, write: Callable[[Path], None]) -> None:
    """Call write(local_path) (pandas, Keras, matplotlib want a file), then put that file at where whole.

    On disk this is files.write_atomic; for a bucket the file is made in a temporary folder and uploaded
    in one piece once it is complete, so a failed writer publishes nothing.
    """
    if isinstance(where, Path):
        files.write_atomic(where, write)
        return
    with tempfile.TemporaryDirectory(prefix="conv3d-upload-") as directory:
        local = Path(directory) / where.name  # the same suffix: Keras insists on ".keras"
        write(local)
        write_bytes(where, local.read_bytes())


def remove(where: Location) -> None:
    """Delete the file or object at where; nothing if it is already gone."""
    if isinstance(where, Path):
        where.unlink(missing_ok=True)
    elif is_file(where):
        where.filesystem.delete_file(where.path)


def new_dir(where: Location) -> Location:
    """A fresh run or final folder that can be written: files.new_dir on disk; in a bucket, the preflight
    (check_writable) and a prefix with nothing under it yet, so no result is overwritten."""
    if isinstance(where, Path):
        return files.new_dir(where)
    check_writable(where)
    if children(where):
        raise UserError(f"{where}: already holds objects; choose another --name or --results prefix")
    return where


def read_bytes(where: Location) -> bytes:
    """The whole file or object, one version of it even while a writer replaces it.

    pyarrow's input stream reads an object in several ranged GETs, which can straddle a replacement
    (measured: a mix of two versions); a random-access file reads it in one GET of the size it was told,
    so the object is asked again afterwards and the read repeated if it changed meanwhile.
    """
    if isinstance(where, Path):
        return where.read_bytes()
    fs = where.filesystem

    def read_once() -> bytes:
        before = fs.get_file_info(where.path)
        with fs.open_input_file(where.path) as file:
            data = file.read()
        after = fs.get_file_info(where.path)
        if (after.size, after.mtime) == (before.size, before.mtime) == (len(data), before.mtime):
            return data
        raise _Replaced

    # an object replaced mid-read (a writer's new version as we read): read again at once, _READ_ATTEMPTS tries in all
    try:
        return retry(read_once, _Replaced, attempts=_READ_ATTEMPTS)
    except _Replaced:
        raise OSError(f"{where}: replaced during every one of {_READ_ATTEMPTS} reads") from None


class _Replaced(Exception):
    """The object changed (size or mtime) while read_bytes read it."""


def read_text(where: Location) -> str:
    return read_bytes(where).decode()


def is_file(where: Location) -> bool:
    """Whether a file or an object is there (as Path.is_file)."""
    if isinstance(where, Path):
        return where.is_file()
    return where.filesystem.get_file_info(where.path).type == pafs.FileType.File


def exists(where: Location) -> bool:
    """Whether a file, an object, or a folder (a prefix with objects under it) is there."""
    if isinstance(where, Path):
        return where.exists()
    return where.filesystem.get_file_info(where.path).type != pafs.FileType.NotFound


def children(where: Location) -> list[str]:
    """The names directly inside a folder or prefix, sorted; [] if there is none."""
    if isinstance(where, Path):
        return sorted(p.name for p in where.iterdir()) if where.is_dir() else []
    infos = where.filesystem.get_file_info(pafs.FileSelector(where.path, allow_not_found=True))
    return sorted(PurePosixPath(info.path).name for info in infos)


# --- Ray Tune --------------------------------------------------------------------------------------------


def tune_storage(where: Location) -> dict[str, Any]:
    """``tune.RunConfig``'s storage_path and storage_filesystem for where (a local folder: its absolute path).

    Tune takes a path *inside* the filesystem when one is given (bucket/prefix, no scheme), and pickles the
    filesystem to every trial: endpoint, region and timeouts travel (not the retry strategy), credentials
    taken from the chain do not; Tune itself copies the driver's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    AWS_SESSION_TOKEN into each trainable's runtime_env (ray.tune.execution.class_cache).
    """
    if isinstance(where, Path):
        return {"storage_path": str(where.resolve())}
    return {"storage_path": where.path, "storage_filesystem": where.filesystem}


def tune_restore(experiment: Location) -> dict[str, Any]:
    """``tune.Tuner.restore``'s / ``can_restore``'s path and storage_filesystem for an experiment folder."""
    storage = tune_storage(experiment)
    return {"path": storage.pop("storage_path"), **storage}
