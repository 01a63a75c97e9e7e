"""Leaderboard stage: ranking, statuses, long-format epochs and atomic CSVs, from plain records (no Ray)."""

from __future__ import annotations

import math

import pandas as pd

from search import leaderboard
from search.protocol import Status
from search.leaderboard import Records
from searching import read_csv


def _epoch(val_accuracy, val_loss=1.0):
    return {"loss": 1.0, "accuracy": 0.5, "val_loss": val_loss, "val_accuracy": val_accuracy}


def _records() -> Records:
    records = Records()
    for epoch, acc in enumerate([0.5, 0.7, 0.6], start=1):  # best at epoch 2
        records.report("a", {"blocks": 2, "padding": "same"}, "", {**_epoch(acc, 2 - acc), "epoch": epoch, "status": "running", "node": "n1"})
    records.report("a", {"blocks": 2, "padding": "same"}, "", {**_epoch(0.6), "epoch": 3, "status": "completed"})
    records.finish("a")
    records.report("b", {"blocks": 1, "padding": "valid"}, "", {**_epoch(0.8), "epoch": 1, "status": "running", "param_count": 10})
    records.finish("b")  # ended by ASHA
    records.report("c", {"blocks": 4, "padding": "valid"}, "", {"val_accuracy": 0.0, "epoch": 0, "status": "infeasible", "error": "size 0"})
    records.finish("c")
    records.report("d", {"blocks": 2}, "machinecurve", {**_epoch(0.65), "epoch": 1, "status": "completed"})
    records.finish("d")
    return records


def test_ranking_statuses_and_columns():
    board = leaderboard.leaderboard(_records())
    assert board["trial_id"].tolist() == ["b", "a", "d", "c"]
    assert board["rank"].tolist() == [1, 2, 3, 4]
    assert board["status"].tolist() == ["stopped", "completed", "baseline", "infeasible"]
    a = board.set_index("trial_id").loc["a"]
    assert (a["best_val_accuracy"], a["best_epoch"], a["epochs_trained"]) == (0.7, 2, 3)
    assert math.isclose(a["val_loss_at_best"], 1.3) and a["node"] == "n1"
    assert board.columns[: len(leaderboard.LEADERBOARD_COLUMNS)].tolist() == leaderboard.LEADERBOARD_COLUMNS
    assert {"blocks", "padding"} <= set(board.columns)
    assert board.set_index("trial_id").loc["c", "error"] == "size 0"


def test_restart_from_older_checkpoint_replaces_later_epochs():
    records = _records()
    ended = (records.trials["a"].epochs.copy(), records.trials["a"].status)
    records.report("a", {}, "", {**_epoch(0.55), "epoch": 2, "status": "running"})  # a lagging resume reruns it
    assert (records.trials["a"].epochs, records.trials["a"].status) == ended  # an ended trial keeps its record
    records.trials["a"].status = "running"  # a running trial Tune restarted from an older checkpoint (a lost worker)
    records.report("a", {}, "", {**_epoch(0.55), "epoch": 2, "status": "running"})
    assert sorted(records.trials["a"].epochs) == [1, 2]
    assert records.trials["a"].epochs[2]["val_accuracy"] == 0.55


def test_write_is_complete_and_round_trips(tmp_path):
    records = _records()
    board = leaderboard.write(tmp_path, records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epochs.csv", "leaderboard.csv", "trials.json"]
    assert len(read_csv(tmp_path / "leaderboard.csv")) == len(board) == 4
    epochs = read_csv(tmp_path / "epochs.csv")
    assert epochs.groupby("trial_id").size().to_dict() == {"a": 3, "b": 1, "d": 1}
    again = Records.load(tmp_path)
    pd.testing.assert_frame_equal(leaderboard.leaderboard(again), board)
    assert "rank" in leaderboard.table(board, top=2) and len(leaderboard.table(board, top=2).splitlines()) == 3


def test_a_trial_restarted_on_another_node_shows_each_node_in_order():
    records = Records()
    for epoch, node, resumed in [(1, "worker-1", 0), (2, "worker-1", 0), (3, "worker-2", 2), (4, "worker-2", 2)]:
        records.report("t", {}, "", {**_epoch(0.5), "epoch": epoch, "status": "running", "node": node, "resumed_from": resumed})
    assert records.trials["t"].nodes() == "worker-1>worker-2"
    epochs = leaderboard.epochs(records)
    assert epochs[["node", "resumed_from"]].values.tolist() == [["worker-1", 0], ["worker-1", 0], ["worker-2", 2], ["worker-2", 2]]
    records.report("u", {}, "", {"val_accuracy": 0.0, "epoch": 0, "status": "infeasible", "node": "worker-2"})
    assert records.trials["u"].nodes() == "worker-2"  # no epochs: where it was rejected


def test_mark_lost_flags_only_unfinished_trials_the_restored_experiment_does_not_know():
    records = _records()
    records.report("e", {"blocks": 1}, "", {**_epoch(0.4), "epoch": 1, "status": "running"})  # its driver died
    records.report("f", {"blocks": 1}, "", {**_epoch(0.3), "epoch": 1, "status": "running"})  # known: resumed
    records.mark_lost(known={"f"})
    statuses = {t: r.status for t, r in records.trials.items()}
    assert statuses == {"a": "completed", "b": "stopped", "c": "infeasible", "d": "baseline", "e": "lost", "f": "running"}
    assert "driver died" in records.trials["e"].error and records.trials["e"].epochs  # its epochs are kept



def test_a_finished_trial_keeps_its_outcome_when_a_restored_experiment_later_fails_it():
    records = _records()
    records.finish("a", error="ValueError: Could not recover from checkpoint as it does not exist on storage anymore.")
    records.finish("b", error="RayActorError: the actor died")
    assert (records.trials["a"].status, records.trials["a"].error) == ("completed", "")
    assert records.trials["b"].status == "stopped"
    records.report("e", {}, "", {**_epoch(0.4), "epoch": 1, "status": "running"})
    records.finish("e", error="RayActorError: the actor died")
    assert (records.trials["e"].status, records.trials["e"].error) == ("error", "RayActorError: the actor died")


def test_finalists_rank_first_and_keep_their_origin():
    records = _records()
    records.report("f1", {"blocks": 1, "padding": "valid"}, "", {**_epoch(0.75), "epoch": 1, "status": "completed"},
                   stage="finalist", finalist_of="b")
    records.report("f2", {"blocks": 2}, "machinecurve", {**_epoch(0.6), "epoch": 1, "status": "completed"},
                   stage="finalist", finalist_of="d")
    records.finish("f1")
    records.finish("f2")
    board = leaderboard.leaderboard(records)
    # Rank 1 is the best finalist, even though a search trial scored higher at its (shorter) budget.
    assert board["trial_id"].tolist() == ["f1", "f2", "b", "a", "d", "c"]
    assert board["stage"].tolist() == ["finalist"] * 2 + ["search"] * 4
    assert board.set_index("trial_id").loc["f1", "finalist_of"] == "b"
    assert board.set_index("trial_id").loc["f2", "status"] == "completed"  # a finalist of a baseline is no reference row
    records.report("f3", {}, "", {**_epoch(0.99), "epoch": 1, "status": "running"}, stage="finalist", finalist_of="a")
    records.mark_lost(known=set(), stage="finalist")  # its driver died: below the search, never the winner
    assert leaderboard.leaderboard(records)["trial_id"].tolist() == ["f1", "f2", "b", "a", "d", "c", "f3"]


def test_mark_lost_touches_only_its_own_stage():
    records = Records()
    records.report("s", {}, "", {**_epoch(0.5), "epoch": 1, "status": "running"})
    records.report("f", {}, "", {**_epoch(0.5), "epoch": 1, "status": "running"}, stage="finalist", finalist_of="s")
    records.mark_lost(known=set(), stage="finalist")
    assert records.trials["f"].status == Status.LOST and records.trials["s"].status == "running"


def test_records_from_before_stages_load_as_search_trials(tmp_path):
    leaderboard.write(tmp_path, _records())
    data = (tmp_path / "trials.json").read_text()
    import json

    old = {tid: {k: v for k, v in r.items() if k not in ("stage", "finalist_of")} for tid, r in json.loads(data).items()}
    assert {r.stage for r in Records.from_json(old).trials.values()} == {"search"}
