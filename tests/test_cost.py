"""search.params.forward_macs, the Keras-free cost model, against the multiply-adds of the model Keras builds."""

import math

import keras
import pytest

from search import bridge, model, params
from search.params import PRESETS


def built_macs(p: dict) -> int:
    """Multiply-adds of the built model's Conv3D and Dense layers, from the shapes Keras gave them."""
    total = 0
    for layer in model._network(params.validate(p)).layers:
        if isinstance(layer, keras.layers.Conv3D):
            spatial = math.prod(layer.output.shape[1:4])
            total += spatial * math.prod(layer.kernel_size) * layer.input.shape[-1] * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


CASES = [
    *PRESETS.values(),
    {"blocks": 2, "padding": "valid", "kernel_size": 5, "residual": False, "input_mode": "occupancy"},
    {"blocks": 2, "padding": "same", "residual": True, "head": "global_avg", "dense_units": 0},
    {"blocks": 1, "padding": "valid", "kernel_size": 3, "residual": True, "filters": 12},  # the shortcut is cropped
    {"blocks": 3, "padding": "same", "filters": 32, "filter_growth": 1.0, "pose": "both", "fusion": "streams",
     "raw_stream_width": 0.5, "input_mode": "occupancy", "dense_units": 128},  # the quick space's pick
    {"blocks": 2, "padding": "same", "pose": "both", "fusion": "channels", "tta_views": 4, "train_views": 4},
    {"blocks": 3, "padding": "same", "pose": "principal_axes", "filters": 8, "filter_growth": 1.5, "filters_2": 40},
]


@pytest.mark.parametrize("p", CASES, ids=range(len(CASES)))
def test_forward_macs_equal_the_built_models_layers(p):
    assert params.forward_macs(p) == built_macs(p)


def test_forward_macs_over_the_wide_space():
    """Random feasible draws of spaces/wide.py: every knob the builder reads, in any combination, counted alike."""
    space = bridge.load_space("spaces/wide.py")
    study = bridge.throwaway_study(seed=3)
    checked = 0
    while checked < 12:
        p = bridge.sample(space, study.ask())
        if params.check(p) is None:
            assert params.forward_macs(p) == built_macs(p), p
            checked += 1


def test_forward_macs_refuses_what_check_refuses():
    with pytest.raises(params.Infeasible):
        params.forward_macs({"blocks": 2, "padding": "valid", "kernel_size": 5, "residual": True})
