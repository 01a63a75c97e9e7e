"""Wide space: every architecture and training knob the model has, for a cluster-sized search.

It includes the known-good model (~84 % test): 4 'same' blocks of 32/64/128/256 filters with
BatchNorm, global average pooling, Dropout 0.5, augmentation, Adam 1e-3, 30 epochs. The baselines
train the three seed presets next to the 40 sampled trials.
"""

SEARCH = {
    "samples": 40,
    "max_epochs": 30,
    "grace_period": 3,
    "reduction_factor": 3,
    "baselines": ["machinecurve", "medium", "notebook"],
}


def space(hp):
    hp.Choice("input_mode", ["rgb", "occupancy"])
    hp.Choice("kernel_size", [3, 5])
    hp.Boolean("residual")
    padding = hp.Choice("padding", ["same", "valid"])
    # 'valid' convs shrink the 16^3 volume, which runs out after 2 blocks (after 1 for residual
    # blocks of kernel 5: the search's feasibility check rejects those).
    for i in range(hp.Int("blocks", 1, 4 if padding == "same" else 2)):
        hp.Int(f"filters_{i}", 8, 256, sampling="log")
    hp.Boolean("batchnorm")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Choice("head", ["flatten", "global_avg"])
    hp.Choice("dense_units", [0, 64, 128, 256, 512])
    hp.Float("head_dropout", 0.0, 0.5, step=0.1)
    hp.Float("augment", 0.0, 1.0, step=0.25)
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("schedule", ["constant", "cosine"])
    hp.Int("epochs", 10, 30, step=5)
    hp.Choice("batch_size", [32, 64, 100, 128])
