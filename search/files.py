"""Atomic output files: written to a temporary name beside the target, then renamed into place.

A reader (or a crash) never sees a half-written file, and a finished file is replaced only whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from search.errors import UserError


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call write(tmp_path), then rename tmp_path to path; the temp file is removed on failure.

    The temp name keeps path's suffix, for writers that insist on one (keras: ".keras").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes files owner-only; outputs are for every user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Pretty JSON, atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def new_dir(path: str | os.PathLike) -> Path:
    """Create a fresh output folder and check we can write in it; refuse one that already has files, so no result is overwritten."""
    path = Path(path)
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"{path}: output folder already exists and is not empty; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()  # a folder we may create but not write into fails here, not later
    except OSError as e:
        raise UserError(f"{path}: cannot write the output folder ({e.strerror or e})") from None
    return path


@contextlib.contextmanager
def removed_if_refused(path: Any) -> Iterator[None]:
    """Remove the folder at path if the block raises while the folder is still empty: a refused run leaves nothing."""
    try:
        yield
    except BaseException:
        if isinstance(path, Path) and path.is_dir() and not any(path.iterdir()):  # a bucket prefix is never made
            path.rmdir()
        raise
