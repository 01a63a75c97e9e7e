"""conv3d-search: distributed hyperparameter search for 3D convolutional networks on 3D MNIST.

Data flows one way: data -> model -> trial -> tuner -> leaderboard -> final. The Python API
(search.api) is here too: ``search.start``, ``search.resume``, ``search.open_run``.
"""

import os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX512_VNNI, AVX512_BF16,
# AVX_VNNI or AMX; on AVX2-only CPUs it runs much slower fallback kernels for Conv3D. TensorFlow reads
# the switch once, when it is imported, so it is set here, before any of our modules can import
# TensorFlow. A user's own setting wins. Ray workers get the driver's value (backend.env_vars).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_API = ("start", "resume", "open_run", "Run", "RunOptions", "Resources", "Summary", "Pick", "Retrained")


def __getattr__(name: str):
    # PEP 562: the API loads on first use, so `import search` stays light (no Ray, Keras or pandas).
    if name in _API:
        from search import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
