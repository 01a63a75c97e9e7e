"""Random 3D augmentation of voxel volumes as Keras ops (any backend), scaled by one knob `strength` in [0, 1].

Per sample, at strength s: a random proper rotation (a cube quarter-turn with probability s, composed
with small Euler-angle jitter), a random shift, both applied as one trilinear resampling, then
multiplicative voxel noise. Only active when training, so validation, test and predict see raw data.
"""

import itertools
import math

import keras
import numpy as np
from keras import ops

# Scales at strength 1 (module-level so tests can switch single components off).
ANGLE_STD_DEG = 30.0  # std of each Euler angle
MAX_SHIFT = 2.0  # voxels per axis, uniform in [-MAX_SHIFT, +MAX_SHIFT]
NOISE_STD = 0.1  # relative std of the multiplicative voxel noise


def cube_rotations() -> np.ndarray:
    """The 24 proper rotations of the cube: (24, 3, 3) int matrices, entries 0/+-1, det +1, identity first."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            m[range(3), perm] = signs
            if round(np.linalg.det(m)) == 1:  # det -1 would mirror, which changes digits
                mats.append(m)
    return np.stack(mats)


_CUBE_ROTATIONS = cube_rotations()


def _axis_rotations(angles, axis: int):
    """(B,) angles in radians -> (B, 3, 3) rotations about coordinate `axis`; exactly I at angle 0."""
    j, k = [i for i in range(3) if i != axis]
    plane = np.zeros((3, 3), np.float32)
    plane[j, j] = plane[k, k] = 1
    skew = np.zeros((3, 3), np.float32)
    skew[k, j], skew[j, k] = 1, -1
    cos_m1 = ops.reshape(ops.cos(angles) - 1, (-1, 1, 1))  # cos - 1 keeps the identity exact at angle 0
    return ops.eye(3, dtype="float32") + cos_m1 * plane + ops.reshape(ops.sin(angles), (-1, 1, 1)) * skew


def _random_transforms(batch, strength: float, seed: keras.random.SeedGenerator):
    """Per-sample rotations (B, 3, 3) and shifts (B, 3), float32, drawn at `strength` (batch may be symbolic)."""
    pick = keras.random.randint((batch,), 0, len(_CUBE_ROTATIONS), seed=seed)
    rotate = keras.random.uniform((batch,), seed=seed) < strength
    pick = ops.where(rotate, pick, ops.zeros_like(pick))  # index 0 is the identity
    quarter = ops.take(ops.convert_to_tensor(_CUBE_ROTATIONS.astype(np.float32)), pick, axis=0)
    angle_std = strength * math.radians(ANGLE_STD_DEG)
    angles = keras.random.normal((batch, 3), stddev=angle_std, seed=seed)
    rot = quarter
    for axis in range(3):
        rot = ops.matmul(rot, _axis_rotations(angles[:, axis], axis))
    max_shift = strength * MAX_SHIFT
    shifts = keras.random.uniform((batch, 3), -max_shift, max_shift, seed=seed)
    return rot, shifts


def resample(volumes, rotations, shifts):
    """Trilinear resampling of (B, n, n, n) volumes, zero outside the cube (also search.pose's, into a frame).

    Output voxel p (centred coordinates, axes [z][y][x]) takes the input at q = R^T p + c - t, i.e. the
    content is rotated by R about the centre c, then moved by t. Integer q gives exact voxel copies.
    """
    n = volumes.shape[1]
    batch = ops.shape(volumes)[0]  # a tensor under TensorFlow while tracing (unknown batch size)
    c = (n - 1) / 2
    coord = np.arange(n, dtype=np.float32) - c
    grid = np.stack(np.meshgrid(coord, coord, coord, indexing="ij")).reshape(3, -1)  # (3, n^3)
    # Snap R, not the n^3 coordinates: an integer R maps half-integer p to exact integer q, so
    # quarter-turns are exact permutations even with float error in R (float32 cos(pi/2) = -4e-8).
    r_round = ops.round(rotations)
    rotations = ops.where(ops.abs(rotations - r_round) < 1e-5, r_round, rotations)
    # Axis-major layout (3, B, n^3): per-axis slices below are contiguous, which is markedly faster.
    q = ops.matmul(ops.reshape(ops.transpose(rotations, (0, 2, 1)), (-1, 3)), grid)  # rows (b, i): (R^T p)_i
    q = ops.transpose(ops.reshape(q, (-1, 3, n**3)), (1, 0, 2)) + ops.expand_dims(ops.transpose(c - shifts), -1)
    q = ops.clip(q, -1.0, float(n))  # beyond [-1, n] everything is zero padding
    lo = ops.minimum(ops.floor(q), n - 1.0)
    frac = q - lo  # in [0, 1]; exactly 0 at integer coordinates

    # One gather of all 8 corners from the flat volume padded by one zero voxel per side.
    m = n + 2
    idx = ops.cast(lo, "int32") + 1  # padded index of the low corner, in [0, n]
    sample = ops.expand_dims(ops.arange(batch, dtype="int32"), -1) * m**3  # flat offset of each sample
    base = idx[0] * (m * m) + idx[1] * m + idx[2] + sample  # (B, n^3)
    offsets = np.array([dz * m * m + dy * m + dx for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)], np.int32)
    padded = ops.reshape(ops.pad(volumes, ((0, 0), (1, 1), (1, 1), (1, 1))), (-1,))
    v = ops.take(padded, ops.expand_dims(base, 0) + offsets[:, None, None], axis=0)  # (8, B, n^3), corners z, y, x

    # Trilinear as three lerps (z, then y, then x); v0 + 0 * (v1 - v0) keeps integer q exact.
    for axis in range(3):
        half = v.shape[0] // 2
        v = v[:half] + frac[axis] * (v[half:] - v[:half])
    return ops.reshape(v, (-1, *volumes.shape[1:]))


@keras.saving.register_keras_serializable(package="conv3d_search")
class Augment3D(keras.layers.Layer):
    """Random rotation, shift and voxel noise for (B, n, n, n) occupancy volumes, active only in training.

    strength in [0, 1] scales everything; 0 (or training=False) is an exact identity that adds no ops.
    """

    def __init__(self, strength: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"Augment3D strength must be in [0, 1], got {strength}")
        self.strength = float(strength)
        self.seed = seed
        self._seed_gen = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.strength == 0.0:
            return inputs
        s = self.strength
        x = ops.cast(inputs, "float32")  # resample in float32 even under a mixed-precision policy
        rotations, shifts = _random_transforms(ops.shape(x)[0], s, self._seed_gen)
        x = resample(x, rotations, shifts)
        if NOISE_STD * s > 0:
            x = x * (1 + keras.random.normal(ops.shape(x), stddev=NOISE_STD * s, seed=self._seed_gen))
        return ops.cast(ops.clip(x, 0.0, 1.0), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}
