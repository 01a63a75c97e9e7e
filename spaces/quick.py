"""Quick demo space: a search plus the final retrain in well under 15 minutes on a 2-core CPU.

Budget, measured on 2 cores (README, "Benchmarks"): a trial of these small models trains one epoch
of the 8000 search samples in well under a minute on one core. 6 trials of at most 3 epochs, two at
a time, with ASHA's rungs at 1, 2 and 3 epochs, is about 10 epochs of trial work, then the final
retrain of at most 3 epochs on both cores. No baselines: a seed preset trains a far bigger model for
30 or more epochs, which alone would exceed the budget.
"""

SEARCH = {
    "samples": 6,
    "max_epochs": 3,
    "grace_period": 1,
    "reduction_factor": 2,
    "max_concurrent": 2,  # two trials at once, one core each
    "finalists": 2,  # the top two retrain for 3 epochs, two at once: about a minute more
}


def space(hp):
    hp.Choice("padding", ["valid", "same"])
    for i in range(hp.Int("blocks", 1, 2)):
        hp.Int(f"filters_{i}", 4, 8, step=4)
    hp.Int("dense_units", 16, 64, step=16)
    hp.Float("learning_rate", 1e-3, 5e-3, sampling="log")
