"""Tiny space for the end-to-end tests: seconds per trial, and some infeasible configurations.

'valid' padding with 3 blocks runs out of volume (16 -> 7 -> 2 -> 0), so the search must cope with
architectures that params.check rejects. The machinecurve preset runs first as a baseline row.
"""

SEARCH = {
    "samples": 4,
    "max_epochs": 3,
    "grace_period": 1,
    "reduction_factor": 2,
    "baselines": ["machinecurve"],  # a reference row, trained first under the same scheduler
    "finalists": 2,  # the top two retrained for max_epochs: the winner comes from these
    "checkpoint_every": 1,
}


def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Choice("padding", ["valid", "same"])
    hp.Int("blocks", 1, 3)
    hp.Int("filters", 4, 8, step=4)
    hp.Int("dense_units", 8, 16, step=8)
