"""Quick demo space: a search plus the final retrain in under 15 minutes on a 2-core CPU.

Budget. One epoch of the machinecurve model (2 blocks of 32/64 filters, rgb) on the 8000 training
samples takes ~30-40 s on 2 cores. The largest model here ('same' padding, 2 blocks of 16 filters,
rgb) needs ~2/3 of its compute per sample, most need far less. 6 trials x at most 4 epochs, 2 trials
at a time on one core each, is at most 12 rounds of under a minute even if ASHA stopped nothing; with
rungs at 1, 2 and 4 epochs it stops about half of the trials after their first epoch. The final
retrain adds 4 epochs, and Ray and TensorFlow start-up about a minute. No baselines: a preset
trains a bigger model for 30 or more epochs, which alone would exceed the budget.
"""

SEARCH = {
    "samples": 6,
    "max_epochs": 4,
    "grace_period": 1,
    "reduction_factor": 2,
    "max_concurrent": 2,  # two trials at once, one core each
}


def space(hp):
    hp.Choice("input_mode", ["occupancy", "rgb"])
    hp.Choice("padding", ["valid", "same"])
    for i in range(hp.Int("blocks", 1, 2)):
        hp.Int(f"filters_{i}", 4, 16, step=4)
    hp.Int("dense_units", 16, 64, step=16)
    hp.Float("learning_rate", 3e-4, 3e-3, sampling="log")
