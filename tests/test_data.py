"""Data stage: the regeneration against the design note's check values, the loader's errors, colorize, splits."""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from matplotlib import cm

from search import data
from search.data import cache, h5file, regenerate
from search.errors import UserError
from kaggle import kaggle_file as _kaggle_file, truncated as _truncated, written as _written

# shared/design/3d-mnist.md §8: the doubled MNIST label counts of the source digits.
TRAIN_COUNTS = [958, 1126, 976, 986, 1070, 868, 1002, 1100, 924, 990]
TEST_COUNTS = [170, 252, 232, 214, 220, 174, 174, 198, 178, 188]


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory):
    """The full regenerated file, built once for the session in a private cache dir (about 45 s)."""
    directory = tmp_path_factory.mktemp("cache")
    started = time.perf_counter()
    path = cache.regenerated_file(directory)
    return path, time.perf_counter() - started


# --- regeneration ---------------------------------------------------------------------------------


def test_train_sample_0_matches_the_published_check_values():
    digits = regenerate.source_digits()
    image = digits["train_images"][0]
    assert digits["train_labels"][0] == 5 and (image != 0).sum() == 166
    points = regenerate.point_cloud(image)
    assert points.shape == (25700, 3)
    np.testing.assert_allclose(points[340], [0.13965517, -0.1094358, 0.47305447], atol=5e-9)
    assert np.abs(points[:, 0]).max() == pytest.approx(0.15)
    counts = regenerate.voxel_counts(points, bins=8).reshape(8, 8, 8)  # [z][y][x]
    assert counts[0, 0].tolist() == [0, 0, 226, 408, 408, 226, 0, 0]
    assert counts[7, 7].tolist() == [0, 0, 221, 348, 348, 221, 0, 0]
    assert counts.sum() == 25700


def test_bin_index_is_searchsorted_left_minus_one_at_and_beside_every_edge():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lo = rng.normal(0, 2)
        edges = np.linspace(lo, lo + rng.uniform(1e-3, 5), rng.integers(2, 40))
        inner = edges[1:-1] if len(edges) > 2 else edges[:0]
        values = np.concatenate([rng.uniform(edges[0], edges[-1], 500)[1:], inner, np.nextafter(inner, np.inf),
                                 np.nextafter(inner, -np.inf), [edges[-1], np.nextafter(edges[0], np.inf)]])
        values = values[(values > edges[0]) & (values <= edges[-1])]  # §3.4: the margin keeps every point inside
        np.testing.assert_array_equal(regenerate.bin_index(edges, values),
                                      np.searchsorted(edges, values, side="left") - 1)


@pytest.mark.xdist_group("regenerated")
def test_regenerated_file_has_kaggle_layout_and_class_counts(regenerated):
    path, _ = regenerated
    with h5py.File(path) as f:
        shapes = {k: (f[k].shape, f[k].dtype, f[k].compression) for k in f}
    assert shapes == {
        "X_train": ((10000, 4096), np.float64, "gzip"),
        "y_train": ((10000,), np.int64, "gzip"),
        "X_test": ((2000, 4096), np.float64, "gzip"),
        "y_test": ((2000,), np.int64, "gzip"),
    }
    x, y = h5file.read_split(path, "train")
    assert x.shape == (10000, 16, 16, 16) and x.min() == 0 and x.max() == 1
    assert (x.reshape(len(x), -1).max(axis=1) == 1).all()  # every vector is counts / max count
    assert np.bincount(y).tolist() == TRAIN_COUNTS and y[0] == 5
    np.testing.assert_array_equal(x[0].ravel(), regenerate.voxelize(regenerate.point_cloud(regenerate.source_digits()["train_images"][0])))
    _, y_test = h5file.read_split(path, "test")
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert path.stat().st_size < 100e6  # compressed, not the 393 MB of raw float64


@pytest.mark.xdist_group("regenerated")
def test_cache_is_reused_with_its_checksum(regenerated):
    path, first_seconds = regenerated
    mtime = path.stat().st_mtime_ns
    started = time.perf_counter()
    assert cache.regenerated_file(path.parent) == path
    assert path.stat().st_mtime_ns == mtime and time.perf_counter() - started < first_seconds / 5
    checksum = path.with_name(path.name + ".sha256")
    assert checksum.read_text().split()[0] == h5file.sha256(path)


def test_generation_is_deterministic_and_seeded():
    digits = regenerate.source_digits()
    images, labels = digits["test_images"][:6], digits["test_labels"][:6]
    x1, y1 = regenerate.regenerate_split(images, labels, seed=7)
    x2, _ = regenerate.regenerate_split(images, labels, seed=7)
    x3, _ = regenerate.regenerate_split(images, labels, seed=8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(x1[0::2], x3[0::2])  # originals do not depend on the seed
    assert not np.array_equal(x1[1::2], x3[1::2])  # augmented copies do
    assert y1.tolist() == np.repeat(labels, 2).tolist() and x1.dtype == np.float64


# --- loader ---------------------------------------------------------------------------------------


def test_loader_happy_path(tmp_path):
    path = _kaggle_file(tmp_path / "ok.h5")
    train = data.load(path, "train")
    assert train.x.shape == (20, 16, 16, 16) and train.x.dtype == np.uint8
    assert train.y.tolist() == (np.arange(20) // 2).tolist()
    with h5py.File(path) as f:
        expected = data.colormap_indices(f["X_train"][()].reshape(-1, 16, 16, 16))
    np.testing.assert_array_equal(train.x, expected)
    # [z][y][x]: vector element z*256 + y*16 + x lands at x[z, y, x]
    raw, _ = h5file.read_split(path, "train")
    with h5py.File(path) as f:
        assert raw[3, 2, 5, 7] == f["X_train"][3, 2 * 256 + 5 * 16 + 7]
    assert len(data.load(path, "test")) == 10


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "data file not found"),
        (lambda p: _written(p, b"not hdf5 at all"), "not a readable HDF5 file"),
        (lambda p: _truncated(_kaggle_file(p)), "not a readable HDF5 file"),
        (lambda p: _kaggle_file(p, y_train=None), "missing dataset 'y_train'"),
        (lambda p: _kaggle_file(p, X_train=np.zeros((20, 16, 16))), "'X_train' has shape (20, 16, 16)"),
        (lambda p: _kaggle_file(p, y_train=np.zeros(19, int)), "'X_train' has 20 rows but 'y_train' has 19 labels"),
        (lambda p: _kaggle_file(p, X_train=np.full((20, 4096), np.nan)), "NaN or infinite"),
        (lambda p: _kaggle_file(p, X_train=np.full((20, 4096), np.inf)), "NaN or infinite"),
        (lambda p: _kaggle_file(p, X_train=np.full((20, 4096), 1.5)), "expected [0, 1]"),
        (lambda p: _kaggle_file(p, y_train=np.arange(20)), "expected 0-9"),
        (lambda p: _kaggle_file(p, y_train=np.full(20, 2.5)), "integer class labels"),
    ],
    ids=["missing", "not-hdf5", "truncated", "missing-key", "wrong-shape", "length-mismatch", "nan", "inf",
         "out-of-range", "bad-label", "fractional-label"],
)
def test_malformed_files_give_one_clear_error(tmp_path, make, message):
    path = make(tmp_path / "data.h5")
    with pytest.raises(UserError) as error:
        data.load(path, "train")
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_cli_reports_a_bad_data_file_in_one_line_with_exit_2(tmp_path):
    bad = _kaggle_file(tmp_path / "bad.h5", X_train=np.full((20, 4096), np.nan))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "search", "train", "--preset", "machinecurve", "--data", str(bad), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bad}: 'X_train' contains NaN or infinite values"]
    assert "Traceback" not in result.stderr


def test_cli_data_refuses_to_overwrite(tmp_path):
    target = tmp_path / "exists.h5"
    target.write_text("precious")
    result = subprocess.run([sys.executable, "-m", "search", "data", "--out", str(target)], capture_output=True, text=True)
    assert result.returncode == 2 and "already exists" in result.stderr and target.read_text() == "precious"


# --- colorize and split ---------------------------------------------------------------------------


def _seeds_rgb_loop(volumes):
    """The seeds' transform, spelled out: a fresh ScalarMappable per sample, RGB of its RGBA, float32."""
    out = []
    for volume in volumes:
        mappable = cm.ScalarMappable(cmap="Oranges")
        out.append(mappable.to_rgba(volume.reshape(-1))[:, :3].reshape(16, 16, 16, 3))
    return np.asarray(out, dtype=np.float32)


def test_colorize_equals_the_seeds_loop():
    rng = np.random.default_rng(1)
    volumes = rng.random((24, 16, 16, 16))
    volumes[:8] *= 0.3  # per-sample min-max scaling matters here
    volumes[8:12] = np.round(volumes[8:12] * 4) / 4  # exact ties at level boundaries
    volumes[12] = 0.5  # a constant volume
    np.testing.assert_allclose(data.colorize(volumes), _seeds_rgb_loop(volumes), rtol=0, atol=1e-6)
    assert data.colorize(volumes).dtype == np.float32


def test_stratified_split_is_seeded_and_proportional():
    y = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140]).astype(np.uint8)
    x = np.arange(len(y), dtype=np.uint8)[:, None, None, None] * np.ones((1, 16, 16, 16), np.uint8)
    volumes = data.Volumes(x, y)
    train, val = data.train_val_split(volumes, 0.2, seed=3)
    assert len(train) + len(val) == len(volumes)
    assert np.bincount(val.y).tolist() == [round(0.2 * n) for n in np.bincount(y)]
    again, _ = data.train_val_split(volumes, 0.2, seed=3)
    other, _ = data.train_val_split(volumes, 0.2, seed=4)
    np.testing.assert_array_equal(train.x, again.x)
    assert not np.array_equal(train.x, other.x)


def test_split_never_separates_a_digit_from_its_rotated_copy(small_data_file):
    """Kaggle's rows 2i and 2i+1 are one source digit: both land on the same side, on the real layout."""
    volumes = data.load(small_data_file, "train")
    # Tag every row with its source digit (row // 2) in the first voxel, then find each row after the split.
    tagged = data.Volumes(volumes.x.copy(), volumes.y)
    tagged.x[:, 0, 0, 0] = data.source_digits(len(volumes)) % 256
    tagged.x[:, 0, 0, 1] = data.source_digits(len(volumes)) // 256
    for seed in range(5):
        train, val = data.train_val_split(tagged, 0.2, seed=seed)
        source = lambda v: set((v.x[:, 0, 0, 0].astype(int) + 256 * v.x[:, 0, 0, 1].astype(int)).tolist())
        train_sources, val_sources = source(train), source(val)
        assert not train_sources & val_sources, f"seed {seed}: a source digit straddles the split"
        assert len(train_sources) + len(val_sources) == len(volumes) // 2
        assert len(val) == 2 * len(val_sources)  # both rows of every validation digit
        # stratified: each digit's share of validation sources is val_fraction of its sources, rounded
        per_digit = np.bincount(volumes.y[::2], minlength=10)
        assert np.bincount(val.y[::2], minlength=10).tolist() == [round(0.2 * n) for n in per_digit]


def test_an_unpaired_file_is_refused(tmp_path):
    """A file whose rows 2i and 2i+1 disagree is not Kaggle's layout: the split could not keep pairs together."""
    path = _kaggle_file(tmp_path / "unpaired.h5", y_train=np.arange(20) % 10)
    with pytest.raises(UserError, match=r"unpaired.h5: 'y_train' rows 0 and 1 have labels 0 and 1"):
        data.load(path, "train")
