"""A quiet console: TensorFlow's C++ start-up lines about a missing GPU, kept out of the driver's and the trials' output,
and no traceback when Ray ends a worker.

TensorFlow prints them while its shared libraries load ("Could not find cuda drivers", absl's "All log
messages before absl::InitializeLog()") and when it first looks for a GPU ("failed call to cuInit"),
and its own log level (TF_CPP_MIN_LOG_LEVEL) does not reach the first kind. So those two moments run
with stderr (file descriptor 2) captured, and every captured line except these known ones is written back.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Start-up lines that say nothing a user must act on: no GPU driver on a CPU machine, oneDNN on (our choice,
# see search/__init__.py), the CPU instructions TensorFlow was built for, and absl's note on its early lines.
NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions",
    r"cpu_feature_guard\.cc:\d+\] To enable the following instructions",
]))
NO_DRIVER = "Could not find cuda drivers on your machine"
# cuInit's error when the CUDA driver library is missing altogether: noise only after NO_DRIVER was seen;
# on a machine with a driver any cuInit failure (a broken driver, no device) still shows.
CUINIT_WITHOUT_DRIVER = re.compile(r"failed call to cuInit: .*\(303\)")
_no_driver = False  # this process saw NO_DRIVER


def keep(text: str) -> str:
    """The lines of captured stderr worth showing: all but the known start-up noise."""
    global _no_driver
    _no_driver = _no_driver or NO_DRIVER in text
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not NOISE.search(line)
                   and not (_no_driver and CUINIT_WITHOUT_DRIVER.search(line)))


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 (C++ and Python writes alike) for the block, then write back what `keep` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = keep(capture.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Runs the first import of one package under filtered_stderr, wherever it happens (Keras, keras-tuner, ...)."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; and so that find_spec below finds the real package
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            exec_module = spec.loader.exec_module

            def quietly(module) -> None:
                with filtered_stderr():
                    exec_module(module)

            spec.loader.exec_module = quietly  # this package's loader only
        return spec


def quiet_tensorflow_import() -> None:
    """Filter TensorFlow's start-up lines when this process first imports it (a no-op once it is imported)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFirstImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFirstImport("tensorflow"))


def quiet_exit_in_finalizers() -> None:
    """Don't print a SystemExit that Python could not raise: Ray's SIGTERM handler raises it wherever the worker
    is, and in a finalizer or weakref callback Python prints it with a traceback instead. The worker is being
    ended on purpose (Tune stopping a finished trial's actor); every other unraisable exception still shows."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not issubclass(unraisable.exc_type, SystemExit):
            previous(unraisable)

    sys.unraisablehook = hook


def setup_worker() -> None:
    """Ray's worker_process_setup_hook (see connection.connect): every worker of the job imports TensorFlow
    quietly, and its end by SIGTERM prints no traceback."""
    quiet_tensorflow_import()
    quiet_exit_in_finalizers()
