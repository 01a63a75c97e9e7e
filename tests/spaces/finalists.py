"""Two search trials, then two finalists one at a time, for the test that kills the driver in the finalist stage.

Every configuration trains (same padding) and none is stopped early (grace_period = max_epochs), so
both search trials become finalists; one finalist at a time lets the test catch one finished and one
running.
"""

SEARCH = {
    "samples": 2,
    "max_epochs": 3,
    "grace_period": 3,
    "reduction_factor": 2,
    "finalists": 2,
    "checkpoint_every": 1,
    "max_concurrent": 1,
}


def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Int("filters", 4, 8, step=4)
    hp.Fixed("dense_units", 8)
