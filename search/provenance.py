"""run.json: how a run was made (command, options, space, data, versions, cluster) and when its stages ended.

Written when the search starts and at each stage's end; resume and ``final`` read the run back from it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from search import backend, connection, data, files
from search.errors import UserError
from search.options import RunOptions
from search.space import Space

RUN_FILE = "run.json"
_VERSIONS = ["conv3d-search", "ray", "tensorflow", "jax", "jaxlib", "torch", "keras", "keras-tuner", "optuna", "pandas",
             "numpy", "h5py"]


def start(run_dir: Path, options: RunOptions, space: Space, data_file: Path, split: tuple[int, int],
          keras_backend: str) -> dict[str, Any]:
    """Write run.json for a new run (after Ray started: it records the cluster); return it."""
    info = {
        "command": sys.argv,
        "options": options.to_json(),
        "space": {"path": str(space.path.resolve()), "sha256": space.sha256, "settings": dataclasses.asdict(space.settings)},
        "data": {"path": str(data_file.resolve()), "sha256": data.sha256(data_file),
                 "train": split[0], "validation": split[1], "val_fraction": space.settings.val_fraction},
        "seed": space.settings.seed,
        "backend": keras_backend,
        "versions": versions(),
        "worker_env": backend.env_vars(keras_backend),
        "cluster": connection.facts(options.address),
        "started": now(),
    }
    files.write_json(run_dir / RUN_FILE, info)
    return info


def read(run_dir: Path) -> tuple[dict[str, Any], RunOptions]:
    """(run.json, its options) of an existing run folder."""
    info = read_info(run_dir)
    return info, RunOptions.from_json(info["options"])


def read_info(run_dir: Path) -> dict[str, Any]:
    """run.json of an existing run folder, as stored; UserError for a folder that is not a run's."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no {RUN_FILE})")
    return json.loads(path.read_text())


def keras_backend(info: dict[str, Any]) -> str:
    """The Keras backend a run was made with (runs from before backends were recorded used TensorFlow)."""
    return info.get("backend") or backend.DEFAULT


def resumed(run_dir: Path, info: dict[str, Any], address: str | None) -> None:
    """Record a resume: when, by which command, on which cluster."""
    info.setdefault("resumed", []).append({"at": now(), "command": sys.argv, "cluster": connection.facts(address)})
    files.write_json(Path(run_dir) / RUN_FILE, info)


def mark(run_dir: Path, info: dict[str, Any], event: str, keep_first: bool = False) -> None:
    """Record when something happened ("search_ended", "ended"); keep_first: an earlier time stays."""
    info[event] = (keep_first and info.get(event)) or now()
    files.write_json(Path(run_dir) / RUN_FILE, info)


def versions() -> dict[str, str]:
    """Python's and every relevant package's version ("not installed" where absent)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
