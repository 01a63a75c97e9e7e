"""run.json: how a run was made (command, options, space, data, versions, cluster) and when its stages ended.

Written when the search starts and at each stage's end; resume and ``final`` read the run back from it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from search import backend, connection, data, storage
from search.errors import UserError
from search.options import RunOptions
from search.rundir import RunDir
from search.settings import Settings
from search.space import Space
from search.storage import Location

DEFAULT_TRAINABLE = "search.trial:run_trial"  # runs from before trainables were recorded trained with it
_VERSIONS = ["conv3d-search", "ray", "tensorflow", "jax", "jaxlib", "torch", "keras", "keras-tuner", "optuna", "pandas",
             "numpy", "h5py"]


@dataclass(frozen=True)
class SpaceInfo:
    """The space file a run searched: where, its bytes' hash, and its settings as run (flags applied)."""

    path: Path
    sha256: str
    settings: Settings

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "settings": self.settings.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpaceInfo:
        return cls(Path(data["path"]), data["sha256"], Settings.from_json(data["settings"]))


@dataclass(frozen=True)
class DataInfo:
    """The data file a run used, its hash, and the sizes of its search split."""

    path: Path
    sha256: str
    train: int
    validation: int
    val_fraction: float

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataInfo:
        return cls(Path(data["path"]), data.get("sha256", ""), data.get("train", 0), data.get("validation", 0),
                   data.get("val_fraction", 0.0))


@dataclass
class RunInfo:
    """run.json, typed: what ran (options, space, data, versions, cluster) and when each stage ended.

    ``to_json`` writes the keys run.json always had; keys this version does not know are kept in ``extra``.
    The cluster facts stay as search.connection.facts wrote them.
    """

    options: RunOptions
    space: SpaceInfo
    data: DataInfo
    seed: int
    started: str
    command: list[str] = dataclasses.field(default_factory=list)
    backend: str | None = None  # None: a run from before backends were recorded (keras_backend)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    worker_env: dict[str, str] = dataclasses.field(default_factory=dict)
    cluster: dict[str, Any] = dataclasses.field(default_factory=dict)
    resumed: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # each: at, command, cluster
    search_ended: str | None = None
    ended: str | None = None
    # each `resume --samples/--time-budget`: at, command, samples, time_budget_s, trials_before, search_ended, ended
    extensions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    trainable: str = DEFAULT_TRAINABLE  # what trained the trials (search.tuner.trainable_name); a resume checks it
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def keras_backend(self) -> str:
        """The Keras backend the run was made with (runs from before backends were recorded used TensorFlow)."""
        return self.backend or backend.DEFAULT

    @property
    def last_cluster(self) -> dict[str, Any]:
        """The cluster facts of the run's latest driver: the start's, or the latest resume's."""
        return (self.resumed[-1] if self.resumed else {"cluster": self.cluster})["cluster"]

    @property
    def stage_ends(self) -> dict[str, Any]:
        """Where the latest search's stage ends are kept: the newest extension's entry, or the run's own keys."""
        return self.extensions[-1] if self.extensions else self.__dict__

    @property
    def searched(self) -> bool:
        """Whether the latest search stage (the run's, or its newest extension's) ended."""
        return bool(self.stage_ends.get("search_ended"))

    def to_json(self) -> dict[str, Any]:
        out = {"command": self.command, "options": self.options.to_json(), "space": self.space.to_json(),
               "data": self.data.to_json(), "seed": self.seed, "backend": self.backend, "versions": self.versions,
               "worker_env": self.worker_env, "cluster": self.cluster, "started": self.started,
               "resumed": self.resumed, "search_ended": self.search_ended, "ended": self.ended,
               "extensions": self.extensions, "trainable": self.trainable, **self.extra}
        optional = ("backend", "resumed", "search_ended", "ended", "extensions")
        return {k: v for k, v in out.items() if k not in optional or v}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        space = SpaceInfo.from_json(data["space"])
        options = RunOptions.from_json({"space_path": str(space.path), **data.get("options", {})})
        return cls(options=options, space=space, data=DataInfo.from_json(data["data"]),
                   seed=data.get("seed", space.settings.seed), started=data.get("started", ""),
                   command=data.get("command", []), backend=data.get("backend"), versions=data.get("versions", {}),
                   worker_env=data.get("worker_env", {}), cluster=data.get("cluster", {}),
                   resumed=data.get("resumed", []), search_ended=data.get("search_ended"), ended=data.get("ended"),
                   extensions=data.get("extensions", []),
                   trainable=data.get("trainable", DEFAULT_TRAINABLE), extra={k: v for k, v in data.items() if k not in known})


def start(run_dir: Location, options: RunOptions, space: Space, data_file: Path, split: tuple[int, int],
          keras_backend: str, trainable: str = DEFAULT_TRAINABLE) -> RunInfo:
    """Write run.json for a new run (after Ray started: it records the cluster); return it."""
    info = RunInfo(
        command=sys.argv,
        options=options,
        space=SpaceInfo(space.path.resolve(), space.sha256, space.settings),
        data=DataInfo(data_file.resolve(), data.sha256(data_file), split[0], split[1], space.settings.val_fraction),
        seed=space.settings.seed,
        backend=keras_backend,
        versions=versions(),
        worker_env=backend.env_vars(keras_backend),
        cluster=connection.facts(options.address),
        started=now(),
        trainable=trainable,
    )
    _write(run_dir, info)
    return info


def read(run_dir: Location) -> RunInfo:
    """run.json of an existing run folder; UserError for a folder that is not a run's."""
    path = RunDir(run_dir).run_json
    try:
        if not storage.is_file(path):
            raise UserError(f"{run_dir}: not a run folder (no {path.name})")
        text = storage.read_text(path)
    except OSError as e:  # a bucket that cannot be reached or read: the preflight's words
        raise storage.refusal(RunDir(run_dir).path, e, "read") from None
    try:
        return RunInfo.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a readable run.json ({type(e).__name__}: {e})") from None


def resumed(run_dir: Location, info: RunInfo, address: str | None) -> None:
    """Record a resume: when, by which command, on which cluster."""
    info.resumed.append({"at": now(), "command": sys.argv, "cluster": connection.facts(address)})
    _write(run_dir, info)


def mark(run_dir: Location, info: RunInfo, event: str, keep_first: bool = False) -> None:
    """Record when something happened to the latest search ("search_ended", "ended": the run's, or its newest
    extension's); keep_first: an earlier time stays."""
    ends = info.stage_ends
    ends[event] = (keep_first and ends.get(event)) or now()
    _write(run_dir, info)


def extended(run_dir: Location, info: RunInfo, samples: int, time_budget_s: float | None, trials_before: int) -> None:
    """Record an extension of a searched run (before its experiment starts): the newest of info.extensions."""
    info.extensions.append({"at": now(), "command": sys.argv, "samples": samples, "time_budget_s": time_budget_s,
                            "trials_before": trials_before})
    _write(run_dir, info)


def note(run_dir: Location, info: RunInfo, key: str, value: Any) -> None:
    """Record a fact of the run under key in run.json ("warm_start")."""
    info.extra[key] = value
    _write(run_dir, info)


def _write(run_dir: Location, info: RunInfo) -> None:
    storage.write_json(RunDir(run_dir).run_json, info.to_json())


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
