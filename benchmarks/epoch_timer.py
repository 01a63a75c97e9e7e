"""Shared by the benchmarks: a Keras callback that records each epoch's wall time."""

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch, in order, in ``seconds``."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)
