"""The hyperparameters of one run: a single schema, validation, the cheap feasibility check and the seed presets.

One schema (``PARAMS``) describes every key a run takes, the model's and the training loop's, so a
single dict is a complete, loggable trial. ``validate`` fills defaults and rejects bad values and
``check`` rejects architectures whose spatial size runs out. Neither imports TensorFlow, so the CLI
and the search can vet a configuration in microseconds, before anything heavy starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from search.errors import UserError

INPUT_SIZE = 16  # voxels per axis of the dataset's volumes
NUM_CLASSES = 10
MAX_BLOCKS = 6
MAX_FILTERS = 512  # of any block
GROWN_FILTERS_CAP = 256  # filter_growth stops here (the seeds' widest block), unless block 0 is wider


class Param(NamedTuple):
    """One hyperparameter: kind is "int", "float", "bool" or "choice"; allowed is (lo, hi) or the choices.

    A default of None marks an optional key: absent unless given.
    """

    kind: str
    allowed: tuple
    default: Any
    doc: str


PARAMS: dict[str, Param] = {
    "blocks": Param("int", (1, MAX_BLOCKS), 2, "conv blocks, each ending in MaxPool3D(2)"),
    "padding": Param("choice", ("valid", "same"), "valid", "conv padding; 'valid' shrinks by kernel_size - 1 per conv"),
    "filters": Param("int", (4, MAX_FILTERS), 32, "filters of block 0"),
    "filter_growth": Param("float", (1.0, 4.0), 2.0,
                           f"block i has round(filters * filter_growth**i) filters, grown at most to "
                           f"{GROWN_FILTERS_CAP} (or to filters, if larger)"),
    **{
        f"filters_{i}": Param("int", (4, MAX_FILTERS), None, f"override the filters of block {i}")
        for i in range(MAX_BLOCKS)
    },
    "kernel_size": Param("choice", (3, 5), 3, "conv kernel edge (odd, so 'same' padding is symmetric)"),
    "residual": Param("bool", (False, True), False, "two convs per block plus a 1x1x1 projection shortcut"),
    "batchnorm": Param("bool", (False, True), False, "BatchNormalization after each block's pool"),
    "dropout": Param("float", (0.0, 0.9), 0.0, "dropout rate at the end of each block (0 = none)"),
    "head": Param("choice", ("flatten", "global_avg"), "flatten", "how the last block's volume becomes a vector"),
    "dense_units": Param("int", (0, 2048), 256, "hidden Dense(relu) units in the head (0 = none)"),
    "head_dropout": Param("float", (0.0, 0.9), 0.0, "dropout rate before the softmax (0 = none)"),
    "learning_rate": Param("float", (1e-5, 1e-1), 1e-3, "Adam learning rate (the initial one for 'cosine')"),
    "schedule": Param("choice", ("constant", "cosine"), "constant", "learning-rate schedule; cosine decays to 0"),
    "augment": Param("float", (0.0, 1.0), 0.0, "Augment3D strength during training (0 = off)"),
    "input_mode": Param("choice", ("rgb", "occupancy"), "rgb", "seeds' Oranges RGB, or 1 raw occupancy channel"),
    "pose": Param("choice", ("as_is", "principal_axes", "both"), "as_is",
                  "the input as it is, turned into its principal-axes frame, or both as two inputs (search.pose)"),
    "fusion": Param("choice", ("channels", "streams"), "channels", "pose 'both': two input channels, or two conv trunks"),
    "raw_stream_width": Param("float", (0.25, 1.0), 1.0,
                              "pose 'both' with fusion 'streams': the as-is trunk's filters, as a fraction of each block's"),
    "train_views": Param("int", (1, 24), 1,
                         "training shows each sample in one of the first k exact views, at random (1 = off)"),
    "tta_views": Param("int", (1, 24), 1,
                       "validation, test and predict average the softmax over the first k exact views (1 = off)"),
    "batch_size": Param("int", (1, 4096), 100, "training batch size (used by the trainer)"),
    "epochs": Param("int", (1, 1000), 30, "training epochs (used by the trainer)"),
    "schedule_epochs": Param("int", (1, 1000), None,
                             "epochs over which 'cosine' decays (default: epochs); the search sets it to max_epochs"),
    "seed": Param("int", (0, 2**31 - 1), None, "seed of the augmentation layer"),
}

DEFAULTS: dict[str, Any] = {name: p.default for name, p in PARAMS.items() if p.default is not None}
"""Values of every non-optional key; they are the machinecurve seed's."""

_MACHINECURVE = {
    "blocks": 2,
    "padding": "valid",
    "filters": 32,
    "filter_growth": 2.0,
    "kernel_size": 3,
    "residual": False,
    "batchnorm": False,
    "dropout": 0.0,
    "head": "flatten",
    "dense_units": 256,
    "head_dropout": 0.0,
    "learning_rate": 1e-3,
    "schedule": "constant",
    "augment": 0.0,
    "input_mode": "rgb",
    "pose": "as_is",
    "fusion": "channels",
    "raw_stream_width": 1.0,
    "train_views": 1,
    "tta_views": 1,
    "batch_size": 100,
    "epochs": 30,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Two valid conv+pool blocks 32/64, Dense 256, softmax.
    "machinecurve": _MACHINECURVE,
    # The same with BatchNormalization and Dropout 0.5 after each pool.
    "medium": {**_MACHINECURVE, "batchnorm": True, "dropout": 0.5},
    # Four same-padded blocks 32/64/128/256, Dense 128, Dropout 0.5, softmax.
    "notebook": {
        **_MACHINECURVE,
        "blocks": 4,
        "padding": "same",
        "dense_units": 128,
        "head_dropout": 0.5,
        "batch_size": 128,
        "epochs": 50,
    },
}


def _plain(value: Any) -> Any:
    """numpy scalars (as tuners hand out) -> the equivalent Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _validate_value(name: str, value: Any) -> Any:
    """Return value normalized to the kind of PARAMS[name], or raise UserError naming the key."""
    p = PARAMS[name]
    value = _plain(value)
    if p.kind == "choice":
        for choice in p.allowed:
            if type(value) is type(choice) and value == choice:
                return choice
        raise UserError(f"parameter {name!r}: expected one of {', '.join(map(repr, p.allowed))}, got {value!r}")
    if p.kind == "bool":
        if type(value) is not bool:
            raise UserError(f"parameter {name!r}: expected true or false, got {value!r}")
        return value
    # int and float; bool is a subclass of int, but True as a filter count is a mistake
    expected = (int,) if p.kind == "int" else (int, float)
    if type(value) not in expected:
        raise UserError(f"parameter {name!r}: expected {'an int' if p.kind == 'int' else 'a number'}, got {value!r}")
    lo, hi = p.allowed
    if not lo <= value <= hi:  # also rejects nan
        raise UserError(f"parameter {name!r}: expected a value in [{lo}, {hi}], got {value!r}")
    return float(value) if p.kind == "float" else value


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key and value of params; return a new dict with defaults filled in.

    Optional keys given as None count as absent. Raises UserError (one line, naming the key).
    """
    if not isinstance(params, Mapping):
        raise UserError(f"parameters must be a mapping of name -> value, got {type(params).__name__}")
    out = dict(DEFAULTS)
    for name, value in params.items():
        if name not in PARAMS:
            raise UserError(f"unknown parameter {name!r} (known: {', '.join(PARAMS)})")
        if value is None and PARAMS[name].default is None:
            continue
        out[name] = _validate_value(name, value)
    for i in range(out["blocks"], MAX_BLOCKS):
        if f"filters_{i}" in out:
            raise UserError(f"parameter 'filters_{i}': filters_{i} given but blocks is {out['blocks']}")
    return out


class Infeasible(UserError):
    """An architecture that cannot be built; the message is check()'s reason."""


def feasible(params: Mapping[str, Any]) -> dict[str, Any]:
    """validate, then check: the params with defaults filled in, or Infeasible (UserError if invalid)."""
    p = validate(params)
    reason = check(p)
    if reason:
        raise Infeasible(reason)
    return p


def block_filters(p: Mapping[str, Any]) -> list[int]:
    """Filters of each block of validated params: the per-block override, else round(filters * filter_growth**i),
    grown at most to GROWN_FILTERS_CAP (or to block 0's count, if larger)."""
    cap = max(p["filters"], GROWN_FILTERS_CAP)
    return [p.get(f"filters_{i}") or min(round(p["filters"] * p["filter_growth"] ** i), cap) for i in range(p["blocks"])]


def forward_macs(params: Mapping[str, Any]) -> int:
    """Multiply-adds of one view's forward pass through the convs and dense layers, without Keras (microseconds).

    The cost model of a deadline's planner: it walks the blocks as check() does and the builder shapes them
    (search.model), so a configuration's cost is known before it is built or trained; tests/test_cost.py holds
    it equal to the built model's layers. Raises Infeasible (UserError if invalid) as feasible() does.
    """
    p = feasible(params)
    colors = 3 if p["input_mode"] == "rgb" else 1
    if p["pose"] == "both" and p["fusion"] == "streams":
        trunks = [(colors, p["raw_stream_width"]), (colors, 1.0)]  # the as-is trunk, then the principal-axes one
    else:
        trunks = [(2 * colors if p["pose"] == "both" else colors, 1.0)]  # "both" as channels: two inputs stacked
    k, shrink = p["kernel_size"], 0 if p["padding"] == "same" else p["kernel_size"] - 1
    macs, features = 0, 0
    for channels, width in trunks:
        n = INPUT_SIZE
        for filters in block_filters(p):
            filters = max(4, round(filters * width))
            if p["residual"]:  # a 1x1x1 shortcut at the input's size, then two convs
                macs += n**3 * channels * filters
                macs += (n - shrink) ** 3 * k**3 * channels * filters + (n - 2 * shrink) ** 3 * k**3 * filters * filters
                n -= 2 * shrink
            else:
                n -= shrink
                macs += n**3 * k**3 * channels * filters
            n, channels = n // 2, filters
        features += channels * (n**3 if p["head"] == "flatten" else 1)
    hidden = p["dense_units"]
    macs += features * hidden + hidden * NUM_CLASSES if hidden else features * NUM_CLASSES
    return macs


def flops(params: Mapping[str, Any]) -> int:
    """Floating-point operations of one view's forward pass: two per multiply-add (forward_macs), the cost
    search.objectives calls "flops"."""
    return 2 * forward_macs(params)


def check(params: Mapping[str, Any]) -> str | None:
    """Cheap feasibility check (no TensorFlow): a human reason the architecture cannot be built, or None.

    Walks the spatial size through the blocks exactly as the builder shapes it: a 'valid' conv of kernel
    k shrinks n by k - 1 (residual blocks have two convs), MaxPool3D(2) floor-halves and needs n >= 2.
    Raises UserError if params are invalid (see validate).
    """
    p = validate(params)
    convs = 2 if p["residual"] else 1
    shrink = 0 if p["padding"] == "same" else convs * (p["kernel_size"] - 1)
    sizes = [INPUT_SIZE]
    for block in range(1, p["blocks"] + 1):
        n = sizes[-1] - shrink
        sizes.append(max(n // 2, 0))
        if n < 2:  # a conv output < 1 fails to build; a pool input of 1 gives an empty volume
            layout = f"{p['padding']!r} padding, kernel_size {p['kernel_size']}{', residual' if p['residual'] else ''}"
            trace = " -> ".join(map(str, sizes))
            return f"{p['blocks']} blocks ({layout}): spatial size reaches 0 at block {block} ({trace})"
    return None
