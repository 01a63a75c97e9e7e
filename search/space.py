"""Search spaces: Python files that declare hyperparameters with keras-tuner's API, sampled by Optuna.

A space file (``spaces/*.py``) defines ``space(hp)`` and may define ``SEARCH``, a dict of `Settings`.
``space`` is define-by-run: it calls ``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean`` and
``hp.Fixed`` with the names of ``search.params.PARAMS``, in ``hp.conditional_scope`` or under plain
Python control flow, e.g. ``for i in range(hp.Int("blocks", 1, 4)): hp.Int(f"filters_{i}", 8, 64)``;
its return value is ignored. ``load_space`` imports and vets a file, ``define_by_run`` hands it to
Ray's ``OptunaSearch``. keras-tuner keeps doing its own argument checks, name handling and
conditional scopes; only the value of each active hyperparameter comes from Optuna:

| keras-tuner call                           | Optuna call                                            |
|--------------------------------------------|--------------------------------------------------------|
| ``hp.Int(name, lo, hi, step=s)``           | ``suggest_int(name, lo, hi, step=s)``; s = 1 if unset  |
| ``hp.Int(name, lo, hi, sampling="log")``   | ``suggest_int(name, lo, hi, log=True)``                |
| ``hp.Float(name, lo, hi, step=s)``         | ``suggest_float(name, lo, hi, step=s)``; s may be None |
| ``hp.Float(name, lo, hi, sampling="log")`` | ``suggest_float(name, lo, hi, log=True)``              |
| ``hp.Choice(name, values)``                | ``suggest_categorical(name, values)``                  |
| ``hp.Boolean(name)``                       | ``suggest_categorical(name, [False, True])``           |
| ``hp.Fixed(name, value)``                  | none: the value is in the params, not sampled          |
| ``sampling="log"`` with a ``step``         | ``UserError``: keras-tuner's log step multiplies       |
| ``sampling="reverse_log"``                 | ``UserError``: Optuna has no such distribution         |

Optuna ignores ``default=`` and ``ordered=``: defaults only matter to the load-time dry run, and a
numeric ``hp.Choice`` is an unordered category to TPE (use ``hp.Int`` with a step to keep the order).
A step that does not divide ``hi - lo`` lowers ``hi`` to the last step, as in keras-tuner.
Hyperparameters in an inactive ``conditional_scope`` (``hp`` returns None), or never reached, are not
sampled and are absent from the trial's params.

Importing this module is cheap: keras-tuner (which imports TensorFlow) and Optuna load on first use.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import math
import os
import sys
import traceback
from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from search.errors import UserError
from search.params import FAULT_KEY, FAULTS, MAX_BLOCKS, PARAMS, PRESETS, validate

if TYPE_CHECKING:
    import keras_tuner
    import optuna

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
}


@dataclass(frozen=True)
class Settings:
    """How to search a space: a space file's ``SEARCH`` dict, every key optional. Invalid -> UserError."""

    samples: int = 20  # trials TPE proposes; the baselines run in addition to these
    max_epochs: int = 20  # ASHA's max_t, and the cap of every trial's epochs
    grace_period: int = 2  # epochs a trial runs before ASHA may stop it
    reduction_factor: int = 3  # ASHA keeps 1 / reduction_factor of the trials at each rung
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
    # epoch. Equal or faster on CPU (TensorFlow and JAX, measured), the point of it on a GPU.
    steps_per_execution: int = 8

    def __post_init__(self) -> None:
        for key, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, key)
            if key == "max_concurrent" and value is None:
                continue
            if type(value) is not int or value < lo or (hi is not None and value > hi):
                bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise _bad_setting(key, value, f"must be an int {bounds}")
        if self.grace_period > self.max_epochs:
            raise _bad_setting("grace_period", self.grace_period, f"exceeds max_epochs={self.max_epochs}")
        if type(self.val_fraction) not in (int, float) or not 0 < self.val_fraction < 1:
            raise _bad_setting("val_fraction", self.val_fraction, "must be a number in (0, 1)")
        if not isinstance(self.baselines, (list, tuple)):
            raise _bad_setting("baselines", self.baselines, "must be a list of preset names or {'name': ...} dicts")
        # SEARCH's lists and dicts would be unhashable: keep a dict as a tuple of its items.
        object.__setattr__(self, "baselines", tuple(
            b if isinstance(b, str) else tuple(b.items()) if isinstance(b, Mapping) else b for b in self.baselines))
        self.baseline_configs()  # validates each one

    def rungs(self) -> tuple[int, ...]:
        """The epochs at which ASHA (one bracket) compares trials: grace * rf^k below max_epochs."""
        count = int(math.log(self.max_epochs / self.grace_period) / math.log(self.reduction_factor) + 1)
        rungs = (self.grace_period * self.reduction_factor**k for k in range(count))
        return tuple(sorted(r for r in rungs if r < self.max_epochs))

    def baseline_configs(self) -> dict[str, dict[str, Any]]:
        """Name -> full configuration of each baseline, capped at max_epochs and seeded like the trials.

        A baseline is a preset name ("machinecurve"), or a dict with a "name", an optional "preset" to
        start from (default: the parameter defaults) and parameters (and a fault, see params.FAULTS) to change.
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
            params.setdefault("schedule_epochs", self.max_epochs)  # as every trial's (see _complete)
            try:
                params = validate({**params, "seed": self.seed})
            except UserError as e:
                raise _bad_setting("baselines", name, str(e)) from None
            configs[name] = {**params, FAULT_KEY: fault} if fault else params
        return configs

    def replace(self, **changes: Any) -> Settings:
        """These settings with some changed (say, from command-line flags), validated the same way."""
        return dataclasses.replace(self, **changes)


def _bad_setting(key: str, value: Any, why: str) -> UserError:
    return UserError(f"SEARCH[{key!r}]={value!r} {why}")


@dataclass(frozen=True)
class Space:
    """A loaded and vetted space file. Pickles as its path, hash and settings: unpickling loads the file again."""

    path: Path
    sha256: str  # of the file's bytes, exactly the ones that ran
    settings: Settings
    define: Callable[[Any], object]  # the file's space(hp)

    def __reduce__(self):
        # Ray pickles the searcher, and with it this space, with plain pickle; a function loaded from
        # a file by path cannot be pickled by reference, so the file travels as its path. The settings
        # travel too: they may have been replaced since loading.
        return _reload, (self.path.absolute(), self.sha256, self.settings)

    def __copy__(self) -> Space:
        return self  # immutable; a copy must not load the file again

    def __deepcopy__(self, memo: dict) -> Space:
        return self


def _reload(path: Path, sha256: str, settings: Settings) -> Space:
    """Unpickle a Space; refuse a file that changed since, as the search would change under its trials."""
    space = load_space(path)
    if space.sha256 != sha256:
        raise UserError(f"{path}: changed since the search started (sha256 was {sha256}, is {space.sha256})")
    return dataclasses.replace(space, settings=settings)


_loads = itertools.count()  # unique module names, so loading a file twice never reuses a stale module


def load_space(path: str | os.PathLike[str]) -> Space:
    """Import a space file by path, dry-run its space(hp) and validate what it samples.

    Every problem is a one-line UserError naming the file (and the line when known): unreadable file,
    syntax error, exception while importing, no or bad ``space``, bad ``SEARCH``, an exception in
    ``space(hp)``, no hyperparameters, an hp call Optuna cannot sample, an unknown name or out-of-range
    value (the range of every declared hp is checked, and the params of two dry runs: keras-tuner's
    defaults, and one random Optuna trial).
    """
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read space file: {e.strerror}") from None
    module = _import(path, source)
    define = getattr(module, "space", None)
    if define is None:
        raise UserError(f"{path}: defines no space(hp) function")
    if not callable(define):
        raise UserError(f"{path}: space must be a function space(hp), got {type(define).__name__}")
    try:
        inspect.signature(define).bind(None)
    except TypeError:
        line = getattr(getattr(define, "__code__", None), "co_firstlineno", None)
        raise UserError(f"{path}{f':{line}' if line else ''}: space must take one argument, hp") from None
    space = Space(path, hashlib.sha256(source).hexdigest(), _settings(path, getattr(module, "SEARCH", {})), define)
    _dry_run(space)
    return space


def _import(path: Path, source: bytes) -> ModuleType:
    """Run the file's bytes as a new module (bytes we hashed, and no __pycache__ next to the spaces)."""
    name = f"_conv3d_space_{next(_loads)}"
    # An explicit loader accepts any file name, not only *.py.
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as e:
        raise UserError(f"{path}{f':{e.lineno}' if e.lineno else ''}: {e.msg}") from None
    except ValueError as e:  # e.g. null bytes
        raise UserError(f"{path}: {e}") from None
    sys.modules[name] = module  # while it runs, for code that looks its module up (dataclasses do)
    try:
        exec(code, module.__dict__)
    except Exception as e:
        raise UserError(f"{_where(path, e)}: {_describe(e)}") from e
    finally:
        del sys.modules[name]
    return module


def _settings(path: Path, search: object) -> Settings:
    """The file's SEARCH dict as Settings; errors name the file."""
    if not isinstance(search, Mapping):
        raise UserError(f"{path}: SEARCH must be a dict, got {type(search).__name__}")
    known = [f.name for f in fields(Settings)]
    for key in search:
        if key not in known:
            raise UserError(f"{path}: SEARCH has unknown key {key!r} (known: {', '.join(known)})")
    try:
        return Settings(**search)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def _where(path: Path, error: BaseException) -> str:
    """'path:line' of the innermost traceback frame in the space file, else 'path'."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    return f"{path}:{lines[-1]}" if lines else str(path)


def _describe(error: Exception) -> str:
    """The error on one line; our own errors need no type name."""
    text = " ".join(str(error).split())
    if isinstance(error, UserError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _run(space: Space, hp: keras_tuner.HyperParameters) -> None:
    """Call space(hp); any exception becomes a UserError at the space file's line."""
    try:
        space.define(hp)
    except Exception as e:
        raise UserError(f"{_where(space.path, e)}: {_describe(e)}") from e


def _dry_run(space: Space) -> None:
    """Run space(hp) with keras-tuner's defaults and with one random Optuna trial; validate both."""
    import keras_tuner
    import optuna

    defaults = keras_tuner.HyperParameters()
    _run(space, defaults)
    if not defaults.space:
        raise UserError(f"{space.path}: space(hp) declares no hyperparameters")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line for a throwaway
    try:
        sampled = _sampled(space, optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    finally:
        optuna.logging.set_verbosity(verbosity)
    for hps in (defaults, sampled):
        try:
            for hp in hps.space:
                for value in _extremes(hp):
                    # blocks at its maximum, so that any filters_i is allowed on its own
                    validate({"blocks": MAX_BLOCKS, hp.name: value})
            validate(_complete(space.settings, hps.values))
        except UserError as e:
            raise UserError(f"{space.path}: {e}") from None


def _extremes(hp: Any) -> tuple:
    """Values of a declared hp that bound all it can take: a bad range fails at load, not in trial 17."""
    from keras_tuner.engine.hyperparameters import Float, Int

    if not isinstance(hp, (Int, Float)):
        return tuple(hp.values)  # Choice, Boolean, Fixed
    top = hp.max_value
    if isinstance(hp, Int) and hp.step is not None and hp.sampling == "linear":  # the last step
        top = hp.min_value + (hp.max_value - hp.min_value) // hp.step * hp.step
    return hp.min_value, top


@functools.cache
def _bridge() -> type:
    """The OptunaHyperParameters class; built on first use, as keras-tuner imports TensorFlow."""
    import keras_tuner

    class OptunaHyperParameters(keras_tuner.HyperParameters):
        """keras-tuner's HyperParameters whose active values come from an Optuna trial (see the table above).

        ``trial`` is an ``optuna.trial.Trial`` or Ray's captor around one: only its ``suggest_int``,
        ``suggest_float`` and ``suggest_categorical`` are called. ``values`` holds the active params.
        """

        def __init__(self, trial: optuna.trial.Trial) -> None:
            super().__init__()
            self.trial = trial

        def _register(self, hyperparameter, overwrite=False):
            # Called for each new (name, conditions), after keras-tuner checked the arguments and
            # resolved name scopes and conditions. A name already active under other conditions
            # keeps its value, as in keras-tuner.
            seen = hyperparameter.name in self.values
            value = super()._register(hyperparameter, overwrite)
            if seen or not self.is_active(hyperparameter):
                return value
            value = self.values[hyperparameter.name] = _suggest(self.trial, hyperparameter)
            return value

    OptunaHyperParameters.__module__, OptunaHyperParameters.__qualname__ = __name__, "OptunaHyperParameters"
    return OptunaHyperParameters


def __getattr__(name: str) -> Any:
    # PEP 562: `from search.space import OptunaHyperParameters` builds the class (and imports TensorFlow).
    if name == "OptunaHyperParameters":
        return _bridge()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _suggest(trial: optuna.trial.Trial, hp: Any) -> Any:
    """The value of one active hp, asked of Optuna by the table in the module docstring."""
    from keras_tuner.engine.hyperparameters import Boolean, Choice, Fixed, Float, Int

    if isinstance(hp, Fixed):
        return hp.value
    if isinstance(hp, Boolean):
        return trial.suggest_categorical(hp.name, [False, True])
    if isinstance(hp, Choice):
        return trial.suggest_categorical(hp.name, list(hp.values))
    if isinstance(hp, (Int, Float)):
        call = f"hp.{type(hp).__name__}({hp.name!r})"
        if hp.sampling == "reverse_log":
            raise UserError(f"{call}: sampling='reverse_log' is not supported (Optuna has no such distribution); "
                            "use 'linear' or 'log'")
        log = hp.sampling == "log"
        if log and hp.step is not None:
            raise UserError(f"{call}: sampling='log' with step={hp.step} is not supported (keras-tuner's log step "
                            "multiplies, Optuna's cannot); drop the step, or list the values in hp.Choice")
        if isinstance(hp, Int):
            return trial.suggest_int(hp.name, hp.min_value, hp.max_value, step=hp.step or 1, log=log)
        return trial.suggest_float(hp.name, hp.min_value, hp.max_value, step=hp.step, log=log)
    raise UserError(f"hp {hp.name!r}: {type(hp).__name__} is not supported")


def _sampled(space: Space, trial: optuna.trial.Trial) -> keras_tuner.HyperParameters:
    """Run space(hp) with values from trial; return the hp container."""
    hps = _bridge()(trial)
    _run(space, hps)
    return hps


def _complete(settings: Settings, values: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's params: the space's values, plus batch_size, epochs, schedule_epochs and seed where it leaves them unset."""
    params = dict(values)
    params.setdefault("batch_size", settings.batch_size)
    params.setdefault("seed", settings.seed)
    params.setdefault("epochs", settings.max_epochs)
    # A sampled epochs is capped: ASHA stops every trial at max_epochs anyway.
    if type(params["epochs"]) is int:
        params["epochs"] = min(params["epochs"], settings.max_epochs)
    # The epoch budget is the fidelity, not a hyperparameter of the schedule: a cosine schedule decays
    # over max_epochs in every trial, so ASHA compares trials at the same learning rate at each rung,
    # whatever budget a trial samples, and a trial judged at epoch 10 is not one already near LR 0.
    params.setdefault("schedule_epochs", settings.max_epochs)
    return params


def sample(space: Space, trial: optuna.trial.Trial) -> dict[str, Any]:
    """Run space(hp) with values from an Optuna trial (or Ray's captor); return the trial's complete params.

    The params are the active hyperparameters, Fixed ones included, plus ``batch_size``, ``epochs``
    (``settings.max_epochs``; a sampled one is capped at it), ``schedule_epochs`` (``settings.max_epochs``:
    the cosine schedule's horizon) and ``seed`` from the settings where the
    space leaves them unset. Not validated here: ``load_space`` vetted the space, the trainer validates.
    Errors in space(hp) are UserErrors naming the file and line.
    """
    return _complete(space.settings, _sampled(space, trial).values)


def define_by_run(space: Space) -> Callable[[optuna.trial.Trial], dict[str, Any]]:
    """The ``space=`` of Ray's ``OptunaSearch``: trial -> the complete params, as ``sample`` returns.

    OptunaSearch merges the values its captor saw suggested with this dict, which already holds them
    all; a partial of a module function (not a closure) so that Ray can pickle the searcher.
    """
    return functools.partial(sample, space)
