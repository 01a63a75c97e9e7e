"""Three search trials, then two finalists, one trial at a time, for the test that stops the driver in the
search stage (SIGTERM) and kills the resumed one in the finalist stage (SIGKILL).

Every configuration trains (same padding) and none is stopped early (grace_period = max_epochs); one
trial at a time lets the test catch one finished and one running in either stage.
"""

SEARCH = {
    "samples": 3,
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
    hp.Int("dense_units", 8, 16, step=8)
