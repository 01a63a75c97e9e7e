"""Reading a digit in any pose: its principal-axes frame, and exact views of it, as Keras layers (any backend).

Half of 3D MNIST is digits turned by a random 3D rotation and voxelized into their own bounding cube. A
convolution cannot undo that; the principal axes of the occupancy can. ``PoseViews`` resamples each volume
into that frame (the centroid at the centre, the axes by decreasing variance, the largest spread scaled to
``TARGET_SPREAD`` voxels) in one trilinear resampling, the augmentation's. The frame is defined only up to
the signs of its axes (and their order, where two variances are close), so the layer can also show a
sample in other candidate frames: a random one in training, all of them at once in inference, where
``MeanOverViews`` averages the softmax over them. Both are inside the model, so a saved ``model.keras``
takes raw volumes and predicts as it was validated.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from search.augment import cube_rotations, resample

POSES = ("as_is", "principal_axes", "both")
TARGET_SPREAD = 3.5  # voxels: the largest axis's standard deviation in the frame (an upright digit's: about 4.9)
_EPS = 1e-6


def view_rotations() -> np.ndarray:
    """The 24 cube rotations ordered by how likely the principal-axes frame is to be off by them.

    First the identity and the three half-turns (the frame's axis signs: a third moment near zero), then
    the rest of the group that keeps axis 2 (the first two axes swapped: their variances close), then the
    others. ``train_views=k`` and ``tta_views=k`` use the first k. On a raw volume they are plain
    quarter-turns of the cube.
    """
    rotations = cube_rotations()

    def rank(m: np.ndarray) -> tuple:
        diagonal = bool(np.all(m == np.diag(np.diag(m))))
        keeps_axis_2 = abs(m[2, 2]) == 1
        return (not diagonal, not keeps_axis_2, tuple(-m.ravel()))

    return np.stack(sorted(rotations, key=rank))


_VIEWS = view_rotations().astype(np.float32)


def _monomials(n: int) -> np.ndarray:
    """(n^3, 39) every voxel's centred coordinates p [z, y, x], then p_i p_j, then p_i p_j p_k (row-major)."""
    coord = np.arange(n, dtype=np.float64) - (n - 1) / 2
    p = np.stack(np.meshgrid(coord, coord, coord, indexing="ij"), -1).reshape(-1, 3)
    second = np.einsum("ni,nj->nij", p, p).reshape(-1, 9)
    third = np.einsum("ni,nj,nk->nijk", p, p, p).reshape(-1, 27)
    return np.concatenate([p, second, third], axis=1).astype(np.float32)


def principal_frames(volumes):
    """(B, n, n, n) occupancy -> ((B, 3, 3) rotation R, (B, 3) shift t) for ``resample`` into the canonical frame.

    Output voxel p then reads the input at centroid + s * E p, where E's columns are the intensity-weighted
    principal axes by decreasing variance, each signed so its third moment is positive (the third is their
    cross product, so E is a proper rotation and never mirrors), and s = largest spread / TARGET_SPREAD.
    Every moment comes from one matmul of the volumes with the voxels' monomials (the costly part is
    the resampling, not this).
    """
    n = volumes.shape[1]
    w = ops.reshape(ops.cast(volumes, "float32"), (-1, n**3))
    moments = ops.matmul(w, _monomials(n)) / (ops.sum(w, axis=1, keepdims=True) + _EPS)  # raw, per unit mass
    m = moments[:, :3]  # the centroid, centred voxel coordinates
    second = ops.reshape(moments[:, 3:12], (-1, 3, 3))
    third = ops.reshape(moments[:, 12:], (-1, 3, 3, 3))
    covariance = second - ops.einsum("bi,bj->bij", m, m)
    variances, axes = ops.eigh(covariance)  # ascending
    variances, axes = ops.flip(variances, axis=-1), ops.flip(axes, axis=-1)  # columns by decreasing variance
    # third central moment along each axis e: E[(p.e)^3] - 3 (m.e) E[(p.e)^2] + 2 (m.e)^3
    along = ops.einsum("bi,bie->be", m, axes)
    raw3 = ops.einsum("bijk,bie,bje,bke->be", third, axes, axes, axes)
    raw2 = ops.einsum("bij,bie,bje->be", second, axes, axes)
    skew = raw3 - 3 * along * raw2 + 2 * along**3
    signs = ops.where(skew[:, :2] < 0, -1.0, 1.0)
    e0, e1 = axes[:, :, 0] * signs[:, :1], axes[:, :, 1] * signs[:, 1:]
    frame = ops.stack([e0, e1, ops.cross(e0, e1)], axis=-1)  # columns; det +1
    scale = ops.sqrt(ops.maximum(variances[:, 0], _EPS)) / TARGET_SPREAD
    rotation = ops.transpose(frame, (0, 2, 1)) * ops.reshape(scale, (-1, 1, 1))  # resample reads at R^T p
    return rotation, -m


def averaged_views(params: dict) -> dict:
    """What a model's every prediction averages over (test_metrics.json and the report say it)."""
    views = params.get("tta_views", 1)
    if views == 1:
        return {"views": 1, "over": "nothing: one prediction per volume"}
    turned = "the raw volume's cube rotations" if params.get("pose", "as_is") == "as_is" else \
        "the candidate frames of the principal-axes volume"
    return {"views": views, "over": f"softmax over the first {views} of search.pose.view_rotations(): {turned}"}


@keras.saving.register_keras_serializable(package="conv3d_search")
class PoseViews(keras.layers.Layer):
    """(B, n, n, n) occupancy -> the network's input volumes: a list of one or two (V*B, n, n, n) tensors.

    pose "as_is": the volume itself; "principal_axes": its canonical frame; "both": [as is, canonical], for
    two inputs (one canonical frame makes an upright 6 and 9 alike; the raw volume does not). The views
    (the first k of ``view_rotations``) turn the canonical volume, or the raw one for "as_is"; in "both"
    the raw input stays as it is. Inference shows every sample in all `tta_views` views, stacked
    view-major along the batch (V = tta_views); training shows each in one of the first `train_views`,
    at random (V = 1).
    """

    def __init__(self, pose: str = "as_is", train_views: int = 1, tta_views: int = 1, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if pose not in POSES:
            raise ValueError(f"PoseViews pose must be one of {POSES}, got {pose!r}")
        for name, value in (("train_views", train_views), ("tta_views", tta_views)):
            if not 1 <= value <= len(_VIEWS):
                raise ValueError(f"PoseViews {name} must be in [1, {len(_VIEWS)}], got {value}")
        self.pose, self.train_views, self.tta_views, self.seed = pose, int(train_views), int(tta_views), seed
        self._seed_gen = keras.random.SeedGenerator(seed)

    def call(self, occupancy, training=None):
        x = ops.cast(occupancy, "float32")
        batch = ops.shape(x)[0]
        if training:
            pick = keras.random.randint((batch,), 0, self.train_views, seed=self._seed_gen)
            views = ops.take(ops.convert_to_tensor(_VIEWS), pick, axis=0)  # (B, 3, 3)
            copies = 1
        else:
            copies = self.tta_views
            views = ops.repeat(ops.convert_to_tensor(_VIEWS[:copies]), batch, axis=0)  # (V*B, 3, 3), view-major
        tiled = ops.tile(x, (copies, 1, 1, 1)) if copies > 1 else x
        if self.pose == "as_is":
            if copies == 1 and not (training and self.train_views > 1):
                return [x]
            return [resample(tiled, views, ops.zeros((ops.shape(views)[0], 3)))]
        rotation, shift = principal_frames(x)
        if copies > 1:
            rotation, shift = ops.tile(rotation, (copies, 1, 1)), ops.tile(shift, (copies, 1))
        # a view F of the canonical volume reads it at F^T p: one resampling of the input at (F R)^T p
        canonical = resample(tiled, ops.matmul(views, rotation), shift)
        return [tiled, canonical] if self.pose == "both" else [canonical]

    def compute_output_shape(self, input_shape):
        return [(None, *input_shape[1:])] * (2 if self.pose == "both" else 1)

    def get_config(self):
        return {**super().get_config(), "pose": self.pose, "train_views": self.train_views,
                "tta_views": self.tta_views, "seed": self.seed}


@keras.saving.register_keras_serializable(package="conv3d_search")
class MeanOverViews(keras.layers.Layer):
    """(V*B, classes) probabilities, view-major -> (B, classes), their mean over the V views; training: as is."""

    def __init__(self, views: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.views = int(views)

    def call(self, probabilities, training=None):
        if training or self.views == 1:
            return probabilities
        return ops.mean(ops.reshape(probabilities, (self.views, -1, probabilities.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "views": self.views}
