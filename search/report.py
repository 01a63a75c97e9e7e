"""A run's report: ``report.html`` (one self-contained page, figures embedded) and each figure as a PNG beside it.

Plain files in, pictures out: it reads only the run folder (run.json, the records, the final test, the Optuna
study) and knows nothing about Ray. It never reads the test set: the final stage keeps its predictions.
Works mid-run too (what is there so far); ``ReportWriter`` rewrites it in the background while a search
runs, when the pipeline attaches it. The figures are search.report_figures'.
"""

from __future__ import annotations

import html
import math
import os
import sys
import threading
import time
from typing import Any

import pandas as pd

from search import leaderboard, provenance, storage
from search import report_figures as figures
from search import study as run_study
from search.pacing import Pacer
from search.provenance import RunInfo
from search.rundir import RunDir
from search.storage import Location

REPORT = RunDir(".").report.name
TOP = 10  # leaderboard rows shown in the report
_LOCK = threading.Lock()  # one render at a time per process: the background writer and the end of a run
# The figures' names as this module had them before they moved (tests/test_report.py uses them).
FIGURES, STATUS_COLOURS = figures.FIGURES, figures.STATUS_COLOURS
CURVES_DRAWN, PARALLEL_DRAWN = figures.CURVES_DRAWN, figures.PARALLEL_DRAWN
_axis, _learning_curves, _parallel_coordinates = figures.axis, figures.learning_curves, figures.parallel_coordinates


def write(run_dir: Location) -> Location:
    """Render the run folder's report.html and its PNGs (each written whole); return the report's path."""
    run_dir = RunDir(run_dir).path
    with _LOCK:
        info = provenance.read(run_dir)
        records = leaderboard.Records.load(run_dir)
        board = leaderboard.leaderboard(records)
        final = RunDir(run_dir).final.tested()
        study = run_study.load(run_dir)
        sections = [
            ("The run", _facts_html(info, board)),
            ("Learning curves", figures.embed(
                run_dir, "learning_curves", figures.learning_curves(records, info),
                f"validation accuracy per epoch of the top {figures.CURVES_DRAWN} trials, coloured by status (any "
                "others: their epochs' density, in grey); dotted lines: ASHA's rungs, where it stops the weaker trials")),
            ("Leaderboard", _leaderboard_html(board) + figures.embed(
                run_dir, "parallel_coordinates", figures.parallel_coordinates(board),
                f"the top {figures.PARALLEL_DRAWN} trained trials' hyperparameters (each axis scaled to its range) "
                "and best validation accuracy")),
            *([("Accuracy against cost", figures.pareto_section(run_dir, records))] if records.objectives.multi else []),
            ("Hyperparameter importance", figures.importance_section(run_dir, study)),
            ("Final test", _finals_html(run_dir, info) + figures.final_section(run_dir, final)
             + _ensemble_html(run_dir, RunDir(run_dir).final_ensemble.tested(), final)),
        ]
        page = _page(f"Run {RunDir(run_dir).name}", sections)
        storage.write_text(RunDir(run_dir).report, page)
        return RunDir(run_dir).report


EVERY_S_VARIABLE = "CONV3D_SEARCH_REPORT_EVERY_S"  # how often the live report may be rewritten, in seconds


def _every_s(default: float) -> float:
    """$CONV3D_SEARCH_REPORT_EVERY_S, read when a ReportWriter is made (or unpickled), else default.

    A bad value falls back to default with one line on stderr, not a UserError: as with a failed rewrite, a
    picture must not stop a search."""
    value = os.environ.get(EVERY_S_VARIABLE)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        print(f"report: ${EVERY_S_VARIABLE}={value!r}: expected a number of seconds above 0; using {default:g}",
              file=sys.stderr, flush=True)
        return default
    return seconds


class ReportWriter:
    """Rewrites a run's report in a background thread while the search runs: at most every EVERY_S seconds (or
    $CONV3D_SEARCH_REPORT_EVERY_S), at most once per SPACING times the last rewrite's duration (a bounded
    share of the driver, however large the run), and once the run has GROWTH more results than the last page
    showed (a rewrite costs what the run holds, so each result pays a constant share of them however slow the
    driver gets; search.pacing). A failure is one line on stderr, never an exception: a picture must not stop
    a search.
    """

    EVERY_S = 30.0  # the default interval: a rewrite costs the driver about 1 CPU-second at 1,000 trials
    SPACING = 20
    GROWTH = 0.1  # a page per 10 % more results: at 10,000 trials, about one per 1,000 more trials

    def __init__(self, run_dir: Location):
        self.run_dir = RunDir(run_dir).path
        self.pacer = Pacer(_every_s(self.EVERY_S), self.SPACING, self.GROWTH)  # the first call writes at once
        self.thread: threading.Thread | None = None

    @property
    def due(self) -> float:
        """Monotonic time of the next rewrite."""
        return self.pacer.due

    @due.setter
    def due(self, when: float) -> None:
        self.pacer.due = when

    def soon(self, results: int = 0) -> None:
        """Start a rewrite of the page showing `results` results, unless one runs or the next is not due yet."""
        if (self.thread and self.thread.is_alive()) or not self.pacer.is_due(results):
            return
        self.pacer.due = math.inf  # set when this rewrite ends
        self.thread = threading.Thread(target=self.pacer.run, args=(lambda: write_or_warn(self.run_dir), results),
                                       name="report", daemon=True)
        self.thread.start()

    def __getstate__(self) -> dict[str, Any]:  # pickled (as Tune does its callbacks): no thread, no stale clock
        return {"run_dir": self.run_dir, "thread": None}

    def __setstate__(self, state: dict[str, Any]) -> None:  # the interval read again where it is unpickled
        self.__init__(state["run_dir"])


def write_or_warn(run_dir: Location) -> Location | None:
    """write(), with any failure reported as one line on stderr instead of raised."""
    try:
        return write(run_dir)
    except Exception as e:  # noqa: BLE001 - the report is a view; the search goes on without it
        print(f"report: could not write {RunDir(run_dir).report}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return None


# --- reading ---------------------------------------------------------------------------------------------


def _finals_html(run_dir: Location, info: RunInfo) -> str:
    """For an extended run: each search's winner (the first, then each extension's) and its one test; the newest
    is the one shown below."""
    if not info.extensions:
        return ""
    finals = [RunDir(run_dir).final_of(k) for k in range(len(info.extensions) + 1)]
    tested = [(f, f.tested()) for f in finals]
    listed = ", ".join(f"{f.path.name}/ {m['accuracy']:.4f}" if m else f"{f.path.name}/ not tested" for f, m in tested)
    return (f"<p>Extended {len(info.extensions)} time(s) (resume --samples): each search's winner over the whole run, "
            f"tested once: {listed}. Below: {finals[-1].path.name}/.</p>")


def _ensemble_html(run_dir: Location, together: dict[str, Any] | None, single: dict[str, Any] | None) -> str:
    """The ensemble beside the single best: test accuracy, upright and rotated rows, members and weights."""
    if together is None:
        return ""
    folders = RunDir(run_dir).final.path.name, RunDir(run_dir).final_ensemble.path.name
    rows = [(f"the single best ({folders[0]}/)", single), (f"the ensemble of finalists ({folders[1]}/)", together)]
    table = pd.DataFrame([{"": name, "test accuracy": m["accuracy"], "upright rows": m.get("upright_accuracy"),
                           "rotated rows": m.get("rotated_accuracy")} for name, m in rows if m is not None])
    members = ", ".join(f"{html.escape(m['trial_id'])} (weight {m['weight']:.2f})" for m in together["members"])
    return (f"<h3>Ensemble</h3><p>Members, chosen by ensemble selection on the finalists' validation predictions "
            f"(validation accuracy {together['selection']['val_accuracy']:.4f}), each retrained on train + validation: "
            f"{members}.</p>" + table.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0))


# --- tables and page -------------------------------------------------------------------------------------

def _facts_html(info: RunInfo, board: pd.DataFrame) -> str:
    settings, trial = info.space.settings, info.options.resources
    resources = info.cluster.get("resources", {})
    started, ended = info.started, info.ended
    wall = "running" if not ended else _duration(started, ended)
    facts = {
        "space": f"{info.space.path} (sha256 {info.space.sha256[:12]})",
        "budget": (f"{settings.samples} sampled trials + {len(settings.baselines)} baselines, "
                   f"at most {settings.max_epochs} epochs each (ASHA: grace {settings.grace_period}, "
                   f"reduction factor {settings.reduction_factor}); {settings.finalists} finalists"),
        "trial-epochs trained": int(board["epochs_trained"].sum()) if len(board) else 0,
        "wall time": f"{wall} (started {started}{', ended ' + ended if ended else ''})",
        "device": (f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs on "
                   f"{info.cluster.get('nodes', '?')} node(s) (host {info.cluster.get('host', '?')}); "
                   f"per trial {trial.cpus} CPU, {trial.gpus} GPU"),
        "Keras backend": info.keras_backend,
        "data": f"{info.data.path} (train {info.data.train}, validation {info.data.validation})",
        "trials per status": ", ".join(f"{s}: {n}" for s, n in board["status"].value_counts().items()) or "none yet",
        "resumed": len(info.resumed),
        "extended": "; ".join(f"{e['samples']} more trials" + (f" within {e['time_budget_s']:g} s" if e.get("time_budget_s") else "")
                              + f" at {e['at']}" for e in info.extensions) or "no",
    }
    return pd.Series(facts, name="").to_frame().to_html(header=False, classes="facts")


def _duration(started: str, ended: str) -> str:
    seconds = (pd.Timestamp(ended) - pd.Timestamp(started)).total_seconds()
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _leaderboard_html(board: pd.DataFrame) -> str:
    if board.empty:
        return "<p class='note'>No trial has reported yet.</p>"
    columns = ["rank", "trial_id", "stage", "status", "best_val_accuracy", "best_epoch", "epochs_trained", "param_count",
               "baseline", "finalist_of", *figures.hyperparameters(board)]
    top = board.head(TOP)[columns].rename(columns=lambda c: c.replace("_", " "))  # headers wrap at the spaces
    return (f"<p>The top {len(top)} of {len(board)} trials (all of them: leaderboard.csv).</p><div class='wide'>"
            + top.to_html(index=False, na_rep="", float_format="{:.4g}".format, classes="board") + "</div>")


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<section><h2>{html.escape(name)}</h2>\n{content}</section>" for name, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ccc; padding: 3px 7px; }}
table.facts th {{ text-align: left; background: #f4f4f4; }} img {{ max-width: 100%; }}
div.wide {{ max-width: 100%; overflow-x: auto; }} table.board {{ font-size: 12px; }}
table.board th {{ white-space: normal; vertical-align: bottom; }}
figcaption, .note {{ color: #555; font-size: 13px; }} section {{ margin-bottom: 2em; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="note">Written {time.strftime('%Y-%m-%d %H:%M:%S')}; rewritten while the search runs.</p>
{body}
</body></html>
"""
