"""The search service end to end, through the real CLI, a real local Ray and real Keras trials on a small slice."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

import matplotlib.image as mpimg
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
import numpy as np
import pandas as pd
import pytest

from search import bridge, cli, leaderboard, report
from backends import skip_unless_installed
from searching import SPACES, TERMINAL, WITH_DASHBOARD, read_csv, run_in_process, search

TIME = "%Y-%m-%dT%H:%M:%S%z"  # run.json's timestamps (provenance.now)

TINY = SPACES / "tiny.py"
CHROMIUM = shutil.which("chromium")
_search = search


def _run_args(data: Path, results: Path, name: str, *extra: str) -> list[str]:
    return ["run", str(TINY), "--data", str(data), "--results", str(results), "--name", name, *extra]


@pytest.fixture(scope="module")
def e2e_run(small_data_file, tmp_path_factory):
    """One real search of the tiny space (4 sampled trials, a baseline, 2 finalists, the final test): (result, run folder)."""
    results = tmp_path_factory.mktemp("e2e")
    # One trial at a time: ASHA then sees results in a fixed order, so its decisions are repeatable.
    result = _search(*_run_args(small_data_file, results, "e2e", "--samples", "4", "--max-concurrent", "1"), env=WITH_DASHBOARD)
    return result, results / "e2e"


@pytest.mark.xdist_group("e2e_run")
def test_run_end_to_end(e2e_run, small_data_file, capfd):
    result, run_dir = e2e_run
    tmp_path = run_dir.parent
    assert result.returncode == 0, result.stderr[-3000:]
    # Its own Ray's dashboard: on loopback only, with how to log in.
    assert "Dashboard: http://127.0.0.1:" in result.stdout and "ray get-auth-token" in result.stdout, result.stdout[:2000]
    board = read_csv(run_dir / "leaderboard.csv")
    assert board.columns[: len(leaderboard.LEADERBOARD_COLUMNS)].tolist() == leaderboard.LEADERBOARD_COLUMNS
    assert {"blocks", "padding", "filters", "dense_units", "input_mode"} <= set(board.columns)
    assert len(board) == 7 and set(board["status"]) <= TERMINAL  # 4 sampled trials, 1 baseline, 2 finalists
    assert board["rank"].tolist() == list(range(1, 8))
    # The finalists rank first: the top two clean search trials, retrained for max_epochs with the next seed.
    finalists, searched = board[board["stage"] == "finalist"], board[board["stage"] == "search"]
    assert finalists.index.tolist() == [0, 1] and (finalists["status"] == "completed").all()
    assert (finalists["epochs_trained"] == 3).all() and (finalists["seed"] == 1).all() and (searched["seed"] == 0).all()
    clean = searched[searched["status"].isin(["completed", "stopped", "baseline"])]
    assert sorted(finalists["finalist_of"]) == sorted(clean["trial_id"].head(2))
    for _, row in finalists.iterrows():  # the same configuration as the search trial it came from
        origin = searched.set_index("trial_id").loc[row["finalist_of"]]
        assert row[["blocks", "padding", "filters", "dense_units"]].tolist() == origin[["blocks", "padding", "filters", "dense_units"]].tolist()
    assert (board["schedule_epochs"] == 3).all()  # every trial's cosine horizon is max_epochs
    baseline = searched[searched["baseline"] == "machinecurve"]
    assert len(baseline) == 1 and baseline["status"].iloc[0] == "baseline" and baseline["blocks"].iloc[0] == 2
    assert baseline["param_count"].iloc[0] == 191_882  # the tutorial's model, capped at max_epochs
    for stage in (finalists, searched):
        ranked = stage["best_val_accuracy"].dropna().tolist()
        assert ranked == sorted(ranked, reverse=True)
    assert (board["status"] == "stopped").any(), board[["trial_id", "status", "epochs_trained"]]
    infeasible = board[board["status"] == "infeasible"]
    assert len(infeasible) >= 1 and infeasible["error"].str.contains("spatial size").all()
    assert (board.loc[board["status"] == "completed", "epochs_trained"] == 3).all()
    assert (board["node"].dropna() != "").all()
    epochs = read_csv(run_dir / "epochs.csv")
    assert epochs.groupby("trial_id").size().to_dict() == board.set_index("trial_id")["epochs_trained"][lambda s: s > 0].to_dict()
    best = json.loads((run_dir / "best.json").read_text())
    assert best["trial_id"] == board.loc[0, "trial_id"] and best["params"]["epochs"] == board.loc[0, "best_epoch"]
    assert best["stage"] == "finalist" and best["finalist_of"] == board.loc[0, "finalist_of"]
    assert best["params"]["schedule_epochs"] == 3  # the final retrain keeps the trial's schedule horizon
    metrics = json.loads((run_dir / "final" / "test_metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and len(metrics["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 200  # the whole (small) test split, once
    assert (run_dir / "final" / "model.keras").stat().st_size > 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["space"]["sha256"] and run["data"]["sha256"] and run["ended"] and run["versions"]["ray"]
    tested = (run_dir / "final" / "test_metrics.json").stat().st_mtime  # the run ended after its final test
    assert datetime.strptime(run["ended"], TIME).timestamp() >= int(tested)
    expected = os.environ.get("KERAS_BACKEND") or "tensorflow"  # no --backend: $KERAS_BACKEND, else tensorflow
    assert run["backend"] == expected and _trial_backends(run_dir) == {expected} and metrics["backend"] == expected
    shown = _search("leaderboard", str(run_dir), "--top", "3")
    assert shown.returncode == 0 and len(shown.stdout.strip().splitlines()) == 4
    # `final --rank 2` (beside final/, not over it) is test_s3_run.py's; `final` on a local folder, the JAX test's.
    # A run folder is never reused.
    assert cli.main(_run_args(small_data_file, tmp_path, "e2e")) == 2
    assert "already exists" in capfd.readouterr().err


@pytest.mark.xdist_group("e2e_run")
def test_the_finalists_ensemble_is_chosen_on_validation_tested_once_and_saved_as_one_model(e2e_run, small_data_file):
    """finalists: 2, so the final stage also builds their ensemble (search.ensemble) beside the single best."""
    import keras

    from search import data, ensemble, model as _registers_our_layers  # noqa: F401 - keras.models.load_model needs them
    from search.rundir import VAL_PREDICTIONS

    result, run_dir = e2e_run
    assert result.returncode == 0, result.stderr[-3000:]
    together = json.loads((run_dir / "final-ensemble" / "test_metrics.json").read_text())
    single = json.loads((run_dir / "final" / "test_metrics.json").read_text())
    assert "ensemble of finalists (" in result.stdout and f"{together['accuracy']:.4f} (upright rows" in result.stdout
    board = read_csv(run_dir / "leaderboard.csv")
    finalists = board.loc[board["stage"] == "finalist", "trial_id"].tolist()
    # Members: chosen among the finalists by ensemble selection on the validation softmax each finalist kept.
    kept = {t: np.load(sorted((run_dir / "tune-finalists" / t).glob("checkpoint_*"))[-1] / VAL_PREDICTIONS) for t in finalists}
    space = bridge.load_space(TINY)
    _, val = data.train_val_split(data.load_train(small_data_file), space.settings.val_fraction, seed=space.settings.seed)
    assert all(p.shape == (len(val), 10) for p in kept.values())
    chosen = ensemble.select({t: kept[t] for t in finalists}, val.y, 2)
    assert {m["trial_id"]: m["weight"] for m in together["members"]} == {t: c / 2 for t, c in chosen.items()}
    assert sum(map(sum, together["confusion_matrix"])) == 200 and {"upright_accuracy", "rotated_accuracy"} <= set(together)
    # One .keras model over raw volumes, whose test predictions are the ones recorded.
    model = keras.models.load_model(run_dir / "final-ensemble" / "model.keras")
    test = data.load(small_data_file, "test")
    predicted = np.argmax(model.predict(test.x, verbose=0), axis=1)
    recorded = pd.read_csv(run_dir / "final-ensemble" / "predictions.csv")
    assert (recorded["predicted"].to_numpy() == predicted).all()
    assert np.isclose(together["accuracy"], (predicted == test.y).mean())
    page = (run_dir / "report.html").read_text()
    table = page[page.index("<h3>Ensemble</h3>"):]
    for name, metrics in (("the single best (final/)", single), ("the ensemble of finalists (final-ensemble/)", together)):
        row = table[table.index(name):table.index("</tr>", table.index(name))]
        assert f"{metrics['accuracy']:.4f}" in row and f"{metrics['rotated_accuracy']:.4f}" in row, row


@pytest.mark.xdist_group("e2e_run")
def test_a_finished_run_extended_goes_on_from_its_study_and_tests_again_in_new_folders(e2e_run, tmp_path, capfd):
    """resume --samples on a finished run (a copy of the module's): more trials, the same study and records,
    then the finalists and the final test over the whole run into new folders; nothing earlier is rewritten."""
    result, original = e2e_run
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / original.name  # the study is named after the run folder
    shutil.copytree(original, run_dir)
    before = leaderboard.Records.load(run_dir).to_json()
    kept = {name: (run_dir / name).read_bytes() for name in ("best.json", "final/test_metrics.json", "final/model.keras",
                                                             "final-ensemble/test_metrics.json")}
    storage = JournalStorage(JournalFileBackend(str(run_dir / "optuna.journal")))
    told = len(optuna.load_study(study_name=run_dir.name, storage=storage).trials)

    extended = _search("resume", str(run_dir), "--samples", "1", "--time-budget", "600")
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert "extending the search: up to 1 more trial within 600 s in tune-extend-1" in extended.stdout
    after = leaderboard.Records.load(run_dir)
    assert {t: r for t, r in after.to_json().items() if t in before} == before  # every earlier record as it was
    new = [r for t, r in after.trials.items() if t not in before]
    searched = [r for r in new if r.stage == "search"]
    assert len(searched) == 1 and not any(r.baseline for r in new)  # the baseline ran once, in the first search
    assert {r.trial_id for r in searched} <= {p.name for p in (run_dir / "tune-extend-1").iterdir()}
    trials = optuna.load_study(study_name=run_dir.name, storage=JournalStorage(JournalFileBackend(str(run_dir / "optuna.journal")))).trials
    assert len(trials) == told + 1  # the same study, one more of its trials
    finalists = [r for r in new if r.stage == "finalist"]  # new top trials only: the others' finalists stand
    assert all(r.finalist_of in {s.trial_id for s in searched} for r in finalists)
    run = json.loads((run_dir / "run.json").read_text())
    (extension,) = run["extensions"]
    assert (extension["samples"], extension["time_budget_s"], extension["trials_before"]) == (1, 600, len(before))
    assert extension["search_ended"] and extension["ended"] and run["ended"] == json.loads((original / "run.json").read_text())["ended"]
    assert all((run_dir / name).read_bytes() == content for name, content in kept.items())  # nothing earlier rewritten
    board = read_csv(run_dir / "leaderboard.csv")
    best = json.loads((run_dir / "best-extend-1.json").read_text())
    assert best["trial_id"] == board.loc[0, "trial_id"] and len(board) == len(after.trials)
    metrics = json.loads((run_dir / "final-extend-1" / "test_metrics.json").read_text())
    # Copied (not retested) exactly when the winner's configuration is the earlier final's; test_final.py checks
    # each of the two paths whichever this run takes.
    unchanged = best["params"] == json.loads(kept["final/test_metrics.json"])["params"]
    assert metrics["params"] == best["params"] and (metrics.get("copied_from") == "final") == unchanged
    assert ((run_dir / "final-extend-1" / "model.keras").read_bytes() == kept["final/model.keras"]) == unchanged
    assert sum(map(sum, metrics["confusion_matrix"])) == 200 and (run_dir / "final-extend-1-ensemble" / "test_metrics.json").is_file()
    assert f"final test accuracy (retrained on train + validation, tested once): {metrics['accuracy']:.4f}" in extended.stdout
    assert "final-extend-1" in (run_dir / "report.html").read_text()
    # An extension needs a search that ended: one line, before Ray starts.
    run["extensions"][0].pop("search_ended")
    (run_dir / "run.json").write_text(json.dumps(run))
    capfd.readouterr()
    assert cli.main(["resume", str(run_dir), "--time-budget", "60"]) == 2
    assert capfd.readouterr().err.strip().splitlines() == [
        f"error: {run_dir}: its search has not ended; resume it without --samples or --time-budget first"]


# What a machine without a GPU used to print at every TensorFlow start (driver and each trial), Optuna's
# warning for an option we chose, and Ray's TensorBoard hint at a /tmp/ray staging folder.
NOISE = ("Could not find cuda drivers", "failed call to cuInit", "absl::InitializeLog", "ExperimentalWarning",
         "tensorboard --logdir /tmp/ray")


@pytest.mark.xdist_group("e2e_run")
def test_the_run_is_quiet_and_leaves_tensorboard_logs_and_its_optuna_study(e2e_run):
    result, run_dir = e2e_run
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert [line for line in console.splitlines() if any(n in line for n in NOISE)] == []
    # No traceback and no ERROR line in a clean run (Tune's lost experiment-state upload printed both: issue 17).
    assert [line for line in console.splitlines() if "Traceback" in line or re.search(r"\bERROR\b", line)] == []
    assert f"tensorboard --logdir {run_dir}" in result.stdout and "report.html" in result.stdout
    board = read_csv(run_dir / "leaderboard.csv")
    # TensorBoard: every trial (failed and infeasible ones too) has event files in a folder named by its trial id.
    for _, row in board.iterrows():
        folder = run_dir / ("tune" if row["stage"] == "search" else "tune-finalists") / row["trial_id"]
        events = list(folder.glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, folder
    # Optuna's own storage: one Optuna trial per sampled Tune trial (baselines and finalists are not TPE's).
    study = optuna.load_study(study_name="e2e", storage=JournalStorage(JournalFileBackend(str(run_dir / "optuna.journal"))))
    sampled = board[(board["stage"] == "search") & board["baseline"].isna()]
    assert len(study.trials) == len(sampled) == 4
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    by_value = sorted(t.value for t in study.trials)  # the value told is the trial's last reported val_accuracy
    assert by_value[-1] <= sampled["best_val_accuracy"].max() + 1e-9 and by_value[0] >= 0


@pytest.mark.xdist_group("e2e_run")
def test_the_report_of_a_real_run_has_every_figure(e2e_run):
    _, run_dir = e2e_run
    page = (run_dir / "report.html").read_text()
    for name in report.FIGURES:
        image = mpimg.imread(run_dir / f"{name}.png")  # a real PNG, of plausible size
        assert image.shape[0] >= 300 and image.shape[1] >= 500 and (run_dir / f"{name}.png").stat().st_size > 8_000, name
        assert f"id='{name}'" in page and "data:image/png;base64," in page
    assert "src='http" not in page and 'src="http' not in page  # self-contained: opens offline
    assert "Upright rows" in page and "rotated rows" in page  # from final/predictions.csv, not from the test set
    predictions = pd.read_csv(run_dir / "final" / "predictions.csv")
    assert len(predictions) == 200 and predictions["row"].tolist() == list(range(200))


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="Debian's chromium is not installed (see README)")
@pytest.mark.xdist_group("e2e_run")
def test_the_report_opens_in_a_headless_browser(e2e_run):
    from playwright.sync_api import sync_playwright

    _, run_dir = e2e_run
    assert CHROMIUM, "chromium is missing: the test setup installs it (README, Tests)"
    screenshot = run_dir / "report-screenshot.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                       else route.continue_())  # offline: nothing may load from elsewhere
            page.goto((run_dir / "report.html").resolve().as_uri())
            shown = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"report screenshot: {screenshot}")
    assert sorted(alt for alt, complete, width in shown if complete and width > 300) == sorted(report.FIGURES)
    assert screenshot.stat().st_size > 50_000


@pytest.mark.long
def test_a_run_under_jax_with_gpu_settings_uses_them_in_every_trial_and_the_final(small_data_file, tmp_path):
    """--backend jax (what GPU workers run: the GPU machines have no TensorFlow) and --precision reach every trial,
    and `final` retrains under the run's backend whatever $KERAS_BACKEND says; --mps where MPS cannot start (no
    NVIDIA tools here) is one line, recorded, and the run goes on. Its one trial (2 epochs, no finalists: JAX
    compiles each model anew, slowly on CPU) also uses the pose knobs (search.pose)."""
    skip_unless_installed("jax")
    space = tmp_path / "small.py"
    space.write_text('SEARCH = {"samples": 1, "max_epochs": 2, "grace_period": 2, "finalists": 0}\n\n'
                     'def space(hp):\n    hp.Fixed("input_mode", "occupancy")\n    hp.Fixed("padding", "same")\n'
                     '    hp.Int("filters", 4, 8, step=4)\n    hp.Fixed("dense_units", 8)\n'
                     '    hp.Fixed("pose", "both")\n    hp.Fixed("train_views", 2)\n    hp.Fixed("tta_views", 2)\n')
    result = _search("run", str(space), "--data", str(small_data_file), "--results", str(tmp_path), "--name", "jax",
                     "--backend", "jax", "--no-final", "--mps", "--precision", "mixed_bfloat16",
                     env={"KERAS_BACKEND": "tensorflow"})  # the flag wins over the environment
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mps: off: nvidia-cuda-mps-control not found" in result.stdout
    run_dir = tmp_path / "jax"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["backend"] == "jax"
    assert (info["options"]["mps"], info["options"]["precision"], info["cluster"]["mps"]) == (True, "mixed_bfloat16", False)
    assert _trial_backends(run_dir) == {"jax"}  # what keras.backend.backend() said inside each trial
    assert _trial_backends(run_dir, "precision") == {"mixed_bfloat16"}
    board = read_csv(run_dir / "leaderboard.csv")
    assert (board["status"] == "completed").all() and (board["epochs_trained"] == 2).all(), board[["status", "error"]]
    assert board[["pose", "train_views", "tta_views"]].values.tolist() == [["both", 2, 2]]  # the knobs it ran with
    # `final` retrains under the run's backend, whatever the environment says.
    final = _search("final", str(run_dir), "--rank", "1", env={"KERAS_BACKEND": "tensorflow"})
    assert final.returncode == 0, final.stderr[-3000:]
    metrics = json.loads((run_dir / "final" / "test_metrics.json").read_text())
    assert metrics["backend"] == "jax" and sum(map(sum, metrics["confusion_matrix"])) == 200


def _trial_backends(run_dir: Path, key: str = "backend") -> set[str]:
    """The Keras backend (or another key) each trial reported from inside its Ray worker (Tune's result.json files)."""
    lines = [line for path in (run_dir / "tune").glob("*/result.json") for line in path.read_text().splitlines()]
    assert lines, "no trial results"
    return {json.loads(line).get(key) for line in lines if json.loads(line).get("epoch")}


def test_a_time_budget_ends_the_search_before_its_sample_cap_and_the_run_goes_on(small_data_file, tmp_path, capfd):
    """time_budget_s stops the search stage before its sample cap; its trials end stopped, and the run goes on to
    its end. Synthetic trials (in this process) sleep 2 x 3 s each, one at a time, so a 30 s budget can start at
    most 6 of the 200, however loaded the machine (the budget counts from Tune's start: a loaded machine's worker
    start-up can take 10 s of it, so it is not shorter)."""
    space = tmp_path / "budget.py"
    space.write_text('SEARCH = {"samples": 200, "time_budget_s": 30, "max_epochs": 2, "grace_period": 2, "finalists": 0}\n\n'
                     'def space(hp):\n    hp.Fixed("input_mode", "occupancy")\n    hp.Int("filters", 4, 8, step=4)\n')
    assert run_in_process("run", str(space), "--data", str(small_data_file), "--results", str(tmp_path), "--name",
                          "budget", "--max-concurrent", "1", "--no-final", epoch_s=3.0) == 0, capfd.readouterr().err[-3000:]
    run_dir = tmp_path / "budget"
    board = read_csv(run_dir / "leaderboard.csv")
    assert 1 <= len(board) <= 30 // 6 + 1, board[["trial_id", "status"]]  # the budget, not the sample cap, ended the search
    assert board["status"].isin(["completed", "stopped"]).all(), board[["status", "error"]]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["ended"] and info["trainable"] == "search.synthetic:trainable(epoch_s=3)"
    searched_s = (datetime.strptime(info["search_ended"], TIME) - datetime.strptime(info["started"], TIME)).total_seconds()
    assert searched_s >= 30  # run.json's start is written before Tune's clock starts
    # $CONV3D_SEARCH_DASHBOARD=0 (tests/conftest.py): its local Ray started without a dashboard.
    assert "Dashboard:" not in capfd.readouterr().out
    # A resume with another trainable than the run's is one line, before Ray starts.
    assert cli.main(["resume", str(run_dir)]) == 2
    assert capfd.readouterr().err.strip() == (f"error: {run_dir}: the run trained with search.synthetic:trainable(epoch_s=3), "
                                              "not search.trial:run_trial")


@pytest.mark.parametrize(
    "content, message",
    [
        ("def space(hp)\n    pass\n", "broken.py:1"),
        ("x = 1\n", "defines no space(hp) function"),
        ("def space(hp):\n    hp.Float('learning_rate', 1e-4, 1e-2, sampling='reverse_log')\n", "reverse_log"),
        ("def space(hp):\n    pass\n", "declares no hyperparameters"),
    ],
    ids=["syntax-error", "no-space-function", "unsupported-hp", "empty-space"],
)
def test_bad_space_files_fail_in_one_line_before_ray(tmp_path, capfd, content, message):
    """The CLI in this process (a traceback would fail the test); test_bad_flags_fail_in_one_line runs its own."""
    import ray

    space = tmp_path / "broken.py"
    space.write_text(content)
    capfd.readouterr()
    assert cli.main(["run", str(space), "--results", str(tmp_path / "results")]) == 2
    out, err = capfd.readouterr()  # file descriptors 1 and 2: C++ and logging output counts too
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error:"), err
    assert message in err and "broken.py" in err, err
    assert "Traceback" not in err
    assert not ray.is_initialized() and "ray" not in out.lower()
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cpus-per-trial", "0"], "--cpus-per-trial: must be > 0"),
        (["--gpus-per-trial", "-1"], "--gpus-per-trial: must be >= 0"),
        (["--samples", "many"], "--samples: invalid int value"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_fail_in_one_line(tmp_path, args, message):
    result = _search("run", str(TINY), "--results", str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_exposing_the_dashboard_beyond_loopback_warns_first(tmp_path):
    space = tmp_path / "broken.py"
    space.write_text("x = 1\n")  # fails right after the warning, before Ray starts
    result = _search("run", str(space), "--dashboard-host", "0.0.0.0", "--results", str(tmp_path))
    assert result.returncode == 2
    assert "warning: the Ray dashboard will listen on 0.0.0.0" in result.stderr and "job API" in result.stderr
    quiet = _search("run", str(space), "--results", str(tmp_path))
    assert "warning" not in quiet.stderr
