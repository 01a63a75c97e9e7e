"""The scale benchmark's space (benchmarks/bench_scale.py): sixteen knobs, like a wide search, for synthetic trials.

Trials here are search.synthetic's (a sleep and a learning curve per epoch), so what is measured is the
driver: Tune, TPE over 16 parameters, ASHA, and our records, report and watchers.
"""

SEARCH = {
    "samples": 1000,  # the benchmark sets 1,000 or 10,000 with --samples
    "max_epochs": 9,
    "grace_period": 1,  # rungs at 1 and 3: most trials end there, as in a large search
    "reduction_factor": 3,
    "max_concurrent": 16,  # as Ray Tune's own bookkeeping test
    "startup_trials": 16,
    "checkpoint_every": 3,  # plus the rungs and the last epoch, as trials checkpoint
    "finalists": 0,
}


def space(hp):
    hp.Choice("input_mode", ["rgb", "occupancy"])
    hp.Choice("pose", ["as_is", "principal_axes"])
    hp.Choice("kernel_size", [3, 5])
    hp.Boolean("residual")
    hp.Fixed("padding", "same")
    hp.Int("blocks", 1, 4)
    hp.Int("filters", 8, 64, step=8)
    hp.Float("filter_growth", 1.0, 2.0, step=0.5)
    hp.Boolean("batchnorm")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Choice("head", ["flatten", "global_avg"])
    hp.Int("dense_units", 32, 256, step=32)
    hp.Float("head_dropout", 0.0, 0.5, step=0.1)
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("schedule", ["constant", "cosine"])
    hp.Float("augment", 0.0, 1.0, step=0.25)
