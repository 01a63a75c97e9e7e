"""Where the regenerated dataset lives between runs: built once, checked by sha256, then reused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from search import files
from search.data import h5file, regenerate

FORMAT_VERSION = 1  # bump when the generator's output changes, so old caches are not reused
ENV_CACHE_DIR = "CONV3D_SEARCH_CACHE"


def cache_dir() -> Path:
    """$CONV3D_SEARCH_CACHE, else $XDG_CACHE_HOME/conv3d-search, else ~/.cache/conv3d-search."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conv3d-search"


def regenerated_file(directory: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Path of the regenerated 3D MNIST file, generating it (about half a minute) on first use."""
    path = Path(directory or cache_dir()) / f"3d-mnist-regenerated-v{FORMAT_VERSION}-seed{seed}.h5"
    checksum = path.with_name(path.name + ".sha256")
    if path.is_file() and checksum.is_file() and checksum.read_text().split()[0] == h5file.sha256(path):
        return path
    print(f"Regenerating 3D MNIST from the shipped 2D digits into {path} ...", file=sys.stderr, flush=True)
    write_regenerated(path, seed)
    return path


def write_regenerated(path: str | os.PathLike, seed: int = 0) -> str:
    """Generate the dataset and write it to path in Kaggle's layout, with a .sha256 beside it; return the sha256."""
    path = Path(path)
    digest = h5file.write(path, regenerate.regenerate(seed))
    files.write_atomic(path.with_name(path.name + ".sha256"), lambda tmp: tmp.write_text(f"{digest}  {path.name}\n"))
    return digest
