"""A multi-objective search end to end: the study told every objective, limits refused before training (and latency
after the first epoch), the front on the leaderboard and in the report, and the final picked from it."""

from __future__ import annotations

import json

import optuna
import pytest
import ray

from search import cli, synthetic
from search import study as run_study
from search.leaderboard import Records
from searching import SPACES, read_csv, run_in_process
from test_objectives import _brute_front

TRAINED = ("completed", "stopped")


@pytest.mark.long
def test_a_multi_objective_search_keeps_its_front_and_the_final_is_picked_from_it(small_data_file, tmp_path, capsys):
    # The subject is the pipeline: synthetic trials (they report FLOPs); the final retrain and test are real Keras.
    # Both commands run in this process and one Ray (the second joins the first's): a Ray start is the costly part.
    try:
        _checked(capsys, tmp_path, small_data_file)
    finally:
        ray.shutdown()


def _checked(capsys, tmp_path, small_data_file) -> None:
    assert cli.main(["run", str(SPACES / "pareto.py"), "--data", str(small_data_file), "--results", str(tmp_path),
                     "--name", "mo", "--no-final"], trainable=synthetic.trainable(0.02)) == 0
    console = capsys.readouterr().out
    run_dir = tmp_path / "mo"
    board = read_csv(run_dir / "leaderboard.csv")
    searched = board[board["stage"] == "search"]
    assert len(searched) == 12  # the space's samples

    # Over the FLOPs limit: refused before training, and the study told so (a constraint above 0).
    refused = searched[searched["error"].str.contains("> limit 6,000,000", na=False)]
    assert len(refused) >= 1 and refused["status"].eq("infeasible").all() and refused["epochs_trained"].eq(0).all()
    assert (refused["flops"] > 6e6).all() and (board.loc[board["epochs_trained"] > 0, "flops"] <= 6e6).all()
    study = run_study.load(run_dir)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    told = {t.number: t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    assert len(told) == 12
    assert sum(t.constraints["flops"] > 0 for t in told.values()) == len(refused)
    assert all(t.values[1] <= 6e6 for t in told.values() if t.constraints["flops"] <= 0)

    # The front as brute force finds it among the trained search trials; the finalists come from it, knee first.
    trained = searched[searched["status"].isin(TRAINED)]
    assert trained["pareto"].tolist() == _brute_front(trained[["best_val_accuracy", "flops"]].to_numpy(), ["max", "min"])
    records = Records.load(run_dir)
    knee = records.front()[0].trial_id
    finalists = board[board["stage"] == "finalist"]
    assert len(finalists) == 2 and knee in set(finalists["finalist_of"])
    assert set(finalists["finalist_of"]) <= set(trained.loc[trained["pareto"], "trial_id"])
    assert json.loads((run_dir / "best.json").read_text())["trial_id"] == board.iloc[0]["trial_id"]
    assert console.rstrip().splitlines()[-1].startswith(
        f"Pareto front of val_accuracy against flops: {int(trained['pareto'].sum())} search trials; its knee {knee} (")
    page = (run_dir / "report.html").read_text()
    assert "Accuracy against cost" in page and (run_dir / "pareto_front.png").stat().st_size > 0
    assert (run_dir / "hypervolume.png").is_file()

    # final --pareto: the most accurate trained trial within the bound (a finalist first), retrained and tested once.
    bound = int(trained.loc[trained["pareto"], "flops"].median())
    fitting = board[board["status"].isin(TRAINED) & (board["flops"] <= bound)]
    fitting = fitting.sort_values(["stage", "best_val_accuracy"], ascending=[True, False])  # "finalist" < "search"
    expected = fitting.iloc[0]["trial_id"]
    assert cli.main(["final", str(run_dir), "--pareto", f"flops<={bound}"]) == 0
    assert f"within flops<={bound} ({expected}): test accuracy" in capsys.readouterr().out
    tested = json.loads((run_dir / f"final-pareto-{expected}" / "test_metrics.json").read_text())
    assert tested["params"] == records.pick(within=f"flops<={bound}").params and 0 <= tested["accuracy"] <= 1


LIMITED = '''SEARCH = {
    "samples": 1, "max_epochs": 2, "grace_period": 1, "finalists": 0, "max_concurrent": 1,  # one reused trial process
    "objectives": ["val_accuracy", "latency_ms"],
    "limits": {"param_count": 60_000, "latency_ms": 1e-6},  # every trained model is slower than a femtosecond
    "baselines": [{"name": "small", "blocks": 1, "filters": 4, "dense_units": 8, "padding": "same"},
                  {"name": "wide", "blocks": 1, "filters": 32, "dense_units": 8, "padding": "same"}],
}

def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Fixed("blocks", 1)
    hp.Fixed("filters", 4)
    hp.Fixed("dense_units", 8)
'''


@pytest.mark.long
def test_real_trials_refuse_size_before_training_and_latency_after_the_first_epoch(small_data_file, tmp_path, capsys):
    space = tmp_path / "limited.py"
    space.write_text(LIMITED)
    code = run_in_process("run", str(space), "--data", str(small_data_file), "--results", str(tmp_path), "--name", "lim",
                          "--no-final", epoch_s=None)  # real trials, the CLI in this process
    # Every trained model broke the latency limit: none may be picked, and the run says so in one line.
    error = capsys.readouterr().err
    assert code == 2 and "error: no trial trained successfully" in error, error[-3000:]
    board = read_csv(tmp_path / "lim" / "leaderboard.csv").set_index("baseline")
    wide, small = board.loc["wide"], board.loc["small"]
    # The wide model's weights, counted from the built model, break the limit: no epoch trained.
    assert wide["status"] == "infeasible" and wide["epochs_trained"] == 0 and wide["param_count"] > 60_000
    assert wide["error"] == f"param_count {wide['param_count']:,} > limit 60,000"
    # The small one trains its first epoch, is timed on its own worker, and is refused on that measurement.
    assert small["status"] == "infeasible" and small["epochs_trained"] == 1 and small["error"].startswith("latency_ms ")
    assert small["latency_ms"] > 0 and "CPUs), tensorflow" in small["latency_device"]
    assert small["param_count"] < 60_000 and small["flops"] > 0
