"""The run folder: every name in it comes from RunDir, and run.json reads back into the same typed RunInfo."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from search import files, provenance
from search.errors import UserError
from search.options import RunOptions
from search.provenance import DataInfo, RunInfo, SpaceInfo
from search.resources import Resources
from search.rundir import RunDir
from search.settings import Settings

SEARCH = Path(__file__).resolve().parents[1] / "search"


def _info() -> RunInfo:
    settings = Settings(samples=4, max_epochs=3, grace_period=1, reduction_factor=2, finalists=2,
                        baselines=["machinecurve", {"name": "broken", "preset": "machinecurve", "fault": "raise"}])
    return RunInfo(
        options=RunOptions(Path("/w/spaces/tiny.py"), data="d.h5", name="r", resources=Resources(2.0, 0.5, 3, 1.5),
                           backend="jax", wait_for_resources=30.0),
        space=SpaceInfo(Path("/w/spaces/tiny.py"), "a" * 64, settings),
        data=DataInfo(Path("/w/d.h5"), "b" * 64, 480, 120, 0.2),
        seed=0, started="2026-11-29T10:00:00+0000", command=["python", "-m", "search", "run"], backend="jax",
        versions={"ray": "2.x"}, worker_env={"KERAS_BACKEND": "jax"},
        cluster={"address": None, "session": "session_1", "resources": {"CPU": 2.0}, "nodes": 1, "host": "h", "pid": 1},
        resumed=[{"at": "2026-11-29T11:00:00+0000", "command": ["resume"], "cluster": {"pid": 2, "address": "auto"}}],
        search_ended="2026-11-29T12:00:00+0000",
    )


def test_run_json_round_trip_gives_back_the_same_typed_run_info(tmp_path):
    info = _info()
    files.write_json(tmp_path / "run.json", info.to_json())
    stored = json.loads((tmp_path / "run.json").read_text())
    assert stored["space"]["settings"]["baselines"][1] == [["name", "broken"], ["preset", "machinecurve"], ["fault", "raise"]]
    assert stored["options"]["cpus_per_trial"] == 2.0 and "ended" not in stored  # not yet
    restored = provenance.read(tmp_path)
    assert restored == info and isinstance(restored.space.settings, Settings) and isinstance(restored.data.path, Path)
    assert json.loads(json.dumps(restored.to_json())) == stored  # written back unchanged by mark() and resumed()
    assert restored.last_cluster == {"pid": 2, "address": "auto"} and restored.keras_backend == "jax"
    assert restored.space.settings.rungs() == (1, 2)


def test_a_run_json_from_another_version_keeps_what_it_does_not_know(tmp_path):
    stored = {k: v for k, v in _info().to_json().items() if k not in ("backend", "resumed", "search_ended")}
    stored["space"]["settings"].pop("steps_per_execution")  # a setting added later takes its default
    stored["future"] = {"kept": True}
    info = RunInfo.from_json(stored)
    assert info.keras_backend == "tensorflow" and info.space.settings.steps_per_execution == Settings().steps_per_execution
    assert info.last_cluster == stored["cluster"] and info.to_json()["future"] == {"kept": True}


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        provenance.read(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(UserError, match=r"run.json: not a readable run.json \(KeyError"):
        provenance.read(tmp_path)


def test_final_folders_for_each_rank(tmp_path):
    run = RunDir(tmp_path)
    assert run.final_for_rank(1) == run.final and run.final.test_metrics == tmp_path / "final" / "test_metrics.json"
    run.final.path.mkdir()
    assert run.final_for_rank(1).path.name == "final-rank-1" and run.final_for_rank(3).path.name == "final-rank-3"
    assert run.finalists_tune().name == "tune-finalists"
    (tmp_path / "tune-finalists").mkdir()
    assert run.finalists_tune().name == "tune-finalists-2"


def test_an_extended_runs_readers_see_the_newest_tested_final_and_a_rerun_never_writes_into_an_extensions(tmp_path):
    run = RunDir(tmp_path)
    for folder in (run.final_of(0), run.ensemble_of(0)):
        folder.path.mkdir()
        folder.test_metrics.write_text("{}")
    run.best_of(0).write_text("{}")
    (tmp_path / "tune-extend-1").mkdir()  # an extension searching (or interrupted, or run with --no-final)
    assert (run.final, run.final_ensemble, run.best_json) == (run.final_of(0), run.ensemble_of(0), tmp_path / "best.json")
    assert run.final_for_rank(1).path.name == "final-rank-1"
    assert run.search_tune(1) == tmp_path / "tune-extend-1" and run.search_tune(0) == run.tune
    run.final_of(1).path.mkdir()  # its final retrain under way: not tested yet
    assert run.final == run.final_of(0)
    for folder in (run.final_of(1), run.ensemble_of(1)):
        folder.path.mkdir(exist_ok=True)
        folder.test_metrics.write_text("{}")
    run.best_of(1).write_text("{}")
    assert (run.final.path.name, run.final_ensemble.path.name, run.best_json.name) == (
        "final-extend-1", "final-extend-1-ensemble", "best-extend-1.json")
    assert run.final_for_rank(1).path.name == "final-rank-1"


def test_no_other_module_spells_a_run_folder_name():
    """String literals in code (not docstrings, not prose in messages) that are a run folder's file or folder names."""
    names = {"run.json", "trials.json", "best.json", "leaderboard.csv", "epochs.csv", "report.html", "optuna.journal", "optuna.db",
             "test_metrics.json", "predictions.csv", "params.json", "history.csv", "tune-finalists", "journal",
             "final-ensemble", "val_predictions.npy"}
    spelled = set()
    for path in SEARCH.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                parts = set(re.split(r"[/\\]", node.value.strip()))
                spelled |= {f"{path.name}:{node.lineno}: {node.value!r}" for name in names & parts}
    assert spelled == set()
