"""conv3d-search: distributed hyperparameter search for 3D convolutional networks on 3D MNIST.

Data flows one way: data -> model -> trial -> tuner -> leaderboard -> final.
"""

import os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX512_VNNI, AVX512_BF16,
# AVX_VNNI or AMX; on AVX2-only CPUs it runs fallback kernels that make a Conv3D epoch 2.7-4.5x slower.
# TensorFlow reads the switch once, when it is imported, so it is set here, before any of our modules
# can import TensorFlow. A user's own setting wins. Ray workers get the driver's value (backend.env_vars).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
