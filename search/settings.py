"""Search settings: the optional ``SEARCH`` dict of a space file (budget, ASHA, split, seed, baselines, finalists,
objectives and limits).

Every field is validated on construction; a bad value is a one-line UserError naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search import objectives as goals
from search.errors import UserError
from search.params import PARAMS, PRESETS, validate
from search.protocol import FAULT_KEY, FAULTS, METRIC

_INT_RANGES: dict[str, tuple[int, int | None]] = {
    "samples": (1, None),
    "max_epochs": PARAMS["epochs"].allowed,
    "grace_period": (1, None),
    "reduction_factor": (2, None),
    "batch_size": PARAMS["batch_size"].allowed,
    "max_concurrent": (1, None),
    "seed": PARAMS["seed"].allowed,
    "finalists": (0, None),
    "checkpoint_every": (1, None),
    "steps_per_execution": (1, 1000),
    "brackets": (1, 10),
    "startup_trials": (1, None),
}


@dataclass(frozen=True)
class Settings:
    """How to search a space: a space file's ``SEARCH`` dict, every key optional. Invalid -> UserError."""

    samples: int = 20  # trials TPE proposes; the baselines run in addition to these
    # Seconds the search stage may run (Tune's time_budget_s; it survives a resume): then it stops its
    # trials and the run goes on to the finalists. None: until `samples` trials ended. With a budget,
    # `samples` is only a cap, and a faster machine buys more samples.
    time_budget_s: float | None = None
    max_epochs: int = 20  # ASHA's max_t, and the cap of every trial's epochs
    grace_period: int = 2  # epochs a trial runs before ASHA may stop it
    reduction_factor: int = 3  # ASHA keeps 1 / reduction_factor of the trials at each rung
    brackets: int = 1  # ASHA's brackets; more start some trials at later rungs (slow starters' insurance)
    # TPE proposes at random until this many trials have results; None: a third of samples, 2 to 10.
    # Trials proposed while none has a result are random either way: a whole first wave of concurrent trials.
    startup_trials: int | None = None
    batch_size: int = 100  # of trials whose space leaves batch_size unset
    baselines: tuple = ()  # reference configurations trained for comparison (see baseline_configs)
    max_concurrent: int | None = None  # trials at once; None: as many as Ray's resources allow
    seed: int = 0  # of the sampler and of every trial, so all trials share one split and init
    val_fraction: float = 0.2  # of the training set held out to score trials
    # The top `finalists` configurations of the search are retrained at the full budget (max_epochs, a
    # second seed) before the winner is named: ASHA judged most of them at a few epochs, and the top of a
    # leaderboard of one-seed results is partly luck. 3 costs 3 * max_epochs trial-epochs, in parallel.
    finalists: int = 3
    # A trial checkpoints every this many epochs (and always at ASHA's rungs and at its last epoch): on
    # a GPU, saving model.keras each epoch costs as much as training it. A lost worker costs at most
    # checkpoint_every - 1 epochs of that trial.
    checkpoint_every: int = 5
    # Batches per compiled call (Keras's compile(steps_per_execution=...)): fewer Python round trips per
    # epoch, the point of it on a GPU, and no slower on a CPU.
    steps_per_execution: int = 8
    # What the search optimizes (search.objectives): accuracy alone, or accuracy against costs such as
    # ["val_accuracy", "param_count"] (the study then searches for their Pareto front), and hard limits on costs,
    # {"param_count": 200_000, "latency_ms": 2.0}: a trial over one is infeasible.
    objectives: tuple = (METRIC,)
    limits: tuple = ()  # as (cost, the most it may be) pairs; SEARCH gives a dict

    def __post_init__(self) -> None:
        for key, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, key)
            if key in ("max_concurrent", "startup_trials") and value is None:
                continue
            if type(value) is not int or value < lo or (hi is not None and value > hi):
                bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise _bad_setting(key, value, f"must be an int {bounds}")
        if self.grace_period > self.max_epochs:
            raise _bad_setting("grace_period", self.grace_period, f"exceeds max_epochs={self.max_epochs}")
        if self.time_budget_s is not None and (type(self.time_budget_s) not in (int, float) or not self.time_budget_s > 0):
            raise _bad_setting("time_budget_s", self.time_budget_s, "must be a number of seconds > 0, or None")
        if type(self.val_fraction) not in (int, float) or not 0 < self.val_fraction < 1:
            raise _bad_setting("val_fraction", self.val_fraction, "must be a number in (0, 1)")
        if not isinstance(self.baselines, (list, tuple)):
            raise _bad_setting("baselines", self.baselines, "must be a list of preset names or {'name': ...} dicts")
        # SEARCH's lists and dicts would be unhashable: keep a dict as a tuple of its items.
        object.__setattr__(self, "baselines", tuple(
            b if isinstance(b, str) else tuple(b.items()) if isinstance(b, Mapping) else b for b in self.baselines))
        self.baseline_configs()  # validates each one
        limits = self.limits
        if isinstance(limits, tuple) and all(isinstance(kv, tuple) and len(kv) == 2 for kv in limits):
            limits = dict(limits)  # as the settings keep them (and from_json reads them back)
        aims = goals.parse(self.objectives, limits)
        object.__setattr__(self, "objectives", aims.names)
        object.__setattr__(self, "limits", aims.limits)
        if aims.multi and self.brackets != 1:
            raise _bad_setting("brackets", self.brackets, "must be 1 in a multi-objective search (its rungs sort fronts)")

    def goals(self) -> goals.Objectives:
        """What the search optimizes, and the limits on costs (search.objectives)."""
        return goals.Objectives(self.objectives, self.limits)

    def tpe_startup_trials(self) -> int:
        """Random proposals before TPE models the results (startup_trials, else a third of samples, 2 to 10)."""
        return self.startup_trials or min(10, max(2, self.samples // 3))

    def rungs(self) -> tuple[int, ...]:
        """The epochs at which ASHA compares trials: grace * rf^k below max_epochs (every bracket's are among these)."""
        count = int(math.log(self.max_epochs / self.grace_period) / math.log(self.reduction_factor) + 1)
        rungs = (self.grace_period * self.reduction_factor**k for k in range(count))
        return tuple(sorted(r for r in rungs if r < self.max_epochs))

    def baseline_configs(self) -> dict[str, dict[str, Any]]:
        """Name -> full configuration of each baseline, capped at max_epochs and seeded like the trials.

        A baseline is a preset name ("machinecurve"), or a dict with a "name", an optional "preset" to
        start from (default: the parameter defaults) and parameters (and a fault, see protocol.FAULTS) to change.
        """
        configs = {}
        for entry in self.baselines:
            if isinstance(entry, str):
                entry = (("name", entry), ("preset", entry))
            if not isinstance(entry, tuple) or not all(isinstance(kv, tuple) and len(kv) == 2 for kv in entry):
                raise _bad_setting("baselines", entry, "must be a preset name or a {'name': ...} dict")
            spec = dict(entry)
            name, preset, fault = spec.pop("name", None), spec.pop("preset", None), spec.pop(FAULT_KEY, None)
            if not isinstance(name, str) or not name or name in configs:
                raise _bad_setting("baselines", dict(entry), f"needs a unique 'name' string, got {name!r}")
            if preset is not None and preset not in PRESETS:
                raise _bad_setting("baselines", name, f"names unknown preset {preset!r} (known: {', '.join(PRESETS)})")
            if fault is not None and fault not in FAULTS:
                raise _bad_setting("baselines", name, f"has unknown fault {fault!r} (known: {', '.join(FAULTS)})")
            params = {**PRESETS.get(preset, {}), **spec}
            params["epochs"] = min(params.get("epochs", PARAMS["epochs"].default), self.max_epochs)
            params.setdefault("schedule_epochs", self.max_epochs)  # as every trial's (see bridge.complete)
            try:
                params = validate({**params, "seed": self.seed})
            except UserError as e:
                raise _bad_setting("baselines", name, str(e)) from None
            configs[name] = {**params, FAULT_KEY: fault} if fault else params
        return configs

    def replace(self, **changes: Any) -> Settings:
        """These settings with some changed (say, from command-line flags), validated the same way."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """run.json's "settings": every field, baselines as lists."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        """The settings to_json wrote (keys a run from another version lacks take their defaults; unknown ones are dropped)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["baselines"] = tuple(b if isinstance(b, str) else tuple(tuple(kv) for kv in b)
                                    for b in values.get("baselines") or ())
        values["limits"] = tuple(tuple(kv) for kv in values.get("limits") or ())
        return cls(**values)


def _bad_setting(key: str, value: Any, why: str) -> UserError:
    return UserError(f"SEARCH[{key!r}]={value!r} {why}")
