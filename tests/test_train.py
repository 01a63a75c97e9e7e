"""`python -m search train`: one configuration, per-epoch metrics, one test evaluation, clear parameter errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


ROOT = Path(__file__).resolve().parents[1]


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", "train", *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_train_a_preset_for_one_epoch_and_test_once(small_data_file, tmp_path, capsys):
    """The CLI in this process, in float32 (Keras's default: it leaves no precision policy behind for the worker's
    later tests; the mixed_bfloat16 one below runs in a process of its own)."""
    from search import cli

    expected = os.environ.get("KERAS_BACKEND") or "tensorflow"  # before the CLI's backend.choose sets it
    out = tmp_path / "run"
    assert cli.main(["train", "--preset", "machinecurve", "--epochs", "1", "--data", str(small_data_file), "--test",
                     "--out", str(out)]) == 0, capsys.readouterr().err[-2000:]
    printed = capsys.readouterr().out
    assert "val_accuracy" in printed and "test accuracy" in printed
    history = pd.read_csv(out / "history.csv")
    assert history.columns.tolist()[:1] == ["epoch"] and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history.columns)
    assert len(history) == 1
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert {"accuracy", "loss", "per_class_accuracy", "confusion_matrix"} <= set(metrics)
    assert sum(map(sum, metrics["confusion_matrix"])) == 200 and len(metrics["per_class_accuracy"]) == 10
    saved = json.loads((out / "params.json").read_text())
    assert saved["params"]["blocks"] == 2 and saved["params"]["epochs"] == 1 and saved["data_sha256"]
    assert saved["backend"] == metrics["backend"] == expected
    # The folder holds a finished result now: a second run into it is refused, and nothing is touched.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main(["train", "--preset", "machinecurve", "--data", str(small_data_file), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_val_fraction_0_trains_on_all_of_train_as_the_final_retrain_does(small_data_file, tmp_path):
    """The hand pick's protocol in benchmarks/gpu_session.sh: train + validation together, then one test; here with
    the pose knobs, whose test averaged views and says so."""
    out = tmp_path / "all"
    tiny = ('{"blocks": 1, "padding": "same", "filters": 4, "dense_units": 8, "input_mode": "occupancy", "epochs": 1, '
            '"pose": "both", "fusion": "streams", "train_views": 4, "tta_views": 4}')
    result = _train("--params", tiny, "--data", str(small_data_file), "--val-fraction", "0", "--test",
                    "--precision", "mixed_bfloat16", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(train 600, validation 0)" in result.stdout and "test accuracy" in result.stdout
    assert "val_accuracy" not in pd.read_csv(out / "history.csv").columns
    assert json.loads((out / "params.json").read_text())["precision"] == "mixed_bfloat16"
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == 200
    assert "upright rows" in result.stdout and "rotated rows" in result.stdout
    assert metrics["test_time_averaging"]["views"] == 4 and "candidate frames" in metrics["test_time_averaging"]["over"]
    assert 0 <= metrics["upright_accuracy"] <= 1 and 0 <= metrics["rotated_accuracy"] <= 1
    assert json.loads((out / "params.json").read_text())["params"]["fusion"] == "streams"


@pytest.mark.parametrize(
    "params, message",
    [
        ('{"colour": 1}', "unknown parameter 'colour'"),
        ('{"dropout": 2}', "parameter 'dropout': expected a value in [0.0, 0.9]"),
        ('{"blocks": 4, "padding": "valid"}', "infeasible architecture: 4 blocks"),
        ('{"blocks": 2', "--params: invalid JSON"),
    ],
    ids=["unknown-key", "out-of-range", "infeasible", "bad-json"],
)
@pytest.mark.backend_free  # refused before Keras loads: the same under every backend
def test_bad_params_fail_in_one_line_with_exit_2(tmp_path, params, message):
    result = _train("--params", params, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[-1]]  # one line, nothing else
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
