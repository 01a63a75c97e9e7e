"""Quick demo space: a real search and the final retrain in minutes on a 2-core CPU, beating the MachineCurve
tutorial's test accuracy with the once-only test protocol (its figures: the benchmarks page).

Why these ranges: in short probes on the validation split (never the test set), small 'same'-padded nets
with BatchNorm and a cosine schedule learned fastest, and without BatchNorm augmentation stalled them. So
BatchNorm and the cosine schedule are fixed here, and the search chooses the input, depth, widths,
regularization and learning rate around them. The wide space (spaces/wide.py) leaves all of that open.
Why this budget: 6 trials, two at a time (one core each), capped at 10 epochs; no baselines (a seed preset
trains for many more epochs) and no finalists (another round of full-budget training): the wide space has both.
"""

SEARCH = {
    "samples": 6,
    "max_epochs": 10,
    "grace_period": 3,  # BatchNorm nets are erratic for their first 2-3 epochs
    "reduction_factor": 3,
    "max_concurrent": 2,  # two trials at once, one core each
    "finalists": 0,
}


def space(hp):
    hp.Choice("input_mode", ["occupancy", "rgb"])
    hp.Fixed("padding", "same")
    for i in range(hp.Int("blocks", 2, 3)):
        hp.Int(f"filters_{i}", 16, 32, step=8)
    hp.Fixed("batchnorm", True)
    hp.Float("dropout", 0.1, 0.3, step=0.1)
    hp.Choice("dense_units", [64, 128])
    hp.Float("head_dropout", 0.0, 0.3, step=0.1)
    hp.Choice("augment", [0.0, 0.25])
    hp.Float("learning_rate", 1e-3, 3e-3, sampling="log")
    hp.Fixed("schedule", "cosine")
