"""The bridge from keras-tuner's ``hp`` API to Optuna: a space file's ``space(hp)`` run with values Optuna suggests.

keras-tuner keeps doing its own argument checks, name handling and
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

``load_space`` reads a space file and vets it here, by dry runs through the bridge; ``param_counts``
sizes the models a space draws, for the disk check. Importing this module is cheap: keras-tuner (which
imports TensorFlow) and Optuna load on first use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from search.errors import UserError
from search.params import MAX_BLOCKS, validate
from search.settings import Settings
from search.space import Space, read_space

if TYPE_CHECKING:
    import keras_tuner
    import optuna


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
    # PEP 562: `from search.bridge import OptunaHyperParameters` builds the class (and imports TensorFlow).
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


def throwaway_study(seed: int) -> optuna.Study:
    """An in-memory study with Optuna's RandomSampler, for a dry run or an estimate, without its "A new study" line."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    finally:
        optuna.logging.set_verbosity(verbosity)


def sampled(space: Space, trial: optuna.trial.Trial) -> keras_tuner.HyperParameters:
    """Run space(hp) with values from trial; return the hp container (the load-time dry run uses it too)."""
    hps = _bridge()(trial)
    space.call(hps)
    return hps


def complete(settings: Settings, values: Mapping[str, Any]) -> dict[str, Any]:
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
    return complete(space.settings, sampled(space, trial).values)


def define_by_run(space: Space) -> Callable[[optuna.trial.Trial], dict[str, Any]]:
    """The ``space=`` of Ray's ``OptunaSearch``: trial -> the complete params, as ``sample`` returns.

    OptunaSearch merges the values its captor saw suggested with this dict, which already holds them
    all; a partial of a module function (not a closure) so that Ray can pickle the searcher.
    """
    return functools.partial(sample, space)


def load_space(path: str | os.PathLike[str]) -> Space:
    """Read a space file (space.read_space) and vet what it samples: a bad space fails here, not in trial 17.

    Every problem is a one-line UserError naming the file (and the line when known): besides read_space's,
    an exception in ``space(hp)``, no hyperparameters, an hp call Optuna cannot sample, an unknown name or
    out-of-range value (the range of every declared hp is checked, and the params of two dry runs:
    keras-tuner's defaults, and one random Optuna trial).
    """
    space = read_space(path)
    vet(space)
    return space


def vet(space: Space) -> None:
    """Run space(hp) with keras-tuner's defaults and with one random Optuna trial; validate both."""
    import keras_tuner

    defaults = keras_tuner.HyperParameters()
    space.call(defaults)
    if not defaults.space:
        raise UserError(f"{space.path}: space(hp) declares no hyperparameters")
    sampled_hps = sampled(space, throwaway_study(seed=0).ask())
    for hps in (defaults, sampled_hps):
        try:
            for hp in hps.space:
                for value in _extremes(hp):
                    # blocks at its maximum, so that any filters_i is allowed on its own
                    validate({"blocks": MAX_BLOCKS, hp.name: value})
            validate(complete(space.settings, hps.values))
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


DRAWS = 16  # random configurations of a space whose sizes stand for its trials


def param_counts(space: Space, draws: int = DRAWS) -> list[int]:
    """Weights of the space's baselines and of `draws` random feasible configurations (infeasible ones train nothing)."""
    from search import console, model, params
    from search.protocol import split_config

    configs = list(space.settings.baseline_configs().values())
    study = throwaway_study(space.settings.seed)
    configs += [sample(space, study.ask()) for _ in range(draws)]
    hyperparameters = [params.validate(split_config(c)[0]) for c in configs]
    with console.filtered_stderr():  # this is the driver's first Keras op: TensorFlow's GPU lookup, quietly
        return [model.count_params(c) for c in hyperparameters if params.check(c) is None] or [0]
