"""Three bad trials and one that loses its worker beside two good ones, for the fault-injection tests
(run with --memory-per-trial 1.5).

The bad ones are reference configurations, so each runs exactly once: one raises in epoch 2, one's
loss turns NaN in epoch 2, one's worker dies after uploading epoch 1's checkpoint and before Tune
registers it (all injected, see protocol.FAULTS), and one is a real model too big for
its memory share (one 256-filter block, 8^3 x 256 features into a Dense layer of 2048: about 1 GiB of
weights, plus Adam's slots).
"""

SMALL = {"input_mode": "occupancy", "padding": "same", "blocks": 1, "filters": 4, "dense_units": 8}

SEARCH = {
    "samples": 2,
    "max_epochs": 3,
    "grace_period": 3,  # nothing is stopped early: every status comes from the trial itself
    "reduction_factor": 2,
    "baselines": [
        {"name": "raises", **SMALL, "fault": "raise"},
        {"name": "diverges", **SMALL, "fault": "nan"},
        {"name": "lost", **SMALL, "fault": "lost"},
        {"name": "too-big", **SMALL, "filters": 256, "blocks": 1, "dense_units": 2048},
    ],
    "finalists": 0,
    "checkpoint_every": 1,
}


def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Int("filters", 4, 8, step=4)
    hp.Int("dense_units", 8, 16, step=8)
