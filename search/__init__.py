"""conv3d-search: distributed hyperparameter search for 3D convolutional networks on 3D MNIST.

Data flows one way: data -> model -> trial -> tuner -> leaderboard -> final.
"""

__version__ = "0.1.0"
