"""StudySearch: the Optuna study travels in Tune's searcher state as bytes, so a restore on a machine that
never had the study's journal file continues the same study (no Ray, no bucket: the pickles Tune makes)."""

from __future__ import annotations

import pickle
import shutil

import optuna
import pytest
from ray.tune.search import Searcher
from ray import cloudpickle

from search import leaderboard
from search import study as run_study
from search import study_search
from search.errors import UserError
from search.journal import Journal
from search.protocol import Status
from search.rundir import RunDir


def _searcher(run_dir, carry_study: bool = True, limit: int | None = None) -> study_search.StudySearch:
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    return study_search.StudySearch(space=space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(0),
                             run_dir=run_dir, carry_study=carry_study, limit=limit, **run_study.searcher_arguments(run_dir))


def test_a_restore_where_the_study_file_is_missing_continues_the_same_study(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir)
    pickled = cloudpickle.dumps(searcher)  # as tuner.pkl holds it: no connection to a file of this machine
    for trial_id in ("a", "b"):
        searcher.suggest(trial_id)
    searcher.on_trial_complete("a", {"val_accuracy": 0.5})
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    RunDir(run_dir).study.unlink()  # "another machine": the live study is not there

    restored = cloudpickle.loads(pickled)
    restored.restore(str(state))
    study = optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    restored.on_trial_complete("b", {"val_accuracy": 0.7})  # the trial the first driver had started
    assert restored.suggest("c") is not None
    study = optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir))
    assert [t.value for t in study.trials] == [0.5, 0.7, None]


def test_a_restore_where_the_study_is_keeps_the_live_one(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir)
    pickled = cloudpickle.dumps(searcher)
    searcher.suggest("a")
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    searcher.suggest("b")  # after the snapshot: the live file is newer, and stays
    restored = cloudpickle.loads(pickled)
    restored.restore(str(state))
    assert len(optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir)).trials) == 2


def test_a_restore_counts_the_trials_the_dead_driver_saw_end_after_the_snapshot_and_fails_the_rest(tmp_path):
    # The races behind a resumed run holding one trial over or under its budget: a trial proposed and ended
    # between two of Tune's snapshots is unknown to the restored experiment, and its end may have reached the
    # records and not the study (Tune records a trial's last result before it tells the searcher) or the reverse
    # (an early stop is told to the searcher first).
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir, limit=8)
    pickled = cloudpickle.dumps(searcher)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_accuracy": 0.5})
    searcher.suggest("b")  # running at the snapshot: the restored experiment resumes it
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    records = leaderboard.Records()
    metrics = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0}

    def trained(trial_id, *accuracies, status=Status.RUNNING):
        searcher.suggest(trial_id)
        for epoch, accuracy in enumerate(accuracies, 1):
            records.report(trial_id, {"x": 0.1}, "", {"epoch": epoch, "val_accuracy": accuracy, **metrics})
        records.report(trial_id, {"x": 0.1}, "", {"status": status})

    trained("c", 0.6, status=Status.COMPLETED)  # ended in both: counts
    searcher.on_trial_complete("c", {"val_accuracy": 0.6})
    trained("d", 0.3)  # running when the driver died: lost, its place proposed again
    trained("e", 0.4, 0.55, status=Status.COMPLETED)  # ended in the records only: counts, told to the study
    trained("f", status=Status.INFEASIBLE)  # likewise, refused before its first epoch: told as it reported, 0.0
    trained("g", 0.2)  # stopped early, the driver dead before the records heard: lost
    searcher.on_trial_complete("g", {"val_accuracy": 0.2})
    trained("h", 0.1, status=Status.LOST)  # an earlier resume failed it and the records marked it lost
    searcher._ot_study.tell(searcher._ot_trials["h"], state=optuna.trial.TrialState.FAIL)
    Journal(RunDir(run_dir).journal).append(records.to_json().values())

    restored = cloudpickle.loads(pickled)
    restored.restore(str(state))
    study = optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir))
    assert [(t.state.name, t.value) for t in study.trials] == [
        ("COMPLETE", 0.5), ("RUNNING", None), ("COMPLETE", 0.6), ("FAIL", None), ("COMPLETE", 0.55), ("COMPLETE", 0.0),
        ("COMPLETE", 0.2), ("FAIL", None)]
    assert restored.asked == 5 and restored._ot_trials.keys() == {"b"}  # a, b, c, e, f
    assert all(restored.suggest(trial_id) is not None for trial_id in "ijk")  # eight
    assert restored.suggest("l") == Searcher.FINISHED
    assert restored.suggest("k") is not None  # Tune asking again for a trial it has is not a new sample


def test_a_searcher_restored_from_a_finished_search_proposes_as_that_search_would_have_gone_on(tmp_path):
    # What an extension (resume --samples) builds its TPE from: the same study, the sampler's random state.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir, limit=3)
    for trial_id in ("a", "b", "c"):
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, {"val_accuracy": 0.5})
    assert searcher.suggest("d") == Searcher.FINISHED  # its budget spent
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    moved = tmp_path / "elsewhere" / "run"  # the same run in another folder: the extension works on the one it is given
    moved.mkdir(parents=True)
    shutil.copy(RunDir(run_dir).study, RunDir(moved).study)
    searcher.limit = 4
    went_on = searcher.suggest("d")

    extended = study_search.StudySearch(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="val_accuracy",
                                 mode="max", sampler=optuna.samplers.RandomSampler(7), run_dir=moved,
                                 **run_study.searcher_arguments(moved))
    extended.restore(str(state))
    extended.limit = extended.asked + 1
    assert extended.run_dir == moved and extended.asked == 3
    assert extended.suggest("d") == went_on  # seed 7's sampler was replaced by the finished search's
    assert len(optuna.load_study(study_name="run", storage=run_study.live_storage(moved)).trials) == 4
    assert len(optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir)).trials) == 4


def test_a_restore_replaces_an_older_study_this_machine_kept_with_the_longer_copy_tune_carried(tmp_path):
    # A bucket run's cache on a machine that resumed it once, before another machine went on with it; and a
    # study the new searcher just created empty (an extension's StudySearch, before it restores).
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir)
    searcher.suggest("a")
    stale = RunDir(run_dir).study.read_bytes()
    searcher.on_trial_complete("a", {"val_accuracy": 0.5})
    searcher.suggest("b")
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    for cached in (stale, b""):
        RunDir(run_dir).study.write_bytes(cached)
        restored = _searcher(run_dir)  # its constructor creates the study where none is
        restored.restore(str(state))
        study = optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir))
        assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]


def test_an_extension_tells_the_study_the_trials_a_time_budget_ended_without_telling_the_searcher(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir, limit=3)
    for trial_id in ("a", "b", "c"):
        searcher.suggest(trial_id)
    searcher.on_trial_complete("a", {"val_accuracy": 0.5})
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))  # as Tune saves it at the end: b and c still running, as the time budget left them
    records = leaderboard.Records()
    metrics = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0}
    for epoch, accuracy in ((1, 0.4), (2, 0.6)):
        records.report("b", {"x": 0.1}, "", {"epoch": epoch, "val_accuracy": accuracy, **metrics})
    restored = _searcher(run_dir)
    restored.restore(str(state))
    restored.tell_unfinished(records)
    study = optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir))
    assert [(t.state.name, t.value) for t in study.trials] == [("COMPLETE", 0.5), ("COMPLETE", 0.6), ("FAIL", None)]
    assert restored._ot_trials == {}


def test_a_local_runs_state_carries_no_copy_of_the_study_and_a_missing_study_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    searcher = _searcher(run_dir, carry_study=False)  # as make_tuner builds it for a local run folder
    pickled = cloudpickle.dumps(searcher)
    for trial_id in "abcdefghij":
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, {"val_accuracy": 0.5})
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    with open(state, "rb") as file:
        assert pickle.load(file)[study_search.StudySearch._STUDY_STATE] is None  # no copy of the journal inside
    restored = cloudpickle.loads(pickled)
    restored.restore(str(state))
    assert restored.suggest("k") is not None
    assert len(optuna.load_study(study_name="run", storage=run_study.live_storage(run_dir)).trials) == 11

    RunDir(run_dir).study.unlink()
    with pytest.raises(UserError, match="optuna.journal: the run's Optuna study is missing"):
        cloudpickle.loads(pickled).restore(str(state))


def test_a_run_made_before_the_journal_keeps_its_sqlite_study(tmp_path):
    """Runs made before 2026-12-04 kept the study in optuna.db (SQLite): it is copied into the journal once,
    from the run folder or from the SQLite bytes their searcher state carried."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    old = optuna.create_study(study_name="run", storage=f"sqlite:///{run_dir / 'optuna.db'}", direction="maximize")
    old.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    study = run_study.load(run_dir)
    assert study.study_name == "run" and [t.params for t in study.trials] == [t.params for t in old.trials]
    assert RunDir(run_dir).study.is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_study.put_back(elsewhere, (run_dir / "optuna.db").read_bytes(), sqlite=True)
    assert len(optuna.load_study(study_name="run", storage=run_study.live_storage(elsewhere)).trials) == 3


def test_the_reports_reader_follows_the_live_study_and_a_replaced_journal_is_read_afresh(tmp_path):
    """study.load keeps one reader per journal file: it sees every trial told after its first read (so the
    report never shows a stale study), and a journal replaced whole (put_back) is read from its first line."""
    run_dir = tmp_path / "run"
    live = optuna.create_study(study_name="run", storage=run_study.live_storage(run_dir), direction="maximize")
    live.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    first = run_study.load(run_dir)
    assert len(first.trials) == 2
    live.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    again = run_study.load(run_dir)
    assert again._storage is first._storage and [t.params for t in again.trials] == [t.params for t in live.trials]

    other = tmp_path / "other"
    shorter = optuna.create_study(study_name="run", storage=run_study.live_storage(other), direction="maximize")
    shorter.optimize(lambda trial: trial.suggest_float("x", 5, 6), n_trials=1)
    run_study.put_back(run_dir, run_study.snapshot(other))
    replaced = run_study.load(run_dir)
    assert replaced._storage is not first._storage and [t.params for t in replaced.trials] == [shorter.trials[0].params]
