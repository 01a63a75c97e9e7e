"""Augment3D: identity when off, exact quarter-turns, no mirroring, labels kept, seeded (on every Keras backend)."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from search import augment
from search.augment import Augment3D, cube_rotations, resample

N = 16


def T(array) -> object:
    """A float32 tensor of the running backend."""
    return ops.convert_to_tensor(np.asarray(array, np.float32))


def A(tensor) -> np.ndarray:
    return ops.convert_to_numpy(tensor)


def rotate_np(vol: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Reference quarter-turn of one (n, n, n) volume: out[p] = vol[R^T p] in centred coordinates."""
    n = vol.shape[0]
    c = (n - 1) / 2
    p = np.indices(vol.shape).reshape(3, -1) - c
    src = np.rint(rot.T @ p + c).astype(int)
    return vol[tuple(src)].reshape(vol.shape)


def chiral_tripod(n: int = N) -> np.ndarray:
    """Orthogonal arms of lengths 6, 4, 2 from one voxel: no proper rotation maps it to its mirror."""
    v = np.zeros((n, n, n), np.float32)
    o = 5
    v[o : o + 7, o, o] = 1
    v[o, o : o + 5, o] = 1
    v[o, o, o : o + 3] = 1
    return v


def boxes(sizes, n: int = N) -> np.ndarray:
    """Centred solid cubes of the given side lengths, one per sample."""
    out = np.zeros((len(sizes), n, n, n), np.float32)
    for i, a in enumerate(sizes):
        lo = (n - a) // 2
        out[i, lo : lo + a, lo : lo + a, lo : lo + a] = 1
    return out


@pytest.fixture
def rotation_only(monkeypatch):
    """Switch off shift and noise so the layer only rotates."""
    monkeypatch.setattr(augment, "MAX_SHIFT", 0.0)
    monkeypatch.setattr(augment, "NOISE_STD", 0.0)


def test_identity_when_off():
    x = keras.random.uniform((4, N, N, N), seed=1)
    assert Augment3D(0.0)(x, training=True) is x  # no op at all, not just equal values
    for training in (False, None):
        np.testing.assert_array_equal(A(Augment3D(1.0, seed=0)(x, training=training)), A(x))


@pytest.mark.parametrize("n", [16, 10])
def test_shape_dtype_range(n):
    x = np.random.default_rng(0).random((6, n, n, n), dtype=np.float32)
    y = Augment3D(1.0, seed=0)(x, training=True)
    assert tuple(y.shape) == x.shape and keras.backend.standardize_dtype(y.dtype) == "float32"
    assert 0.0 <= float(ops.min(y)) and float(ops.max(y)) <= 1.0


def test_strength_is_validated():
    with pytest.raises(ValueError, match="strength"):
        Augment3D(1.5)


def test_cube_rotations_are_the_proper_group():
    rots = cube_rotations()
    assert rots.shape == (24, 3, 3) and np.issubdtype(rots.dtype, np.integer)
    assert len({r.tobytes() for r in rots}) == 24
    assert np.array_equal(rots[0], np.eye(3))
    assert all(round(np.linalg.det(r)) == 1 for r in rots)
    assert all(np.array_equal(r @ r.T, np.eye(3)) for r in rots)
    keys = {r.tobytes() for r in rots}
    assert all((a @ b).tobytes() in keys for a, b in itertools.product(rots, rots))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_quarter_turn_is_exact_rot90(axis):
    x = np.random.default_rng(axis).random((3, N, N, N), dtype=np.float32)
    j, k = [i for i in range(3) if i != axis]
    # +90 degrees about `axis` via float32 trig: cos is -4e-8, not 0, so exactness needs the snapping.
    theta = np.float32(np.pi / 2)
    rot = np.eye(3, dtype=np.float32)
    rot[j, j] = rot[k, k] = np.cos(theta)
    rot[k, j], rot[j, k] = np.sin(theta), -np.sin(theta)
    out = A(resample(T(x), T(np.repeat(rot[None], 3, 0)), T(np.zeros((3, 3)))))
    np.testing.assert_array_equal(out, np.rot90(x, 1, axes=(j + 1, k + 1)))


def test_all_quarter_turns_and_integer_shifts_are_exact_permutations():
    x = np.random.default_rng(0).random((24, N, N, N), dtype=np.float32)
    rots = cube_rotations()
    out = A(resample(T(x), T(rots), T(np.zeros((24, 3)))))
    for i in range(24):
        np.testing.assert_array_equal(out[i], rotate_np(x[i], rots[i]))
    # An integer shift moves content by t and fills with zeros.
    shifted = A(resample(T(x[:1]), T(np.eye(3)[None]), T([[1.0, -2.0, 0.0]])))[0]
    expected = np.zeros_like(x[0])
    expected[1:, :-2, :] = x[0, :-1, 2:, :]
    np.testing.assert_array_equal(shifted, expected)


def test_half_voxel_shift_interpolates_linearly():
    x = np.random.default_rng(0).random((1, N, N, N), dtype=np.float32)
    out = A(resample(T(x), T(np.eye(3)[None]), T([[0.0, 0.0, 0.5]])))[0]
    padded = np.concatenate([np.zeros((N, N, 1), np.float32), x[0]], axis=2)  # zero left of the cube
    np.testing.assert_allclose(out, (padded[..., :-1] + padded[..., 1:]) / 2, atol=1e-6)


def test_labels_stay_with_their_samples_in_fit(rotation_only):
    # Mass is rotation-invariant and differs by >= 3x between sizes, so any mix-up of rows
    # across samples gives a large relative error; a small nonzero one proves rotation ran.
    sizes = [2, 4, 6, 6, 4, 2, 4, 6, 2, 6, 2, 4]
    x = boxes(sizes)
    y = np.array(sizes, np.float32) ** 3 / 100
    inputs = keras.Input((N, N, N))
    mass = keras.layers.Lambda(lambda v: ops.sum(v, axis=(1, 2, 3))[:, None] / 100)
    head = keras.layers.Dense(1, kernel_initializer="ones")  # fit wants a weight; lr 0 keeps it at 1
    model = keras.Model(inputs, head(mass(Augment3D(1.0, seed=3)(inputs))))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mape")
    losses = model.fit(x, y, batch_size=4, epochs=3, shuffle=True, verbose=0).history["loss"]
    assert all(0.0 < loss < 10.0 for loss in losses), losses  # mean percent error, ~1 when correct
    assert model.evaluate(x, y, verbose=0) < 1e-3  # inference sees the raw volumes


def test_strength_one_changes_most_samples_and_is_seeded():
    x = T(np.maximum(boxes([4, 6, 8, 10] * 8), chiral_tripod()))
    a = A(Augment3D(1.0, seed=11)(x, training=True))
    changed = np.mean(np.abs(a - A(x)).max(axis=(1, 2, 3)) > 0.5)
    assert changed >= 0.8, changed
    np.testing.assert_array_equal(a, A(Augment3D(1.0, seed=11)(x, training=True)))
    assert not np.array_equal(a, A(Augment3D(1.0, seed=12)(x, training=True)))


def test_random_rotations_are_proper():
    rots, _ = augment._random_transforms(500, 1.0, keras.random.SeedGenerator(0))
    rots = A(rots)
    np.testing.assert_allclose(np.linalg.det(rots), 1.0, atol=1e-5)
    np.testing.assert_allclose(rots @ rots.transpose(0, 2, 1), np.tile(np.eye(3), (500, 1, 1)), atol=1e-5)


def test_never_mirrors(rotation_only, monkeypatch):
    monkeypatch.setattr(augment, "ANGLE_STD_DEG", 0.0)  # quarter-turns only: outputs are exact voxel copies
    obj = chiral_tripod()
    proper = {rotate_np(obj, r).tobytes() for r in cube_rotations()}
    mirrored = {rotate_np(obj[::-1], r).tobytes() for r in cube_rotations()}
    assert len(proper) == 24 and not proper & mirrored  # the test object really is chiral
    out = A(Augment3D(1.0, seed=5)(T(np.repeat(obj[None], 96, 0)), training=True))
    seen = {o.tobytes() for o in out}
    assert seen <= proper and not seen & mirrored
    assert len(seen) >= 15  # many different quarter-turns were drawn


def test_config_round_trip():
    layer = Augment3D(0.5, seed=9, name="aug")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, Augment3D)
    assert (clone.strength, clone.seed, clone.name) == (0.5, 9, "aug")
