"""The Python API (search.api, re-exported by `search`): a tiny search started, and its folder opened, from Python."""

from __future__ import annotations

import json

import pytest
import ray

import search
from search import synthetic
from search.errors import UserError

SPACE = '''SEARCH = {"samples": 1, "max_epochs": 2, "grace_period": 1, "finalists": 1}

def space(hp):
    hp.Fixed("input_mode", "occupancy")
    hp.Fixed("padding", "same")
    hp.Int("filters", 4, 8, step=4)
    hp.Fixed("dense_units", 8)
    hp.Fixed("pose", "principal_axes")  # and the final test averages two views, which the report says
    hp.Fixed("tta_views", 2)
'''


@pytest.mark.long
def test_a_tiny_search_through_the_python_api(small_data_file, tmp_path):
    space = tmp_path / "api.py"
    space.write_text(SPACE)
    announced = []
    try:
        # The subject is the API, not training: the trials are synthetic; the final retrain and test are real Keras.
        result = search.start(space, on_run_dir=announced.append, data=str(small_data_file), results=tmp_path / "runs",
                               name="api", resources=search.Resources(max_concurrent=2), trainable=synthetic.trainable())
    finally:
        ray.shutdown()
    run_dir = tmp_path / "runs" / "api"
    assert isinstance(result, search.Summary) and announced == [run_dir] and result.run_dir == run_dir
    assert result.trials == 2 and 0 <= result.test_accuracy <= 1  # a sampled trial and its finalist

    run = search.open_run(run_dir)
    board = run.leaderboard()
    assert len(board) == 2 and board["rank"].tolist() == [1, 2]
    assert run.winner() == result.best and board.loc[0, "trial_id"] == result.best.trial_id
    assert result.best.stage == "finalist" and result.best.params["epochs"] == board.loc[0, "best_epoch"]
    assert json.loads((run_dir / "best.json").read_text()) == result.best.to_json()
    assert run.test_metrics()["accuracy"] == result.test_accuracy
    assert run.test_metrics()["test_time_averaging"]["views"] == 2
    assert run.report == run_dir / "report.html" and run.report.is_file()
    assert "Each test prediction averages the softmax over the first 2" in run.report.read_text()
    assert run.info().space.settings.samples == 1 and run.info().ended


def test_a_folder_without_a_run_is_a_user_error(tmp_path):
    run = search.open_run(tmp_path)
    assert run.test_metrics() is None
    with pytest.raises(UserError, match="no trials recorded"):
        run.leaderboard()
    with pytest.raises(UserError, match="not a run folder"):
        run.info()
