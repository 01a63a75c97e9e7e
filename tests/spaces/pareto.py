"""Multi-objective space for the Pareto tests: accuracy against FLOPs, with a limit that refuses the largest
configurations before they train (the synthetic trial reports FLOPs; it builds no model)."""

SEARCH = {
    "samples": 12,
    "max_epochs": 4,
    "grace_period": 1,
    "reduction_factor": 2,
    "finalists": 2,
    "checkpoint_every": 1,
    "objectives": ["val_accuracy", "flops"],
    "limits": {"flops": 6_000_000},
}


def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Int("blocks", 1, 2)
    hp.Int("filters", 4, 16, step=4)
    hp.Int("dense_units", 8, 32, step=8)
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
