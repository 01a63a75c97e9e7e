"""Accuracy against size: the quick space's two-trunk digit reader with its width and head left open, searched for
the Pareto front of validation accuracy and parameter count (about 12 minutes on a 2-core CPU).

The quick space (spaces/quick.py) fixes the widths that read digits best; here TPE is told each trial's weights
beside its accuracy, so it looks for the models that give up the least accuracy for their size. ASHA's rungs sort
fronts (policy.ParetoASHA), the two finalists come from the front nearest its knee, and the final test is of the
finalists' knee (docs/design.md, "Accuracy against cost"). `final RUN --pareto "param_count<=30000"` then
retrains and tests the most accurate trial under a size.
"""

SEARCH = {
    "samples": 10,
    "time_budget_s": 360,  # the search stage; then 2 finalists and the final retrain
    "max_epochs": 8,
    "grace_period": 2,
    "reduction_factor": 3,
    "max_concurrent": 2,  # two trials at once, one core each
    "finalists": 2,
    "objectives": ["val_accuracy", "param_count"],
    "limits": {"param_count": 150_000},  # refused before training: the widest trunks with the widest heads
}


def space(hp):
    hp.Fixed("pose", "both")
    hp.Fixed("fusion", "streams")
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Fixed("blocks", 3)
    hp.Choice("filters", [8, 16, 32])  # every block (filter_growth 1)
    hp.Fixed("filter_growth", 1.0)
    hp.Choice("raw_stream_width", [0.5, 1.0])
    hp.Fixed("batchnorm", True)
    hp.Float("dropout", 0.1, 0.3, step=0.1)
    hp.Choice("dense_units", [32, 64, 128])
    hp.Fixed("head_dropout", 0.1)
    hp.Float("learning_rate", 1.5e-3, 3e-3, sampling="log")
    hp.Fixed("schedule", "cosine")
    hp.Fixed("batch_size", 64)
