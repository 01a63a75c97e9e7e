"""The keras-tuner behaviour search.bridge relies on: it overrides the private HyperParameters._register.

If a keras-tuner release changes when or how _register is called, the bridge would sample silently wrong
values; these tests fail first. (The bridge's own behaviour is tested in test_space.py.)
"""

from __future__ import annotations

import keras_tuner
import optuna

from search.bridge import OptunaHyperParameters


class _Spy(keras_tuner.HyperParameters):
    """Records every _register call: (name, kind, active), and hands out 7 for Ints as the bridge hands out Optuna's."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, bool]] = []

    def _register(self, hyperparameter, overwrite=False):
        self.calls.append((hyperparameter.name, type(hyperparameter).__name__, self.is_active(hyperparameter)))
        value = super()._register(hyperparameter, overwrite)
        if isinstance(hyperparameter, keras_tuner.engine.hyperparameters.Int) and self.is_active(hyperparameter):
            value = self.values[hyperparameter.name] = 7
        return value


def test_register_is_called_once_per_new_hyperparameter_and_its_return_value_is_what_hp_returns():
    hp = _Spy()
    assert hp.Int("blocks", 1, 9) == 7  # what _register returned (and put into values)
    assert hp.Int("blocks", 1, 9) == 7  # a second call reads values: no second _register
    assert hp.Choice("padding", ["same", "valid"]) == "same"
    with hp.conditional_scope("padding", ["valid"]):
        assert hp.Int("kernel_size", 3, 5) is None  # inactive: registered, not valued
    hp.Boolean("residual")
    hp.Float("dropout", 0.0, 0.5)
    hp.Fixed("input_mode", "rgb")
    with hp.name_scope("head"):
        hp.Int("units", 8, 16)  # name scopes are resolved before _register sees the name
    assert hp.calls == [("blocks", "Int", True), ("padding", "Choice", True), ("kernel_size", "Int", False),
                        ("residual", "Boolean", True), ("dropout", "Float", True), ("input_mode", "Fixed", True),
                        ("head/units", "Int", True)]
    assert hp.values == {"blocks": 7, "padding": "same", "residual": False, "dropout": 0.0, "input_mode": "rgb",
                         "head/units": 7}


def test_the_bridge_asks_optuna_for_exactly_the_active_hyperparameters():
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    hp = OptunaHyperParameters(trial)
    blocks = hp.Int("blocks", 1, 3)
    padding = hp.Choice("padding", ["same", "valid"])
    with hp.conditional_scope("padding", ["valid"]):
        kernel = hp.Int("kernel_size", 3, 5)
    hp.Fixed("input_mode", "rgb")
    assert trial.params == {"blocks": blocks, "padding": padding, **({"kernel_size": kernel} if kernel else {})}
    assert (kernel is None) == (padding == "same") and hp.values["input_mode"] == "rgb"
