"""The report from plain run-folder files (no Ray), its background writer, the `report` command, and the console filter.

The report of a real search (figures, browser, TensorBoard, Optuna study) is checked on the e2e run in test_search_e2e.py.
"""

from __future__ import annotations

import subprocess
import sys
import time

import matplotlib.image as mpimg

from search import console, files, leaderboard, provenance, report
from searching import ROOT, search


def _run_folder(path, with_epochs: bool = True):
    """A run folder as a search leaves it mid-run: run.json and the records of three trials, one stopped by ASHA."""
    settings = {"samples": 2, "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "finalists": 0, "baselines": []}
    files.write_json(path / "run.json", {
        "space": {"path": "spaces/x.py", "sha256": "0" * 64, "settings": settings}, "backend": "jax",
        "data": {"path": "d.h5", "train": 480, "validation": 120}, "started": "2026-11-22T10:00:00+0000",
        "cluster": {"resources": {"CPU": 2.0}, "nodes": 1, "host": "h"}, "options": {"cpus_per_trial": 1, "gpus_per_trial": 0}})
    records = leaderboard.Records()
    # Conditional parameters, as a define-by-run space has them: some trials lack filters_1 or padding.
    for trial_id, params, curve, status in [("a", {"filters": 4, "padding": "same", "filters_1": 16}, [0.2, 0.4, 0.5, 0.6], "completed"),
                                            ("b", {"filters": 8, "padding": "valid", "filters_1": 32}, [0.1, 0.15], "stopped"),
                                            ("c", {"filters": 8}, [0.3], "running")]:
        for epoch, value in enumerate(curve if with_epochs else [], start=1):
            records.report(trial_id, params, "", {"epoch": epoch, "loss": 1.0, "accuracy": value, "val_loss": 1.0,
                                                  "val_accuracy": value, "status": "running"})
        records.report(trial_id, params, "", {"status": status})
    leaderboard.write(path, records)
    return path


def test_a_mid_run_report_shows_what_is_there_and_says_what_is_not(tmp_path):
    run_dir = _run_folder(tmp_path)
    page = report.write(run_dir).read_text()
    for name in ("learning_curves", "parallel_coordinates"):
        assert mpimg.imread(run_dir / f"{name}.png").shape[1] >= 500 and f"id='{name}'" in page
    assert not (run_dir / "confusion_matrix.png").exists()  # no final test yet, no study yet: said, not drawn
    assert "run after the search" in page and "No Optuna study" in page
    assert "completed: 1" in page and "stopped: 1" in page and "running" in page and "jax" in page
    axes = report._axis(leaderboard.leaderboard(leaderboard.Records.load(run_dir)).set_index("trial_id")["padding"])
    assert axes[0].to_dict() == {"a": 0.5, "b": 1.0, "c": 0.0} and axes[1] == "absent / same / valid"
    assert page.index("id='learning_curves'") < page.index("id='parallel_coordinates'")  # the curves come first
    curves = report._learning_curves(leaderboard.Records.load(run_dir), provenance.read(run_dir)).axes[0]
    assert [line.get_xdata()[0] for line in curves.lines if line.get_linestyle() == ":"] == [1, 2]  # run.json's rungs
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in curves.lines if line.get_marker() == "x"] == [
        ([2], [0.15])]  # where ASHA stopped b


def test_a_report_of_a_thousand_trials_draws_the_top_curves_and_a_density_and_a_table_that_fits(tmp_path):
    run_dir = _run_folder(tmp_path)
    records = leaderboard.Records.load(run_dir)
    for i in range(1000):  # as ASHA leaves them: most stopped at the first rungs
        epochs = 1 + (i % 3 == 0) * 1 + (i % 9 == 0) * 2
        for epoch in range(1, epochs + 1):
            value = (i % 97) / 100 * epoch / 4
            records.report(f"t{i:04d}", {"filters": 4 + i % 8, "learning_rate": 1e-3 * (1 + i % 5)}, "",
                           {"epoch": epoch, "loss": 1.0, "accuracy": value, "val_loss": 1.0, "val_accuracy": value,
                            "status": "running"})
        records.finish(f"t{i:04d}")
    leaderboard.write(run_dir, records)
    axes = report._learning_curves(records, provenance.read(run_dir)).axes[0]
    curves = [line for line in axes.lines if line.get_marker() == "o"]
    assert len(curves) == report.CURVES_DRAWN and len(axes.collections) == 1  # the rest: one density
    assert max(curves[0].get_ydata()) == max(r.best()[1]["val_accuracy"] for r in records.trials.values())  # the top
    page = report.write(run_dir).read_text()
    assert "<div class='wide'><table" in page and "best val accuracy" in page  # scrolls in its box; headers wrap
    lines = report._parallel_coordinates(leaderboard.leaderboard(records)).axes[0].lines
    assert len(lines) <= report.PARALLEL_DRAWN + 10  # the top trials' lines, and the axes


def test_report_before_any_epoch_still_writes_a_page(tmp_path):
    page = report.write(_run_folder(tmp_path, with_epochs=False)).read_text()
    assert "nothing to show yet" in page and not (tmp_path / "learning_curves.png").exists()


def test_the_background_writer_throttles_and_a_failure_is_one_line(tmp_path, capfd, monkeypatch):
    """The first ask writes at once; the next waits the period $CONV3D_SEARCH_REPORT_EVERY_S sets (here 7200 s, above
    both the default and the 3600 tests/conftest.py sets, so a writer that ignored it would be due sooner), and
    for GROWTH more results than the last page showed."""
    run_dir = _run_folder(tmp_path)
    monkeypatch.setenv(report.EVERY_S_VARIABLE, "7200")
    writer = report.ReportWriter(run_dir)
    asked = time.monotonic()
    assert not (run_dir / report.REPORT).exists()
    writer.soon(100)
    first_rewrite = writer.thread
    first_rewrite.join(60)
    first = (run_dir / report.REPORT).stat().st_mtime_ns
    assert "id='learning_curves'" in (run_dir / report.REPORT).read_text()
    assert writer.due >= asked + 7200
    writer.soon(200)  # not due yet: no rewrite started, the page as it was
    assert writer.thread is first_rewrite and (run_dir / report.REPORT).stat().st_mtime_ns == first
    writer.due = 0.0
    writer.soon(100 + int(100 * report.ReportWriter.GROWTH))  # due, but the run has not grown enough since
    assert writer.thread is first_rewrite
    (run_dir / "trials.json").write_text("{not json")  # a broken file must not raise into the search
    writer.soon(200)
    writer.thread.join(60)
    errors = capfd.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("report: could not write") and "JSONDecodeError" in errors[0]
    import pickle

    assert pickle.loads(pickle.dumps(writer)).thread is None  # Tune pickles its callbacks


def test_report_command_on_a_folder_that_is_not_a_run_is_one_line_and_exit_2(tmp_path):
    result = search("report", str(tmp_path / "missing"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: not a run folder (no run.json)"]


def test_the_console_filter_drops_the_gpu_less_start_up_lines_and_keeps_real_errors():
    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1.0  1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
             "I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on. You may see slightly different ...\n")
    real = "E0000 00:00:1.0  1 some_op.cc:9] a real error\n"
    cuinit = "E0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)\n"
    assert console.keep(noise + real) == real
    assert console.keep(cuinit) == ""  # this process already saw "Could not find cuda drivers"


def test_tensorflow_starts_quietly_through_our_backend_but_real_stderr_still_shows():
    code = ("import os\nfrom search import backend, console\nbackend.choose('tensorflow')\nimport keras\n"
            "backend.configure(1)\nimport tensorflow as tf\ntf.constant(1) + 1\n"
            "with console.filtered_stderr():\n    os.write(2, b'a real error\\n')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == ["a real error"]


def test_a_worker_ended_by_sigterm_in_a_finalizer_prints_no_traceback_but_other_errors_show():
    """Ray's SIGTERM handler raises SystemExit wherever a worker is; inside a finalizer Python printed it with a
    traceback at the end of a clean run (issue 17). Other exceptions there still show."""
    code = ("from search import console\nconsole.setup_worker()\n"
            "class Ended:\n    def __del__(self):\n        raise SystemExit(1)\n"
            "class Broken:\n    def __del__(self):\n        raise ValueError('a real error')\n"
            "Ended()\nBroken()\nprint('went on')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout == "went on\n"
    assert "SystemExit" not in out.stderr and "ValueError: a real error" in out.stderr
