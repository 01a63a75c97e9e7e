"""search.model: schema, feasibility check, the seeds' presets, the Colorize input layer, save/load, training."""

import itertools

import keras
import numpy as np
import pytest

from search import model as m
from search import params as P
from search.data.colormap import ORANGES_LUT
from search.errors import UserError

RNG = np.random.default_rng(0)


def random_levels(n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, 16, 16, 16), dtype=np.uint8)


def layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


# --- presets -------------------------------------------------------------------------------------


@pytest.mark.backend_free
def test_presets_are_complete_and_defaults_are_machinecurve():
    for preset in P.PRESETS.values():
        assert P.validate(preset) == preset
        assert P.check(preset) is None
    assert P.DEFAULTS == P.PRESETS["machinecurve"]


def test_machinecurve_matches_the_seed_model():
    model = m.build_model(P.PRESETS["machinecurve"])
    conv1 = 3 * 3 * 3 * 3 * 32 + 32  # on (16,16,16,3) -> (14,14,14,32) -> pool (7,7,7,32)
    conv2 = 3 * 3 * 3 * 32 * 64 + 64  # -> (5,5,5,64) -> pool (2,2,2,64) -> 512 features
    dense = 512 * 256 + 256
    out = 256 * 10 + 10
    assert model.count_params() == conv1 + conv2 + dense + out == 191_882
    assert "BatchNormalization" not in layer_types(model) and "Dropout" not in layer_types(model)


def test_notebook_matches_the_seed_model():
    model = m.build_model(P.PRESETS["notebook"])
    assert model.count_params() == 2624 + 55360 + 221312 + 884992 + 32896 + 1290 == 1_198_474
    assert model.get_layer("block3_pool").output.shape == (None, 1, 1, 1, 256)
    assert layer_types(model)[-3:] == ["Dense", "Dropout", "Dense"]


def test_medium_has_batchnorm_then_dropout_after_each_pool():
    model = m.build_model(P.PRESETS["medium"])
    types = layer_types(model)
    assert types.count("BatchNormalization") == 2 and types.count("Dropout") == 2
    pools = [i for i, t in enumerate(types) if t == "MaxPooling3D"]
    assert [types[i + 1 : i + 3] for i in pools] == [["BatchNormalization", "Dropout"]] * 2
    assert model.get_layer("block0_dropout").rate == 0.5
    assert model.count_params() == 191_882 + 4 * (32 + 64)  # gamma, beta, moving mean and variance


def test_filters_growth_and_overrides():
    model = m.build_model({"blocks": 3, "padding": "same", "filters": 8, "filter_growth": 1.5, "filters_2": 40})
    assert [model.get_layer(f"block{i}_conv").filters for i in range(3)] == [8, 12, 40]
    def grown(filters: int, growth: float) -> list[int]:  # the rule the builder just used, without building (JAX
        return P.block_filters(P.validate({"blocks": 4, "filters": filters, "filter_growth": growth}))  # compiles each init)
    assert grown(32, 2.0) == [32, 64, 128, 256] and grown(64, 2.0) == [64, 128, 256, 256]  # growth stops at 256
    assert grown(300, 1.5) == [300, 300, 300, 300]  # or at block 0's count, if that is wider


def test_augment_layer_only_when_asked():
    assert "Augment3D" not in layer_types(m.build_model({}))
    model = m.build_model({"augment": 0.5, "seed": 3})
    assert model.get_layer("augment").strength == 0.5 and model.get_layer("augment").seed == 3


# --- validate --------------------------------------------------------------------------------------


@pytest.mark.backend_free
@pytest.mark.parametrize(
    "params, key",
    [
        ({"colour": "red"}, "colour"),  # unknown key
        ({"blocks": 7}, "blocks"),  # out of range
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"dropout": -0.1}, "dropout"),
        ({"blocks": "2"}, "blocks"),  # wrong type
        ({"blocks": 2.0}, "blocks"),
        ({"filters": True}, "filters"),
        ({"batchnorm": 1}, "batchnorm"),
        ({"kernel_size": 4}, "kernel_size"),  # not a choice
        ({"kernel_size": "3"}, "kernel_size"),
        ({"padding": "full"}, "padding"),
        ({"blocks": 2, "filters_3": 64}, "filters_3"),  # override beyond the last block
    ],
)
def test_validate_rejects_with_the_key_named(params, key):
    with pytest.raises(UserError, match=key) as info:
        P.validate(params)
    assert "\n" not in str(info.value)


@pytest.mark.backend_free
def test_validate_fills_defaults_and_normalizes():
    p = P.validate({"blocks": np.int64(3), "dropout": 0, "padding": np.str_("same"), "seed": None, "filters_2": 16})
    assert p == {**P.DEFAULTS, "blocks": 3, "dropout": 0.0, "padding": "same", "filters_2": 16}
    assert type(p["blocks"]) is int and type(p["dropout"]) is float and "seed" not in p
    with pytest.raises(UserError, match="mapping"):
        P.validate([("blocks", 2)])


# --- check -----------------------------------------------------------------------------------------


@pytest.mark.backend_free
def test_check_gives_a_reason_for_an_exhausted_volume():
    reason = P.check({"blocks": 4, "padding": "valid"})
    assert isinstance(reason, str)
    assert "block 3" in reason and "16 -> 7 -> 2 -> 0" in reason and "valid" in reason
    with pytest.raises(UserError, match="block 3"):
        m.build_model({"blocks": 4})


def test_check_agrees_with_the_builder():
    """Over a grid of shape-relevant keys, check() passes exactly the configs Keras can build non-empty."""
    verdicts = []
    for blocks, padding, kernel, residual in itertools.product(range(1, 7), ("valid", "same"), (3, 5), (False, True)):
        p = P.validate(
            {"blocks": blocks, "padding": padding, "kernel_size": kernel, "residual": residual,
             "filters": 4, "filter_growth": 1.0, "dense_units": 0, "input_mode": "occupancy"}
        )
        try:
            net = m._network(p)  # the unchecked builder
            builds = all(0 not in layer.output.shape for layer in net.layers)
        except ValueError:
            builds = False
        verdicts.append(builds)
        assert builds == (P.check(p) is None), p
    assert any(verdicts) and not all(verdicts)


# --- Colorize ----------------------------------------------------------------------------------------


def test_colorize_rgb_is_exactly_the_lut():
    levels = random_levels(3)
    levels[0] = np.arange(256, dtype=np.uint8).repeat(16).reshape(16, 16, 16)  # every level at least once
    expected = ORANGES_LUT[levels]
    direct = keras.ops.convert_to_numpy(m.Colorize("rgb")(levels.astype(np.float32) / 255))
    np.testing.assert_array_equal(direct, expected)
    # and through the model's own uint8 -> occupancy -> colorize front end
    model = m.build_model(P.PRESETS["machinecurve"])
    front = keras.Model(model.input, model.get_layer("colorize").output)
    np.testing.assert_array_equal(front.predict(levels, verbose=0), expected)


def test_colorize_occupancy_is_one_raw_channel():
    x = RNG.random((2, 16, 16, 16), dtype=np.float32)
    out = keras.ops.convert_to_numpy(m.Colorize("occupancy")(x))
    assert out.shape == (2, 16, 16, 16, 1)
    np.testing.assert_array_equal(out[..., 0], x)
    model = m.build_model({"input_mode": "occupancy"})
    assert model.get_layer("block0_conv").kernel.shape == (3, 3, 3, 1, 32)
    assert m.Colorize.from_config(m.Colorize("occupancy").get_config()).mode == "occupancy"
    with pytest.raises(ValueError):
        m.Colorize("gray")


# --- schedule, save/load, training -------------------------------------------------------------------


def test_cosine_schedule_needs_steps_per_epoch():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        m.build_model({"schedule": "cosine"})
    model = m.build_model({"schedule": "cosine", "epochs": 3, "learning_rate": 0.01}, steps_per_epoch=5)
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 15 and schedule["config"]["initial_learning_rate"] == 0.01



def test_cosine_decays_over_schedule_epochs_whatever_the_epochs_trained():
    # A search trial (or its final retrain) that trains 3 epochs of a 10-epoch horizon keeps the horizon.
    model = m.build_model({"schedule": "cosine", "epochs": 3, "schedule_epochs": 10, "learning_rate": 0.01},
                          steps_per_epoch=5)
    assert model.optimizer.get_config()["learning_rate"]["config"]["decay_steps"] == 50
    rate = keras.optimizers.schedules.CosineDecay(0.01, 50)
    assert float(rate(15)) > 0.0075  # after 3 epochs still near the peak, not at 0 as a 3-epoch horizon gives


def test_steps_per_execution_and_jit_reach_the_compiled_model():
    model = m.build_model({"blocks": 1, "filters": 4, "dense_units": 8}, steps_per_execution=8)
    assert model.steps_per_execution == 8
    if keras.backend.backend() == "jax":
        assert model.jit_compile  # "auto" compiles every step under JAX


def test_trains_saves_and_reloads(tmp_path):
    """A small model with every optional feature trains, and the reloaded .keras file predicts the same."""
    params = {"blocks": 2, "padding": "same", "filters": 4, "residual": True, "batchnorm": True, "dropout": 0.2,
              "head": "global_avg", "dense_units": 8, "head_dropout": 0.1, "schedule": "cosine", "epochs": 1,
              "augment": 0.5, "seed": 1}
    x, y = random_levels(32), RNG.integers(0, 10, 32)
    model = m.build_model(params, steps_per_epoch=2)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert layer_types(reloaded) == layer_types(model)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_mixed_bfloat16_computes_in_bfloat16_but_decodes_and_scores_in_float32():
    """Under the mixed policy the convs run in bfloat16; the input (exact levels, exact rotations) and the softmax
    (so the loss and metrics) stay float32, and a few steps still train."""
    params = {"blocks": 1, "padding": "same", "filters": 4, "batchnorm": True, "dense_units": 8, "augment": 0.5, "seed": 0}
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = m.build_model(params)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("block0_conv").compute_dtype == "bfloat16"
    assert model.get_layer("block0_conv").variable_dtype == "float32"
    for name in ("occupancy", "augment", "colorize", "classes"):
        assert model.get_layer(name).compute_dtype == "float32", name
    x, y = random_levels(32), RNG.integers(0, 10, 32)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert keras.backend.standardize_dtype(model.predict(x[:2], verbose=0).dtype) == "float32"


def test_machinecurve_fits_one_epoch():
    x, y = random_levels(200), RNG.integers(0, 10, 200)
    preset = P.PRESETS["machinecurve"]
    history = m.build_model(preset).fit(x, y, batch_size=preset["batch_size"], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
