"""Small space for the fault-injection tests: every configuration trains, and none is stopped early.

'same' padding keeps every architecture feasible and grace_period = max_epochs keeps ASHA from
stopping trials, so each trial runs all its epochs and a test can catch one mid-run.
"""

SEARCH = {
    "samples": 4,
    "max_epochs": 4,
    "grace_period": 4,
    "reduction_factor": 2,
    "finalists": 0,  # the fault and S3 tests watch the search stage (interrupted.py covers the other)
    "checkpoint_every": 1,  # the fault tests resume a trial from the epoch before its node died
}


def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Int("blocks", 1, 2)
    hp.Int("filters", 4, 8, step=4)
    hp.Int("dense_units", 8, 16, step=8)
