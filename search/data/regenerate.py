"""Regenerate Kaggle's 3D MNIST (``full_dataset_vectors.h5``) offline from the original 2D digits.

Follows the dataset author's procedure step by step, as written down in
``shared/design/3d-mnist.md`` (sections cited as §n below): each 2D digit becomes a surface
point cloud of extruded pixels (§1), is normalised and stood upright (§2) and voxelised into
16^3 normalised counts (§3); a randomly rotated, noisy copy follows each original (§4, §5).
All arithmetic is float64 numpy, in the note's order, so the originals match the published
file bit for bit wherever the note could check it (§7). The augmented copies are reproducible
from ``seed`` (the author set none, so they match the real file in distribution only).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

BINS = 16
MIN_Z, MAX_Z = -3.0, 3.0
VOXEL_MARGIN = 0.001  # the release voxelgrid.py's margin (later versions differ: §6)
NOISE_STRENGTH = 0.25
ANGLE_STD_DEG = (90.0, 90.0, 180.0)  # std of the x, y, z rotation angles (§4)


def _face_templates() -> list[np.ndarray]:
    """The six faces of a pixel's extruded box in local coordinates, in the author's point order (§1.3)."""
    a = np.linspace(-0.5, 0.5, 5)
    z = np.linspace(MIN_Z, MAX_Z, 30)

    def grid(first: np.ndarray, second: np.ndarray, make) -> np.ndarray:
        return np.array([make(u, v) for u in first for v in second], dtype=np.float64)

    return [
        grid(a, a, lambda j, i: (j, i, MAX_Z)),  # F0 front
        grid(a, a, lambda j, i: (j, i, MIN_Z)),  # F1 back
        grid(z, a, lambda k, i: (-0.5, i, k)),  # F2 toward row r-1
        grid(z, a, lambda k, i: (0.5, i, k)),  # F3 toward row r+1
        grid(z, a, lambda k, j: (j, -0.5, k)),  # F4 toward column c-1
        grid(z, a, lambda k, j: (j, 0.5, k)),  # F5 toward column c+1
    ]


_FACES = _face_templates()
_ALL_FACES = np.concatenate(_FACES)
_FACE_START = np.cumsum([0] + [len(f) for f in _FACES])[:-1]
_FACE_SIZE = np.array([len(f) for f in _FACES])


def point_cloud(image: np.ndarray) -> np.ndarray:
    """(28, 28) digit -> (N, 3) float64 surface points, normalised and upright (§1-§2)."""
    padded = np.zeros((30, 30), dtype=image.dtype)
    padded[1:29, 1:29] = image
    occupied = padded != 0
    rows, cols = np.nonzero(occupied)  # row-major visiting order
    # Which faces each pixel contributes: front and back always, a side where the neighbour is empty.
    faces = np.ones((len(rows), 6), dtype=bool)
    faces[:, 2] = ~occupied[rows - 1, cols]
    faces[:, 3] = ~occupied[rows + 1, cols]
    faces[:, 4] = ~occupied[rows, cols - 1]
    faces[:, 5] = ~occupied[rows, cols + 1]
    pixel, face = np.nonzero(faces)  # pixel-major, faces in order F0..F5
    sizes = _FACE_SIZE[face]
    # Gather each (pixel, face) block's template points in order, without a Python loop.
    block_start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    template_index = np.repeat(_FACE_START[face], sizes) + np.arange(sizes.sum()) - block_start
    # Column-major, so the per-axis reductions below run over contiguous memory (several times faster).
    points = np.asfortranarray(_ALL_FACES[template_index])
    points[:, 0] += np.repeat(rows[pixel], sizes)
    points[:, 1] += np.repeat(cols[pixel], sizes)

    # §2.1: the one scalar min of the widest axis is subtracted from all axes (author's quirk).
    lo, hi = points.min(axis=0), points.max(axis=0)
    extent = hi - lo
    widest = int(np.argmax(extent))
    points = (points - lo[widest]) / extent[widest]
    points = points - points.mean(axis=0)
    # §2.3: rotate 90 degrees about y with homogeneous coordinates, as the author's code does.
    c, s = np.cos(np.deg2rad(90.0)), np.sin(np.deg2rad(90.0))
    ry4 = np.array([[c, 0, -s, 0], [0, 1, 0, 0], [s, 0, c, 0], [0, 0, 0, 1]], dtype=np.float64)
    homogeneous = np.asfortranarray(np.hstack([points, np.ones((len(points), 1))]))
    return _times(homogeneous, ry4)[:, :3]


def _times(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Row vectors times a matrix (points @ matrix), keeping the column-major layout."""
    return (matrix.T @ points.T).T


def voxel_counts(points: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(N, 3) points -> (bins**3,) int64 point counts over the points' bounding cube, [z][y][x] flat (§3)."""
    lo = points.min(axis=0) - VOXEL_MARGIN
    hi = points.max(axis=0) + VOXEL_MARGIN
    gap = (hi - lo).max() - (hi - lo)
    lo, hi = lo - gap / 2, hi + gap / 2
    flat = np.zeros(len(points), dtype=np.int64)
    for axis, weight in ((2, bins * bins), (1, bins), (0, 1)):  # x varies fastest, z slowest
        flat += weight * bin_index(np.linspace(lo[axis], hi[axis], bins + 1), points[:, axis])
    return np.bincount(flat, minlength=bins**3)


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """searchsorted(edges, values, side='left') - 1 (§3.4) for evenly spaced edges and values inside them: a guess
    by arithmetic, corrected against the edges themselves, so bin b still holds edges[b] < p <= edges[b + 1]
    exactly. 1.7 times faster than a binary search per point (benchmarks/bench_data.py)."""
    bins = len(edges) - 1
    guess = np.clip(((values - edges[0]) * (bins / (edges[-1] - edges[0]))).astype(np.int64), 0, bins - 1)
    guess -= values <= edges[guess]  # at or below the guessed bin's lower edge: the bin below
    guess += values > edges[guess + 1]  # above its upper edge: the bin above
    return guess


def voxelize(points: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(N, 3) points -> (bins**3,) float64 counts / max count, the dataset's feature vector (§3.7)."""
    counts = voxel_counts(points, bins).astype(np.float64)
    return counts / counts.max()


def _rotation_matrices(theta_deg: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """Row-vector rotations Rx, Ry, Rz (p' = p @ M) by the given degrees (§4.2)."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(np.deg2rad(theta_deg)), np.sin(np.deg2rad(theta_deg))
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rx, ry, rz


def augmented_cloud(points: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """The author's augmented copy: random rotation about z, y, x, then uniform noise per axis (§4)."""
    theta = (rng.normal(0, ANGLE_STD_DEG[0]), rng.normal(0, ANGLE_STD_DEG[1]), rng.normal(0, ANGLE_STD_DEG[2]))
    rx, ry, rz = _rotation_matrices(theta)
    rotated = _times(_times(_times(points, rz), ry), rx)
    sigma = NOISE_STRENGTH * rotated.std(axis=0)
    for axis in range(3):
        rotated[:, axis] += rng.uniform(-sigma[axis], sigma[axis], len(rotated))
    return rotated


def regenerate_split(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Originals and augmented copies interleaved [o0, a0, o1, a1, ...] as the release loop appends them (§5, §6)."""
    x = np.empty((2 * len(images), BINS**3), dtype=np.float64)
    for i, image in enumerate(images):
        points = point_cloud(image)
        x[2 * i] = voxelize(points)
        # One stream per sample, so any sample can be regenerated alone and the run split across processes.
        x[2 * i + 1] = voxelize(augmented_cloud(points, np.random.RandomState([seed, i])))
    return x, np.repeat(labels.astype(np.int64), 2)


def source_digits() -> dict[str, np.ndarray]:
    """The 6000 shipped MNIST digits (uint8, value*256 of deeplearning.net's mnist.pkl.gz); see DIGITS.md."""
    with resources.files(__package__).joinpath("mnist_digits.npz").open("rb") as f, np.load(f) as npz:
        return {k: npz[k] for k in npz.files}


def regenerate(seed: int = 0) -> dict[str, np.ndarray]:
    """The whole dataset in Kaggle's layout: X_train (10000, 4096), y_train, X_test (2000, 4096), y_test."""
    digits = source_digits()
    x_train, y_train = regenerate_split(digits["train_images"], digits["train_labels"], seed)
    # A different stream family for the test copies, so train and test noise never coincide.
    x_test, y_test = regenerate_split(digits["test_images"], digits["test_labels"], seed + 1_000_003)
    return {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test}
