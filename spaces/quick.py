"""Quick demo space: a real search and the final retrain in under 10 minutes on a 2-core CPU, beating the
MachineCurve tutorial's 65.6 % test accuracy with the once-only test protocol.

Why these ranges: 16-epoch probes on the validation split (never the test set) on 2 cores showed that
small 'same'-padded nets with BatchNorm and a cosine schedule learn fastest: 69-72 % validation
accuracy, against 65 % for the tutorial's own model, which overfits by then. Without BatchNorm,
augmentation stalled them at 26 % in that budget. So BatchNorm and the cosine schedule are fixed here, and
the search chooses the input, depth, widths, regularization and learning rate around them. The wide
space (spaces/wide.py) leaves all of that open.

Budget on 2 cores (oneDNN on; README, "Benchmarks"): such a trial trains an epoch of the 8000 search
samples in about 10 s on one core. 6 trials, two at a time, ASHA's rungs at 3 and 9 epochs and a cap of
10: asynchronous ASHA lets most of the first trials through, so about 50 trial-epochs, 4-5 minutes;
then the final retrain on all 10000 samples on both cores, about 1.5 minutes. No baselines (a seed
preset trains 30-50 epochs) and no finalists (retraining the top two at 10 epochs would add about two
minutes on these cores): the wide space has both.
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
