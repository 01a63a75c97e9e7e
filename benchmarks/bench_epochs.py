"""Seconds per training epoch of each seed preset on this CPU, GFLOP/s beside the machine's peak, and the
ratio against a plain Keras script of the same network with TensorFlow's defaults, all in one run.

Run: .venv/bin/python benchmarks/bench_epochs.py [--presets machinecurve medium notebook] [--samples 8000] [--epochs 2]

Every figure comes from a fresh process, since TensorFlow reads its oneDNN switch once, at import:
- ours: ``search.train.fit`` with the package's settings, as ``train``, the trials and the final retrain
  use it (uint8 levels in; the colormap lookup runs inside the model), on all of the machine's cores;
- plain: the same network as a user's own script would build it: keras.Sequential on float32 RGB arrays
  (the seeds' input), ``model.fit``, TensorFlow's defaults (TF_ENABLE_ONEDNN_OPTS unset);
- plain, oneDNN on: the same with TF_ENABLE_ONEDNN_OPTS=1 (what ``import search`` sets);
- plain, oneDNN off: the same with TF_ENABLE_ONEDNN_OPTS=0, which is what TensorFlow does by default on
  CPUs without AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (AVX2-only machines).
Each figure is the mean of --epochs timed epochs after one warm-up epoch. GFLOP/s counts 2 flops per
multiply-add of every Conv3D and Dense layer, forward, weight gradient and input gradient (the first
layer needs none). The peak is this machine's own float32 GEMM rate, measured here (a 2048^2 matmul in
TensorFlow with oneDNN on all cores): what the convolutions could reach at best.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

PRESETS = ("machinecurve", "medium", "notebook")
KINDS = {  # kind -> TF_ENABLE_ONEDNN_OPTS for its process (None: unset, TensorFlow's own default)
    "ours": None,  # importing search sets it (to 1, unless the user chose)
    "plain": None,
    "plain-onednn-on": "1",
    "plain-onednn-off": "0",
}


def layer_flops(model) -> float:
    """Training flops per sample: 2 per multiply-add, x3 (forward, dW, dX) for every Conv3D/Dense but the first (x2)."""
    import keras

    total, first = 0.0, True
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):  # every output voxel: one kernel's worth of multiply-adds
            macs = math.prod(layer.output.shape[1:4]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            macs = math.prod(layer.kernel.shape)
        else:
            continue
        total += 2 * macs * (2 if first else 3)
        first = False
    return total


def plain_model(params: dict):
    """The preset's network the way a user writes it by hand: float32 RGB in, keras.Sequential."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((16, 16, 16, 3))])
    for i in range(params["blocks"]):
        filters = round(params["filters"] * params["filter_growth"] ** i)
        model.add(layers.Conv3D(filters, params["kernel_size"], padding=params["padding"], activation="relu",
                                kernel_initializer="he_uniform"))
        model.add(layers.MaxPool3D(2))
        if params["batchnorm"]:
            model.add(layers.BatchNormalization())
        if params["dropout"]:
            model.add(layers.Dropout(params["dropout"]))
    model.add(layers.Flatten())
    model.add(layers.Dense(params["dense_units"], activation="relu", kernel_initializer="he_uniform"))
    if params["head_dropout"]:
        model.add(layers.Dropout(params["head_dropout"]))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def child(kind: str, preset: str, samples: int, epochs: int) -> dict:
    """One measurement, in this (fresh) process."""
    if kind == "peak":
        import tensorflow as tf

        n = 2048
        a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
        tf.matmul(a, b).numpy()
        best = float("inf")
        for _ in range(10):
            started = time.perf_counter()
            tf.matmul(a, b).numpy()
            best = min(best, time.perf_counter() - started)
        return {"gflops": 2 * n**3 / best / 1e9}

    unset = "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    from search import data  # sets the oneDNN switch (to 1 where unset), as in every process of ours
    import numpy as np

    if kind != "ours" and unset:  # a user's own script never imports our package: TensorFlow's own default
        del os.environ["TF_ENABLE_ONEDNN_OPTS"]

    from search.params import PRESETS as PARAMS, validate

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from epoch_timer import EpochTimer

    params = validate({**PARAMS[preset], "epochs": 1 + epochs, "seed": 0})
    volumes, _ = data.train_val_split(data.load(None, "train"), 0.2, seed=0)
    x, y = volumes.x[:samples], volumes.y[:samples]
    timer = EpochTimer()
    if kind == "ours":
        from search import train

        model, _ = train.fit(params, data.Volumes(x, y), None, callbacks=[timer], verbose=0)
    else:
        import keras

        keras.utils.set_random_seed(0)
        rgb = data.ORANGES_LUT[x]  # float32 (N, 16, 16, 16, 3): what the seeds feed their model
        model = plain_model(params)
        model.fit(rgb, y, batch_size=params["batch_size"], epochs=params["epochs"], callbacks=[timer], verbose=0)
    from tensorflow.python.util import _pywrap_util_port

    return {"seconds": float(np.mean(timer.seconds[1:])), "flops": layer_flops(model) * samples,
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}


def measure(kind: str, preset: str = "", samples: int = 0, epochs: int = 0) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if KINDS.get(kind) is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = KINDS[kind]
    if kind == "peak":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    command = [sys.executable, os.path.abspath(__file__), "--child", kind, preset, str(samples), str(epochs)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--samples", type=int, default=8000, help="training samples per epoch (8000 = the 80 %% split)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, preset, samples, epochs = args.child
        print(json.dumps(child(kind, preset, int(samples), int(epochs))))
        return

    peak = measure("peak")["gflops"]
    print(f"{args.samples} samples per epoch, {os.cpu_count()} CPUs, measured float32 GEMM peak {peak:.0f} GFLOP/s "
          f"({time.strftime('%Y-%m-%d')})", flush=True)
    for preset in args.presets:
        got = {kind: measure(kind, preset, args.samples, args.epochs) for kind in args.kinds}
        for kind, m in got.items():
            gflops = m["flops"] / m["seconds"] / 1e9
            line = (f"{preset:>12} {kind:<17} {m['seconds']:6.2f} s/epoch  {gflops:6.1f} GFLOP/s "
                    f"({gflops / peak:4.0%} of peak)  oneDNN {'on' if m['onednn'] else 'off'}")
            if kind != "ours" and "ours" in got:
                line += f"  ours is {m['seconds'] / got['ours']['seconds']:.2f}x faster"
            print(line, flush=True)


if __name__ == "__main__":
    main()
