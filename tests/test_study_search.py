"""StudySearch: the Optuna study travels in Tune's searcher state as bytes, so a restore on a machine that
never had the study's SQLite file continues the same study (no Ray, no bucket: the pickles Tune makes)."""

from __future__ import annotations

import optuna
import pytest
from ray import cloudpickle

from search import tuner, watch
from search.errors import UserError
from search.rundir import RunDir


def _searcher(run_dir, carry_study: bool = True) -> tuner.StudySearch:
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    return tuner.StudySearch(space=space, metric="val_accuracy", mode="max", sampler=optuna.samplers.RandomSampler(0),
                             run_dir=run_dir, carry_study=carry_study, **watch.optuna_storage(run_dir))


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
    study = optuna.load_study(study_name="run", storage=RunDir(run_dir).study_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    restored.on_trial_complete("b", {"val_accuracy": 0.7})  # the trial the first driver had started
    assert restored.suggest("c") is not None
    study = optuna.load_study(study_name="run", storage=RunDir(run_dir).study_url)
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
    assert len(optuna.load_study(study_name="run", storage=RunDir(run_dir).study_url).trials) == 2


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
    assert state.stat().st_size < RunDir(run_dir).study.stat().st_size / 4  # no SQLite file inside
    restored = cloudpickle.loads(pickled)
    restored.restore(str(state))
    assert restored.suggest("k") is not None
    assert len(optuna.load_study(study_name="run", storage=RunDir(run_dir).study_url).trials) == 11

    RunDir(run_dir).study.unlink()
    with pytest.raises(UserError, match="optuna.db: the run's Optuna study is missing"):
        cloudpickle.loads(pickled).restore(str(state))
