"""Wide space: every architecture and training knob the model has, for a GPU- or cluster-sized search.

It includes the known-good models: 4 'same' blocks of 32/64/128/256 filters with BatchNorm, global
average pooling, Dropout, augmentation 0.5-0.75, a cosine schedule, 100-150 epochs (88-90 % test by
hand on one H100). The baselines train the three seed presets next to the sampled trials.

The epoch budget is the fidelity, not a knob: every trial may train up to max_epochs = 150 (augmented,
regularized models need 100-150), ASHA stops the weak ones, and a cosine schedule decays over
max_epochs in every trial (schedule_epochs), so a trial judged at epoch 10 still has its peak rate.
- grace_period 10: augmented models start slowly; at epoch 3 they looked worse than plain ones that
  later lost to them. reduction_factor 3: rungs at 10, 30 and 90 epochs, then 150; a third go on.
- finalists 3: the top three retrain for 150 epochs with a second seed, in parallel; the best names
  the winner (most trials stopped at 10 or 30 epochs, and one seed's ranking is partly luck).
- checkpoint_every 10 (plus ASHA's rungs and the last epoch): a lost trial redoes at most 9 epochs,
  a few seconds on a GPU; steps_per_execution 8: fewer Python round trips per epoch.

Budget on one H100, `--gpus-per-trial 0.0625 --cpus-per-trial 1` (up to 16 trials at once), assuming
0.5-1.0 s of wall per trial-epoch in the search (the whole machine's rate) and 0.5-1.0 s per epoch of
a trial running nearly alone (the finalists, the final retrain):
- a trial costs about 10 + 20/3 + 60/9 + 60/27 = 25.6 epochs under synchronous ASHA (everyone to 10,
  a third to 30, a ninth to 90, a 27th to 150); asynchronous ASHA promotes more early on: ~30.
- search: (24 samples + 3 baselines) * 30 = 810 trial-epochs = 405-810 s, plus ~40 s of trial
  start-ups (a new actor, Keras import and compile each, 16 at a time).
- finalists: 3 trials of 150 epochs at once = 75-150 s.
- final retrain: at most 150 epochs of 10000 samples (1.25x the search's) = 95-190 s.
- Ray start, data and driver: ~60 s.
Total 675-1250 s: 11-21 minutes. At the fast end there is room for ~60 samples (`--samples 60`).
Measured 2026-11-22 on one H100, JAX: 30 trials, 1000 trial-epochs, 6.5 minutes, 84.15 % test; with
`--samples 48`: 54 trials, 1920 trial-epochs, 12.8 minutes, 84.2 % (README, "Benchmarks").

Run it on a 16-core, 1-GPU machine with (resources are flags, not SEARCH: a space file that asked for
GPUs would leave its trials unschedulable on a CPU-only machine):

    python -m search run spaces/wide.py --backend jax --gpus-per-trial 0.0625 --cpus-per-trial 1
"""

SEARCH = {
    "samples": 24,
    "max_epochs": 150,
    "grace_period": 10,
    "reduction_factor": 3,
    "finalists": 3,
    "checkpoint_every": 10,
    "steps_per_execution": 8,
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
    hp.Choice("batch_size", [32, 64, 100, 128])
    # No "epochs": every trial's budget is max_epochs, and ASHA decides how much of it a trial gets.
