"""The seeds' "Oranges" RGB input, kept compact as one uint8 colormap index per voxel.

The seeds feed the network ``ScalarMappable(cmap="Oranges").to_rgba(volume)[..., :3]``: each
volume is min-max scaled on its own, then looked up in a 256-level colormap. So one uint8 index
per voxel fully determines the RGB input; we store and ship that index (1 byte per voxel instead
of 12 bytes of float32 RGB) and look it up on the training device (``ORANGES_LUT``).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

LEVELS = 256
ORANGES_LUT: np.ndarray = colormaps["Oranges"](np.arange(LEVELS))[:, :3].astype(np.float32)
"""(256, 3) float32 RGB of each colormap level, exactly what matplotlib returns for it."""


def colormap_indices(volumes: np.ndarray) -> np.ndarray:
    """Map (N, ...) volumes to uint8 colormap levels the way matplotlib's default Normalize + Colormap do.

    Per sample: x -> (x - min) / (max - min) (all zeros when max == min), then
    level = floor(x * 256) with 1.0 mapped to 255. Vectorized and in place on one float64 copy.
    """
    flat = np.array(volumes, dtype=np.float64).reshape(len(volumes), -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    flat -= lo
    flat /= np.where(span > 0, span, np.inf)  # a constant volume scales to 0, as in matplotlib
    flat *= LEVELS
    np.minimum(flat, LEVELS - 1, out=flat)  # 1.0 lands on the last level
    return flat.astype(np.uint8).reshape(np.shape(volumes))


# Each LUT row as one 12-byte item: gathering whole rows copies once per voxel, not once per channel.
_LUT_ROWS = np.ascontiguousarray(ORANGES_LUT).view(np.dtype((np.void, ORANGES_LUT.itemsize * 3))).ravel()


def colorize(volumes: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, 16, 16, 16) volumes in [0, 1] -> float32 (N, 16, 16, 16, 3) "Oranges" RGB, as the seeds do.

    Works through `chunk` samples at a time, so the float64 temporaries stay in cache.
    """
    volumes = np.asarray(volumes)
    out = np.empty((*volumes.shape, 3), dtype=np.float32)
    rows = out.reshape(len(volumes), -1).view(_LUT_ROWS.dtype)
    for start in range(0, len(volumes), chunk):
        levels = colormap_indices(volumes[start : start + chunk])
        rows[start : start + chunk] = _LUT_ROWS[levels.reshape(len(levels), -1)]
    return out
