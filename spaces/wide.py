"""Wide space: every architecture and training knob the model has, for a GPU- or cluster-sized search.

Sized by time, not by a count: the search proposes trials for `time_budget_s`, then the top three
retrain at the full budget and the best is retrained once more and tested, about 8 minutes in all on
one H200. A faster GPU (MPS, bfloat16) buys more samples. Why each setting: docs/design.md, "The
shipped spaces". Run it on a 16-core, 1-GPU machine with (resources are flags, not SEARCH: a space file
that asked for GPUs would leave its trials unschedulable on a CPU-only machine):

    python -m search run spaces/wide.py --backend jax --gpus-per-trial 0.0625 --cpus-per-trial 1 --mps
"""

SEARCH = {
    "time_budget_s": 210,  # the search stage; the finalists and the final test follow
    "samples": 400,  # a cap: the budget ends the search first
    "startup_trials": 16,  # one wave of 16 concurrent trials is proposed before any result anyway
    "max_epochs": 150,  # augmented, regularized models need 100-150 epochs
    "grace_period": 10,  # rungs at 10, 30 and 90: slow starters get 10 epochs
    "reduction_factor": 3,
    "brackets": 1,
    "finalists": 3,  # most trials stop at 10 or 30 epochs, and one seed's ranking is partly luck
    "checkpoint_every": 10,  # plus ASHA's rungs and the last epoch
    "steps_per_execution": 8,
    "baselines": ["machinecurve", "medium", "notebook"],
}


def space(hp):
    hp.Choice("input_mode", ["rgb", "occupancy"])
    # The input's pose (search.pose): as it is, its principal-axes frame, or both; views of the frame in
    # training and averaged at validation and test (1 = none).
    if hp.Choice("pose", ["as_is", "principal_axes", "both"]) == "both":
        if hp.Choice("fusion", ["channels", "streams"]) == "streams":
            hp.Choice("raw_stream_width", [0.5, 1.0])  # the as-is trunk's filters, relative to the pose trunk's
    hp.Choice("train_views", [1, 4, 8])
    hp.Choice("tta_views", [1, 4, 8])
    hp.Choice("kernel_size", [3, 5])
    hp.Boolean("residual")
    padding = hp.Choice("padding", ["same", "valid"])
    # 'valid' convs shrink the 16^3 volume, which runs out after 2 blocks (after 1 for residual
    # blocks of kernel 5: the search's feasibility check rejects those).
    hp.Int("blocks", 1, 4 if padding == "same" else 2)
    hp.Int("filters", 8, 256, sampling="log")  # block 0
    hp.Float("filter_growth", 1.0, 2.0, step=0.5)  # block i: filters * growth**i, grown at most to 256
    hp.Boolean("batchnorm")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Choice("head", ["flatten", "global_avg"])
    hp.Choice("dense_units", [0, 64, 128, 256, 512])
    hp.Float("head_dropout", 0.0, 0.5, step=0.1)
    hp.Float("augment", 0.0, 1.0, step=0.25)
    hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("schedule", ["constant", "cosine"])
    hp.Choice("batch_size", [32, 64, 100, 128])
    # No "epochs": every trial's budget is max_epochs, and ASHA decides how much of it a trial gets.
