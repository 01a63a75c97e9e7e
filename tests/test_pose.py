"""search.pose: the principal-axes frame, its candidate views and test-time averaging, on real regenerated digits."""

import keras
import numpy as np
import pytest

from search import data
from search import model as m
from search import params as P
from search.augment import cube_rotations
from search.errors import UserError
from search.pose import MeanOverViews, PoseViews, view_rotations
from test_augment import rotate_np


@pytest.fixture(scope="module")
def digit_pairs(small_data_file) -> np.ndarray:
    """The small file's 200 test volumes (rows 2i, 2i+1: a digit and its randomly rotated copy), occupancy in [0, 1]."""
    return data.load(small_data_file, "test").x.astype(np.float32) / 255


def canonical(volumes: np.ndarray, views: int = 1) -> np.ndarray:
    """(views, B, n, n, n): each volume in the first `views` candidate frames."""
    out = PoseViews("principal_axes", tta_views=views)(volumes, training=False)[0]
    return keras.ops.convert_to_numpy(out).reshape(views, len(volumes), *volumes.shape[1:])


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def turn(volumes: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Volumes turned by an integer cube rotation about their centre, by test_augment's numpy reference."""
    return np.stack([rotate_np(volume, rotation) for volume in volumes])


@pytest.mark.backend_free
def test_views_are_the_cube_rotations_ambiguities_first():
    views = view_rotations()
    assert len(views) == 24 and {v.tobytes() for v in views} == {r.tobytes() for r in cube_rotations()}
    np.testing.assert_array_equal(views[0], np.eye(3))
    assert all(np.count_nonzero(v) == 3 and np.all(v == np.diag(np.diag(v))) for v in views[:4])  # axis signs
    assert all(abs(v[2, 2]) == 1 for v in views[:8]) and not any(abs(v[2, 2]) == 1 for v in views[8:])  # 0 <-> 1


def test_a_quarter_turned_volume_has_the_same_canonical_volume_up_to_the_candidate_frames(digit_pairs):
    """The frame follows the volume: turned by any cube rotation, a digit comes back to its canonical volume, or to
    one of the candidate views of it where its frame is ambiguous (near-equal variances, a third moment near 0)."""
    volumes = digit_pairs[::2][:40]  # upright digits
    reference = canonical(volumes, views=24)
    rng = np.random.default_rng(0)
    errors = []
    for rotation in cube_rotations()[rng.choice(24, 4, replace=False)]:
        turned = canonical(turn(volumes, rotation))[0]
        errors.append(np.abs(reference - turned).max(axis=(2, 3, 4)))  # (24 views, B)
    errors = np.stack(errors)  # (turns, views, B)
    exact = errors[:, 0] < 1e-3  # the very same canonical volume
    assert exact.mean() > 0.9, exact.mean()
    assert (errors.min(axis=1) < 1e-3).all()  # and every other one is one of its views


def test_a_digit_and_its_randomly_rotated_copy_correlate_in_the_canonical_frame(digit_pairs):
    raw = correlation(digit_pairs[0::2], digit_pairs[1::2])
    views = canonical(digit_pairs, views=4)
    frame = correlation(views[0, 0::2], views[0, 1::2])
    best_view = np.max([correlation(views[0, 0::2], views[k, 1::2]) for k in range(4)], axis=0)
    assert np.median(raw) < 0.3 and np.median(frame) > 0.8, (np.median(raw), np.median(frame))
    assert (best_view > 0.5).mean() > 0.95


def test_each_view_is_its_cube_rotation_of_the_canonical_volume(digit_pairs):
    """One resampling at (F R)^T p is the canonical volume turned by the view F, exactly (grid to grid)."""
    views = canonical(digit_pairs[:20], views=8)
    for j, rotation in enumerate(view_rotations()[:8]):
        np.testing.assert_allclose(views[j], turn(views[0], rotation), atol=1e-4)


def test_an_empty_volume_stays_finite():
    out = PoseViews("both", tta_views=4)(np.zeros((2, 16, 16, 16), np.float32), training=False)
    assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in out)


def test_test_time_averaging_is_the_mean_of_the_views_predictions():
    """A model with tta_views=k predicts the mean of the single-view model's softmax over the k turned inputs."""
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, (6, 16, 16, 16), dtype=np.uint8)
    params = {"blocks": 1, "padding": "same", "filters": 4, "dense_units": 8, "input_mode": "occupancy", "seed": 0}
    single = m.build_model(params)
    averaged = m.build_model({**params, "tta_views": 4})
    averaged.set_weights(single.get_weights())  # the views add no weights
    views = [turn(levels, r) for r in view_rotations()[:4]]
    expected = np.mean([single.predict(v, verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(averaged.predict(levels, verbose=0), expected, rtol=1e-5, atol=1e-6)
    train_out = averaged(levels, training=True)
    assert tuple(train_out.shape) == (6, 10)  # training sees one view per sample, no averaging


def test_pose_layers_are_added_only_when_asked():
    assert "PoseViews" not in [type(layer).__name__ for layer in m.build_model({}).layers]
    model = m.build_model({"pose": "both", "input_mode": "rgb", "blocks": 1, "filters": 4})
    assert model.get_layer("block0_conv").kernel.shape == (3, 3, 3, 6, 4)  # 3 colours of each of the 2 inputs
    assert "MeanOverViews" not in [type(layer).__name__ for layer in model.layers]
    model = m.build_model({"pose": "principal_axes", "tta_views": 2, "input_mode": "occupancy", "blocks": 1, "filters": 4})
    assert model.get_layer("block0_conv").kernel.shape == (3, 3, 3, 1, 4)
    assert model.get_layer("mean_over_views").views == 2
    streams = m.build_model({"pose": "both", "fusion": "streams", "input_mode": "occupancy", "blocks": 2, "filters": 4,
                             "filter_growth": 1.0, "dense_units": 8})
    assert [streams.get_layer(f"s{i}_block0_conv").kernel.shape for i in (0, 1)] == [(3, 3, 3, 1, 4)] * 2
    assert streams.get_layer("dense").kernel.shape[0] == 2 * m.build_model(  # the two trunks' features, joined
        {"input_mode": "occupancy", "blocks": 2, "filters": 4, "filter_growth": 1.0, "dense_units": 8}
    ).get_layer("dense").kernel.shape[0]
    narrow = m.build_model({"pose": "both", "fusion": "streams", "raw_stream_width": 0.5, "input_mode": "occupancy",
                            "blocks": 2, "filters": 16, "filter_growth": 1.0, "head": "global_avg", "dense_units": 8})
    # The as-is trunk (s0) at half width in every block, the principal-axes trunk (s1) at full width.
    assert [narrow.get_layer(f"s0_block{b}_conv").filters for b in (0, 1)] == [8, 8]
    assert [narrow.get_layer(f"s1_block{b}_conv").filters for b in (0, 1)] == [16, 16]
    assert narrow.get_layer("dense").kernel.shape[0] == 8 + 16


def test_a_pose_model_trains_saves_and_reloads_with_the_same_predictions(tmp_path, digit_pairs):
    params = {"pose": "both", "train_views": 4, "tta_views": 4, "blocks": 2, "padding": "same", "filters": 4,
              "batchnorm": True, "dense_units": 8, "augment": 0.5, "schedule": "cosine", "epochs": 1, "seed": 2}
    levels = np.rint(digit_pairs * 255).astype(np.uint8)[:64]
    model = m.build_model(params, steps_per_epoch=4)
    history = model.fit(levels, np.arange(64) % 10, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # takes raw volumes: the frames and views are inside
    assert reloaded.get_layer("pose").get_config()["pose"] == "both"
    np.testing.assert_allclose(reloaded.predict(levels, verbose=0), model.predict(levels, verbose=0), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.backend_free
@pytest.mark.parametrize("params, key", [({"pose": "canonical"}, "pose"), ({"tta_views": 0}, "tta_views"),
                                         ({"train_views": 25}, "train_views")])
def test_bad_pose_params_are_refused_with_the_key_named(params, key):
    with pytest.raises(UserError, match=key):
        P.validate(params)
    assert P.validate({})["pose"] == "as_is" and P.validate({})["tta_views"] == 1  # the presets do not move


def test_mean_over_views_averages_at_inference_and_passes_training_through():
    probabilities = np.random.default_rng(0).random((8, 10)).astype(np.float32)
    layer = MeanOverViews(4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(probabilities, training=True)), probabilities)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(probabilities)), probabilities.reshape(4, 2, 10).mean(0),
                               rtol=1e-6)
