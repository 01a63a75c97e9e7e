"""Conv3D classifiers for 3D MNIST built from one flat dict of plain hyperparameter values (see ``params``).

``build_model`` returns a compiled ``keras.Model`` that eats the dataset's uint8 colormap levels
directly, so decoding and augmentation run on the training device.

Block layout (the simplest one that reproduces the three seed presets exactly)::

    conv(relu)                                  -> MaxPool3D(2) [-> BatchNorm] [-> Dropout]
    residual: conv(relu) -> conv, + 1x1x1 projection shortcut, relu -> MaxPool3D(2) [-> ...]

BatchNormalization therefore sits after the pool, where the "medium" seed has it. With a ``pose`` other than
"as_is" (or views), ``pose.PoseViews`` feeds the blocks the principal-axes volume, or the raw and the
canonical volumes as two channels or two trunks side by side, and ``pose.MeanOverViews`` averages the
softmax over the views at inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers, ops

from search.augment import Augment3D
from search.data.colormap import LEVELS, ORANGES_LUT
from search.params import INPUT_SIZE, NUM_CLASSES, block_filters, feasible, validate
from search.pose import MeanOverViews, PoseViews


@keras.saving.register_keras_serializable(package="conv3d_search")
class Colorize(keras.layers.Layer):
    """Occupancy (B, n, n, n) in [0, 1] -> the network's input channels.

    "rgb": the seeds' "Oranges" colors, exactly ORANGES_LUT[level] with level = round(v * 255), giving
    (B, n, n, n, 3); "occupancy": the raw values as one channel, (B, n, n, n, 1).
    """

    MODES = ("rgb", "occupancy")

    def __init__(self, mode: str = "rgb", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"Colorize mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def call(self, occupancy):
        if self.mode == "occupancy":
            return ops.expand_dims(occupancy, -1)
        levels = ops.cast(ops.clip(ops.round(occupancy * (LEVELS - 1)), 0, LEVELS - 1), "int32")
        # The LUT is a constant, not a weight, so count_params matches the seeds' models.
        return ops.take(ops.convert_to_tensor(ORANGES_LUT), levels, axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 3 if self.mode == "rgb" else 1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _block(x, i: int, filters: int, p: Mapping[str, Any], stream: str = ""):
    """One conv block (see the module docstring for its layout); `stream` prefixes its layers' names."""
    k, padding = p["kernel_size"], p["padding"]
    name = f"{stream}block{i}"
    if p["residual"]:
        shortcut = layers.Conv3D(filters, 1, kernel_initializer="he_uniform", name=f"{name}_shortcut")(x)
        if padding == "valid":  # the two valid convs eat k - 1 voxels per side
            shortcut = layers.Cropping3D(k - 1, name=f"{name}_crop")(shortcut)
        y = layers.Conv3D(filters, k, padding=padding, activation="relu", kernel_initializer="he_uniform",
                          name=f"{name}_conv_a")(x)
        y = layers.Conv3D(filters, k, padding=padding, kernel_initializer="he_uniform", name=f"{name}_conv_b")(y)
        x = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([y, shortcut]))
    else:
        x = layers.Conv3D(filters, k, padding=padding, activation="relu", kernel_initializer="he_uniform",
                          name=f"{name}_conv")(x)
    x = layers.MaxPool3D(2, name=f"{name}_pool")(x)
    if p["batchnorm"]:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if p["dropout"]:
        x = layers.Dropout(p["dropout"], name=f"{name}_dropout")(x)
    return x


def _trunk(x, p: Mapping[str, Any], stream: str = "", width: float = 1.0):
    """The conv blocks and the flatten or pooling after them; `stream` prefixes the layers' names, `width`
    scales every block's filters (at least 4)."""
    for i, filters in enumerate(block_filters(p)):
        x = _block(x, i, max(4, round(filters * width)), p, stream)
    if p["head"] == "flatten":
        return layers.Flatten(name=f"{stream}flatten")(x)
    return layers.GlobalAveragePooling3D(name=f"{stream}gap")(x)


def _network(p: Mapping[str, Any]) -> keras.Model:
    """The uncompiled model for validated params; builds what check() would reject too (Keras then fails)."""
    levels = keras.Input((INPUT_SIZE,) * 3, dtype="uint8", name="levels")
    # Input decoding and augmentation stay float32 under a mixed policy: bfloat16 cannot hold the 256
    # levels exactly, and rotations must stay exact voxel permutations. The first conv casts.
    x = layers.Rescaling(1 / (LEVELS - 1), dtype="float32", name="occupancy")(levels)  # uint8 level -> [0, 1]
    if p["augment"] > 0:
        x = Augment3D(p["augment"], seed=p.get("seed"), dtype="float32", name="augment")(x)
    if p["pose"] == "as_is" and p["train_views"] == 1 and p["tta_views"] == 1:  # today's graph, unchanged
        x = _trunk(Colorize(p["input_mode"], dtype="float32", name="colorize")(x), p)
    else:
        seed = None if p.get("seed") is None else p["seed"] + 1  # a stream of its own, not Augment3D's
        inputs = PoseViews(p["pose"], p["train_views"], p["tta_views"], seed=seed, dtype="float32", name="pose")(x)
        x = [Colorize(p["input_mode"], dtype="float32", name=f"colorize_{i}")(v) for i, v in enumerate(inputs)]
        if len(x) == 1:
            x = _trunk(x[0], p)
        elif p["fusion"] == "channels":
            x = _trunk(layers.Concatenate(name="channels", dtype="float32")(x), p)
        else:
            widths = (p["raw_stream_width"], 1.0)  # the as-is trunk may be narrower: the pose is read by the other
            x = layers.Concatenate(name="streams")([_trunk(v, p, f"s{i}_", w) for i, (v, w) in enumerate(zip(x, widths))])
    if p["dense_units"]:
        x = layers.Dense(p["dense_units"], activation="relu", kernel_initializer="he_uniform", name="dense")(x)
    if p["head_dropout"]:
        x = layers.Dropout(p["head_dropout"], name="head_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="classes")(x)  # float32 loss
    if p["tta_views"] > 1:
        outputs = MeanOverViews(p["tta_views"], dtype="float32", name="mean_over_views")(outputs)
    return keras.Model(levels, outputs, name="conv3d")


def count_params(params: Mapping[str, Any]) -> int:
    """Weights of the network for feasible params, without compiling or training it (milliseconds)."""
    return _network(validate(params)).count_params()


def build_model(params: Mapping[str, Any], steps_per_epoch: int | None = None, steps_per_execution: int = 1) -> keras.Model:
    """Validate params and return the compiled model (Adam, sparse categorical crossentropy, accuracy).

    steps_per_epoch is needed only by the cosine schedule, which decays over schedule_epochs (default:
    epochs) * steps_per_epoch steps (ValueError if missing). The search sets schedule_epochs to its
    max_epochs, so a trial's learning rate at epoch e is the same whether it trains 10 epochs or 150, and
    the final retrain, which keeps it, sees the same rate at each epoch as the trial it came from.
    steps_per_execution: batches per compiled call (Keras's compile option; fewer Python round trips).
    Raises UserError for invalid params, params.Infeasible (a UserError) for an infeasible architecture.
    """
    p = feasible(params)
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = p["learning_rate"]
    if p["schedule"] == "cosine":
        if steps_per_epoch is None or steps_per_epoch < 1:
            raise ValueError(f"schedule 'cosine' needs steps_per_epoch >= 1, got {steps_per_epoch!r}")
        horizon = p.get("schedule_epochs") or p["epochs"]
        learning_rate = keras.optimizers.schedules.CosineDecay(p["learning_rate"], horizon * steps_per_epoch)
    model = _network(p)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,  # jit_compile stays "auto": on for JAX (and TensorFlow on GPU)
    )
    return model
