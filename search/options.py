"""What the user chose on the command line for a run, typed, and its round trip through run.json.

Everything else comes from the space file. run.json keeps the flat keys it always had
(``cpus_per_trial``, ``results`` as text, ...); ``from_json`` gives back the same types, so resume
and ``final`` work with what ``run`` worked with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search import storage
from search.resources import Resources, default_wait_s
from search.storage import Location, S3Path

# run.json's names for the per-trial resources (the command-line flags' names)
_RESOURCE_KEYS = {"cpus_per_trial": "cpus", "gpus_per_trial": "gpus", "max_concurrent": "max_concurrent",
                  "memory_per_trial": "memory_gib", "mps": "mps", "precision": "precision"}


@dataclass(frozen=True)
class RunOptions:
    """The options of `python -m search run`; None means "the space file's value" or "the default"."""

    space_path: Path
    data: str | None = None
    results: Location = Path("results")  # a folder, or a bucket prefix (search.storage.S3Path)
    name: str | None = None
    address: str | None = None
    samples: int | None = None
    time_budget_s: float | None = None
    max_epochs: int | None = None
    resources: Resources = field(default_factory=Resources)
    seed: int | None = None
    final: bool = True
    dashboard_host: str = "127.0.0.1"
    backend: str | None = None  # Keras backend; None: $KERAS_BACKEND, else tensorflow
    wait_for_resources: float | None = None  # s to wait for a node that fits a trial; None: see wait_s
    warm_start: tuple[Location, ...] = ()  # earlier run folders whose fitting trials TPE is told first (search.warmstart)

    def settings_overrides(self) -> dict[str, Any]:
        """The space file's SEARCH values these options replace."""
        overrides = {"samples": self.samples, "time_budget_s": self.time_budget_s, "max_epochs": self.max_epochs,
                     "seed": self.seed}
        return {k: v for k, v in overrides.items() if v is not None}

    def wait_s(self) -> float:
        """Seconds to wait for a node that can hold one trial (resources.default_wait_s unless given)."""
        return default_wait_s(self.address) if self.wait_for_resources is None else self.wait_for_resources

    def to_json(self) -> dict[str, Any]:
        """run.json's "options": flat keys, paths as text."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "resources"}
        out.update({key: getattr(self.resources, name) for key, name in _RESOURCE_KEYS.items()})
        out["warm_start"] = [str(w) for w in self.warm_start]
        return {k: str(v) if isinstance(v, (Path, S3Path)) else v for k, v in out.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        """The options to_json wrote (keys a run from an older version lacks take their defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["space_path"], values["results"] = Path(data["space_path"]), storage.parse(data.get("results", "results"))
        values["warm_start"] = tuple(storage.parse(w) for w in data.get("warm_start", ()))
        resources = Resources(**{name: data[key] for key, name in _RESOURCE_KEYS.items() if key in data})
        return cls(**values, resources=resources)
