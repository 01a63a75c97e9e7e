"""Objectives, limits and the Pareto front (search.objectives) and what the records and ASHA make of them: against
brute force, from plain records (no Ray)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from search import leaderboard, objectives
from search.errors import UserError
from search.leaderboard import Records
from search.objectives import Objectives
from search.policy import ParetoASHA
from search.protocol import Stage, Status
from search.settings import Settings

ACCURACY_AND_SIZE = Objectives(("val_accuracy", "param_count"))


def _dominates(a, b, directions) -> bool:
    better = [(x >= y) if d == "max" else (x <= y) for x, y, d in zip(a, b, directions)]
    strictly = [(x > y) if d == "max" else (x < y) for x, y, d in zip(a, b, directions)]
    return all(better) and any(strictly)


def _brute_front(points, directions) -> list[bool]:
    return [not any(_dominates(q, p, directions) for q in points) for p in points]


@pytest.mark.parametrize("names", [("val_accuracy", "param_count"), ("val_accuracy", "flops", "latency_ms")])
def test_front_ranks_match_brute_force_layer_by_layer(names):
    rng = np.random.default_rng(1)
    points = np.c_[rng.random(60).round(2), rng.integers(1, 20, (60, len(names) - 1))]  # ties on purpose
    directions = [objectives.DIRECTIONS[n] for n in names]
    ranks, left, layer = objectives.front_ranks(points, names), list(range(len(points))), 1
    while left:
        on = [i for i, is_on in zip(left, _brute_front(points[left], directions)) if is_on]
        assert sorted(np.flatnonzero(ranks == layer)) == on
        left, layer = [i for i in left if i not in on], layer + 1


def test_knee_is_the_front_point_nearest_the_ideal_one_and_hypervolume_is_the_dominated_share():
    names = ("val_accuracy", "param_count")
    front = np.array([[0.9, 100.0], [0.8, 20.0], [0.5, 10.0]])
    assert objectives.knee(front, names) == 1  # scaled: (0, 1), (0.25, 0.11), (1, 0)
    # One point (0.5 accuracy, half the worst cost) dominates a quarter of the unit box.
    assert objectives.hypervolume(np.array([[0.5, 50.0]]), names, [1.0, 100.0]) == pytest.approx(0.25)
    grown = [objectives.hypervolume(front[:k], names, [1.0, 100.0]) for k in (1, 2, 3)]
    assert grown == sorted(grown) and grown[-1] > grown[0]


def test_limits_name_what_they_refuse_and_tell_optuna_the_excess():
    aims = Objectives(limits=(("param_count", 200_000.0), ("latency_ms", 2.0)))
    assert aims.over_limits({"param_count": 351_210, "flops": 9e9}) == "param_count 351,210 > limit 200,000"
    assert aims.over_limits({"param_count": 100, "latency_ms": 2.5}) == "latency_ms 2.5 > limit 2"
    assert aims.over_limits({"param_count": 100}) is None  # latency not measured yet: not judged
    assert aims.constraints({"param_count": 300_000, "latency_ms": 1.0}) == {"param_count": 0.5, "latency_ms": -0.5}
    assert aims.measures_latency() and not ACCURACY_AND_SIZE.measures_latency()


@pytest.mark.parametrize("search, message", [
    ({"objectives": ["param_count"]}, "must start with 'val_accuracy'"),
    ({"objectives": ["val_accuracy", "speed"]}, "each must be one of"),
    ({"objectives": {"val_accuracy": "max", "param_count": "max"}}, "toward 'min'"),
    ({"limits": {"val_accuracy": 0.9}}, "limits are on costs"),
    ({"objectives": ["val_accuracy", ["param_count"]]}, "each must be one of"),
    ({"limits": {"latency_ms": -1}}, "must be a number > 0"),
    ({"objectives": ["val_accuracy", "flops"], "brackets": 2}, "must be 1 in a multi-objective search"),
])
def test_bad_objectives_and_limits_are_one_line_naming_the_key(search, message):
    with pytest.raises(UserError, match=message):
        Settings(**search)


def test_settings_keep_objectives_and_limits_through_run_json():
    settings = Settings(objectives={"val_accuracy": "max", "latency_ms": "min"}, limits={"param_count": 200_000})
    assert settings.goals() == Objectives(("val_accuracy", "latency_ms"), (("param_count", 200_000.0),))
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings().goals() == Objectives() and not Settings().goals().multi  # accuracy alone, as before


def _random_records(seed: int = 0) -> Records:
    """Search trials of random accuracy and size (some stopped, one failed, one infeasible) and two finalists."""
    rng = np.random.default_rng(seed)
    records = Records(objectives=ACCURACY_AND_SIZE)
    for i in range(30):
        tid = f"t{i:02d}"
        accuracy, size = round(float(rng.random()), 3), int(rng.integers(1_000, 100_000))
        status = Status.STOPPED if i % 3 else Status.COMPLETED
        records.report(tid, {"filters": 4 + i}, "", {"loss": 1, "accuracy": 0.5, "val_loss": 1, "val_accuracy": accuracy,
                                                  "epoch": 1, "status": status, "param_count": size})
        records.finish(tid)
    records.report("failed", {}, "", {"val_accuracy": 0.0, "epoch": 0, "status": Status.ERROR, "error": "boom"})
    records.report("big", {}, "", {"val_accuracy": 0.0, "epoch": 0, "status": Status.INFEASIBLE, "param_count": 1,
                                   "error": "param_count 1 > limit 0"})
    for origin in [r.trial_id for r in records.finalists(2)]:
        source = records.trials[origin]
        records.report(f"f-{origin}", source.params, "", {"loss": 1, "accuracy": 0.5, "val_loss": 1, "epoch": 2,
                                                          "val_accuracy": source.best()[1]["val_accuracy"] + 0.01,
                                                          "status": Status.COMPLETED, "param_count": source.param_count},
                       stage=Stage.FINALIST, finalist_of=origin)
    return records


def test_the_leaderboard_marks_the_front_as_brute_force_finds_it_and_ranks_its_knee_first():
    records = _random_records()
    board = leaderboard.leaderboard(records)
    assert board.columns.tolist()[:len(leaderboard.LEADERBOARD_COLUMNS) + len(leaderboard.PARETO_COLUMNS)] == \
        leaderboard.LEADERBOARD_COLUMNS + leaderboard.PARETO_COLUMNS
    searched = board[(board["stage"] == "search") & board["best_val_accuracy"].notna() & (board["status"] != "error")]
    points = searched[["best_val_accuracy", "param_count"]].to_numpy(float)
    assert searched["pareto"].tolist() == _brute_front(points, ["max", "min"])
    assert board.loc[board["trial_id"].isin(["failed", "big"]), "pareto"].eq(False).all()
    # The search's knee: nearest the ideal point; the finalists (its neighbours on the front) rank above the search.
    front = searched[searched["pareto"]]
    knee = front.iloc[objectives.knee(front[["best_val_accuracy", "param_count"]].to_numpy(float), ACCURACY_AND_SIZE.names)]
    assert records.front()[0].trial_id == knee["trial_id"] == records.finalists(1)[0].trial_id
    assert board["stage"].head(2).eq("finalist").all() and board.iloc[2]["trial_id"] == knee["trial_id"]
    assert records.pick().trial_id == board.iloc[0]["trial_id"]  # the final test is of the finalists' knee
    assert f"its knee {knee['trial_id']}" in records.front_line() and "Pareto front of val_accuracy against param_count" \
        in records.front_line()


def test_pick_within_a_cost_is_the_most_accurate_trial_that_meets_it():
    records = _random_records(seed=3)
    for bound in (5_000, 20_000, 60_000):
        meets = [r for r in records.trials.values() if r.epochs and r.param_count <= bound]
        best_finalist = max((r for r in meets if r.stage == Stage.FINALIST), key=lambda r: r.best()[1]["val_accuracy"],
                            default=None)
        expected = best_finalist or max(meets, key=lambda r: r.best()[1]["val_accuracy"])
        assert records.pick(within=f"param_count<={bound}").trial_id == expected.trial_id
    with pytest.raises(UserError, match="no trained trial meets it"):
        records.pick(within="param_count<=10")
    with pytest.raises(UserError, match="expected COST<=NUMBER"):
        records.pick(within="accuracy>=0.9")


def test_records_written_before_objectives_rank_by_accuracy_alone(tmp_path):
    records = _random_records()
    plain = Records(records.trials)  # no run.json beside it: accuracy alone
    assert [r.trial_id for r in plain.ranked()] == [r.trial_id for r in sorted(records.trials.values(),
                                                                              key=leaderboard.TrialRecord.rank_key)]
    assert "pareto" not in leaderboard.leaderboard(plain).columns and leaderboard.objectives_of(tmp_path) == Objectives()


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def test_pareto_asha_keeps_a_cheap_trial_that_accuracy_alone_would_stop():
    asha = dict(time_attr="training_iteration", metric="val_accuracy", mode="max", max_t=9, grace_period=1,
                reduction_factor=3)
    scheduler = ParetoASHA(ACCURACY_AND_SIZE, (1, 3), **asha)
    for i, (accuracy, size) in enumerate([(0.80, 90_000), (0.78, 80_000), (0.79, 85_000)]):
        scheduler.on_trial_add(None, _Trial(f"big{i}"))
        scheduler.on_trial_result(None, _Trial(f"big{i}"), {"training_iteration": 1, "val_accuracy": accuracy,
                                                            "param_count": size})
    cheap = {"training_iteration": 1, "val_accuracy": 0.50, "param_count": 5_000}
    dominated = {"training_iteration": 1, "val_accuracy": 0.70, "param_count": 95_000}
    for trial_id in ("cheap", "dominated"):
        scheduler.on_trial_add(None, _Trial(trial_id))
    assert scheduler.on_trial_result(None, _Trial("cheap"), cheap) == "CONTINUE"
    assert scheduler.on_trial_result(None, _Trial("dominated"), dominated) == "STOP"
    # Ray's ASHA on accuracy alone, with the same trials at the same rung, stops the cheap one.
    plain = __import__("ray.tune.schedulers", fromlist=["ASHAScheduler"]).ASHAScheduler(**asha)
    for i, accuracy in enumerate([0.80, 0.78, 0.79]):
        plain.on_trial_add(None, _Trial(f"big{i}"))
        plain.on_trial_result(None, _Trial(f"big{i}"), {"training_iteration": 1, "val_accuracy": accuracy})
    plain.on_trial_add(None, _Trial("cheap"))
    assert plain.on_trial_result(None, _Trial("cheap"), cheap) == "STOP"


@pytest.mark.parametrize("multi", [False, True])
def test_a_restored_asha_puts_back_the_rungs_its_trials_had_reached_from_the_records(tmp_path, multi):
    # Tune saves no scheduler state: without the records, a trial resumed at epoch 2 is judged at rung 1 on its
    # epoch-2 accuracy against nobody (the crash test saw one stopped there), and a new one passes rung 1 unjudged.
    from ray.tune.experiment import Trial

    from search.journal import Journal
    from search.policy import ResumableASHA
    from search.rundir import RunDir

    records = Records()
    metrics = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "param_count": 50_000}
    for trial_id, accuracies in (("high", (0.6, 0.7, 0.8)), ("resumed", (0.3, 0.35)), ("ahead", (0.6, 0.6, 0.1))):
        for epoch, accuracy in enumerate(accuracies, 1):
            records.report(trial_id, {}, "", {"epoch": epoch, "val_accuracy": accuracy, **metrics})
    Journal(RunDir(tmp_path).journal).append(records.to_json().values())
    asha = dict(time_attr="training_iteration", max_t=9, grace_period=1, reduction_factor=3, run_dir=tmp_path)
    scheduler = ParetoASHA(ACCURACY_AND_SIZE, (1, 3), **asha) if multi else ResumableASHA(**asha)
    scheduler.set_search_properties("val_accuracy", "max")
    # "ahead": the records reached epoch 3, Tune's lagging state 2: it reports epoch 3 again, and is judged then
    for trial_id, epochs in (("high", 3), ("resumed", 2), ("ahead", 2), ("new", 0)):  # as Tune adds a restored experiment's
        trial = Trial("synthetic_trial", stub=True, trial_id=trial_id)
        if epochs:
            trial.update_last_result({"training_iteration": epochs, "val_accuracy": 0.0})
        scheduler.on_trial_add(None, trial)
    worse = {"training_iteration": 1, "val_accuracy": 0.45, "param_count": 60_000}  # below the cutoff, and bigger
    assert scheduler.on_trial_result(None, Trial("synthetic_trial", stub=True, trial_id="new"), worse) == "STOP"
    again = {"training_iteration": 2, "val_accuracy": 0.35, "param_count": 50_000}  # re-reported after the resume
    assert scheduler.on_trial_result(None, Trial("synthetic_trial", stub=True, trial_id="resumed"), again) == "CONTINUE"
    late = {"training_iteration": 3, "val_accuracy": 0.1, "param_count": 50_000}
    assert scheduler.on_trial_result(None, Trial("synthetic_trial", stub=True, trial_id="ahead"), late) == "STOP"


def test_conditions_parse_and_hold():
    conditions = objectives.parse_condition("latency_ms<=1.5, param_count<2e5")
    assert conditions == [("latency_ms", "<=", 1.5), ("param_count", "<", 200_000.0)]
    assert objectives.meets({"latency_ms": 1.5, "param_count": 1}, conditions)
    assert not objectives.meets({"latency_ms": 1.5}, conditions)  # a cost not measured does not meet it
    assert list(itertools.chain(*objectives.parse_condition("flops<=1_000")))[-1] == 1000.0


def test_crowding_gives_each_front_layer_its_ends_first():
    names = ("val_accuracy", "param_count")
    points = np.array([[0.9, 100.0], [0.8, 50.0], [0.79, 48.0], [0.5, 10.0], [0.6, 60.0]])  # the last: layer 2 alone
    distance = objectives.crowding(points, names)
    assert np.isinf(distance[[0, 3, 4]]).all() and np.isfinite(distance[[1, 2]]).all()
    assert distance[1] == pytest.approx((0.9 - 0.79) / 0.4 + (100 - 48) / 90)


def test_a_multi_objective_space_refuses_warm_start_in_one_line(tmp_path):
    from search import bridge, warmstart
    from searching import SPACES

    with pytest.raises(UserError, match="pareto.py: warm start tells TPE accuracies only"):
        warmstart.read(bridge.load_space(SPACES / "pareto.py"), [tmp_path], "sha")


def test_a_trial_refused_on_latency_after_an_epoch_is_never_picked_nor_a_rungs_point():
    records = Records()
    for tid, accuracy, status in (("slow", 0.9, Status.INFEASIBLE), ("fine", 0.8, Status.COMPLETED)):
        records.report(tid, {}, "", {"loss": 1, "accuracy": 0.5, "val_loss": 1, "val_accuracy": accuracy, "epoch": 1,
                                     "status": status, "latency_ms": 3.0, "error": "latency_ms 3 > limit 2"})
    assert [r.trial_id for r in records.ranked()] == ["fine", "slow"] and records.pick().trial_id == "fine"
    scheduler = ParetoASHA(ACCURACY_AND_SIZE, (1,), time_attr="training_iteration", metric="val_accuracy", mode="max",
                           max_t=9, grace_period=1, reduction_factor=3)
    scheduler.on_trial_add(None, _Trial("slow"))
    refused = {"training_iteration": 1, "val_accuracy": 0.9, "param_count": 10, "status": Status.INFEASIBLE}
    assert scheduler.on_trial_result(None, _Trial("slow"), refused) == "CONTINUE" and not scheduler.recorded[1]


def test_a_trial_over_a_limit_before_a_cost_was_measured_is_told_infeasible_not_failed(tmp_path):
    import optuna

    from search.study_search import StudySearch

    aims = Objectives(("val_accuracy", "latency_ms"), (("param_count", 1000.0),))
    searcher = StudySearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric=list(aims.names),
                           mode=aims.directions(), run_dir=tmp_path, objectives=aims,
                           sampler=optuna.samplers.RandomSampler(seed=0))
    for trial_id, result in (("big", {"val_accuracy": 0.0, "param_count": 5000, "status": "infeasible"}),
                             ("broken", {"val_accuracy": 0.0, "status": "error"})):
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, result)
    big, broken = searcher._ot_study.get_trials()
    assert big.state == optuna.trial.TrialState.COMPLETE and big.constraints == {"param_count": 4.0}
    assert broken.state == optuna.trial.TrialState.FAIL
