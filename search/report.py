"""A run's report: ``report.html`` (one self-contained page, figures embedded) and each figure as a PNG beside it.

Plain files in, pictures out: it reads only the run folder (run.json, the records, the final test, the Optuna
study) and knows nothing about Ray. It never reads the test set: the final stage keeps its predictions.
Works mid-run too (what is there so far); ``ReportWriter`` rewrites it in the background while a search
runs, when the pipeline attaches it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import sys
import threading
import time
import warnings
from typing import Any

import pandas as pd

from search import leaderboard, provenance, storage
from search import study as run_study
from search.errors import UserError
from search.protocol import Stage, Status
from search.provenance import RunInfo
from search.rundir import FinalDir, RunDir
from search.storage import Location

REPORT = RunDir(".").report.name
FIGURES = ("learning_curves", "parallel_coordinates", "importance", "confusion_matrix", "per_digit")
STATUS_COLOURS = {Status.COMPLETED: "#2ca02c", Status.STOPPED: "#ff7f0e", Status.BASELINE: "#1f77b4",
                  Status.RUNNING: "#555555", Status.INFEASIBLE: "#bbbbbb", Status.DIVERGED: "#d62728",
                  Status.OOM: "#9467bd", Status.ERROR: "#8c564b", Status.LOST: "#e377c2"}
TOP = 10  # leaderboard rows shown in the report
CURVES_DRAWN = 30  # trials whose learning curves are drawn as lines; the rest are a density
PARALLEL_DRAWN = 200  # the top trials drawn in the parallel-coordinates figure
_LOCK = threading.Lock()  # one render at a time per process: the background writer and the end of a run


def write(run_dir: Location) -> Location:
    """Render the run folder's report.html and its PNGs (each written whole); return the report's path."""
    run_dir = RunDir(run_dir).path
    with _LOCK:
        info = provenance.read(run_dir)
        records = leaderboard.Records.load(run_dir)
        board = leaderboard.leaderboard(records)
        final = _tested(RunDir(run_dir).final)
        study = run_study.load(run_dir)
        sections = [
            ("The run", _facts_html(info, board)),
            ("Learning curves", _figure(run_dir, "learning_curves", _learning_curves(records, info),
                                        f"validation accuracy per epoch of the top {CURVES_DRAWN} trials, coloured by "
                                        "status (any others: their epochs' density, in grey); dotted lines: ASHA's "
                                        "rungs, where it stops the weaker trials")),
            ("Leaderboard", _leaderboard_html(board)
             + _figure(run_dir, "parallel_coordinates", _parallel_coordinates(board),
                       f"the top {PARALLEL_DRAWN} trained trials' hyperparameters (each axis scaled to its range) and best "
                       "validation accuracy")),
            ("Hyperparameter importance", _importance_section(run_dir, study)),
            ("Final test", _finals_html(run_dir, info) + _final_section(run_dir, final)
             + _ensemble_html(run_dir, _tested(RunDir(run_dir).final_ensemble), final)),
        ]
        page = _page(f"Run {RunDir(run_dir).name}", sections)
        storage.write_text(RunDir(run_dir).report, page)
        return RunDir(run_dir).report


EVERY_S_VARIABLE = "CONV3D_SEARCH_REPORT_EVERY_S"  # how often the live report may be rewritten, in seconds


def _seconds(variable: str, default: float) -> float:
    """A positive number of seconds from the environment variable, else default; a bad value is a UserError."""
    value = os.environ.get(variable)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UserError(f"${variable}={value!r}: expected a number of seconds above 0")
    return seconds


class ReportWriter:
    """Rewrites a run's report in a background thread while the search runs: at most every EVERY_S seconds, and
    at most once per SPACING times the last rewrite's duration (a bounded share of the driver, however large
    the run). A failure is one line on stderr, never an exception: a picture must not stop a search.
    """

    EVERY_S = _seconds(EVERY_S_VARIABLE, default=30.0)  # a rewrite costs the driver about 2 CPU-seconds
    SPACING = 20

    def __init__(self, run_dir: Location):
        self.run_dir = RunDir(run_dir).path
        self.due = 0.0  # monotonic time of the next rewrite: the first call writes at once
        self.thread: threading.Thread | None = None

    def soon(self) -> None:
        """Start a rewrite unless one runs or the next is not due yet."""
        if (self.thread and self.thread.is_alive()) or time.monotonic() < self.due:
            return
        self.due = math.inf  # set when this rewrite ends
        self.thread = threading.Thread(target=self._write, name="report", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        started = time.monotonic()
        write_or_warn(self.run_dir)
        self.due = started + max(self.EVERY_S, self.SPACING * (time.monotonic() - started))

    def __getstate__(self) -> dict[str, Any]:  # pickled (as Tune does its callbacks): no thread, no stale clock
        return {**self.__dict__, "thread": None, "due": 0.0}


def write_or_warn(run_dir: Location) -> Location | None:
    """write(), with any failure reported as one line on stderr instead of raised."""
    try:
        return write(run_dir)
    except Exception as e:  # noqa: BLE001 - the report is a view; the search goes on without it
        print(f"report: could not write {RunDir(run_dir).report}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return None


# --- reading ---------------------------------------------------------------------------------------------

def _tested(final: FinalDir) -> dict[str, Any] | None:
    """A final folder's test metrics (the winner's, the ensemble's), once the final stage wrote them."""
    path = final.test_metrics
    return json.loads(storage.read_text(path)) if storage.is_file(path) else None


def _finals_html(run_dir: Location, info: RunInfo) -> str:
    """For an extended run: each search's winner (the first, then each extension's) and its one test; the newest
    is the one shown below."""
    if not info.extensions:
        return ""
    finals = [RunDir(run_dir).final_of(k) for k in range(len(info.extensions) + 1)]
    tested = [(f, _tested(f)) for f in finals]
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

# --- figures (matplotlib's object API with the Agg canvas: no pyplot state, safe in a background thread) ---

def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _figure(run_dir: Location, name: str, figure, caption: str) -> str:
    """Save figure as name.png beside the report and return it as an embedded <figure> (None: a note instead)."""
    if figure is None:
        return f"<p class='note'>{html.escape(caption)}: nothing to show yet.</p>"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    png = buffer.getvalue()
    storage.write_bytes(RunDir(run_dir).figure(name), png)
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure id='{name}'><img alt='{name}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)} ({name}.png)</figcaption></figure>")


def _learning_curves(records: leaderboard.Records, info: RunInfo):
    """The top CURVES_DRAWN trials' curves as lines, the others' epochs as a grey density: bounded to draw."""
    trials = [r for r in records.ranked() if r.epochs]
    if not trials:
        return None
    figure = _new_figure(9, 5)
    ax = figure.subplots()
    trials, rest = trials[:CURVES_DRAWN], trials[CURVES_DRAWN:]
    if rest:
        _density(ax, rest)
    for record in trials:
        epochs = sorted(record.epochs)
        values = [record.epochs[e]["val_accuracy"] for e in epochs]
        colour = STATUS_COLOURS.get(record.status, "#000000")
        style = "--" if record.stage == Stage.FINALIST else "-"
        ax.plot(epochs, values, style, color=colour, marker="o", markersize=3, linewidth=1.2, alpha=0.85)
        if record.status == Status.STOPPED:  # where ASHA cut it
            ax.plot(epochs[-1], values[-1], "x", color=colour, markersize=9, markeredgewidth=2)
    for rung in info.space.settings.rungs():
        ax.axvline(rung, color="#444444", linestyle=":", linewidth=1)
        ax.annotate(f"rung {rung}", (rung, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom",
                    fontsize=8)
    from matplotlib.lines import Line2D

    shown = sorted({r.status for r in trials})
    handles = [Line2D([], [], color=STATUS_COLOURS.get(s, "#000000"), label=s) for s in shown]
    handles += [Line2D([], [], color="#777777", linestyle="--", label="finalist (full budget)"),
                Line2D([], [], color="#777777", marker="x", linestyle="", label="stopped by ASHA here")]
    if rest:
        handles.append(Line2D([], [], color="#999999", marker="s", linestyle="",
                              label=f"the other {len(rest)} trials' epochs"))
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    return figure


def _density(ax, records: list[leaderboard.TrialRecord]) -> None:
    """Every epoch of these trials as a count per (epoch, 2 % of accuracy) cell, in greys (log scale)."""
    import numpy as np
    from matplotlib.colors import LogNorm

    points = np.array([(e, m["val_accuracy"]) for r in records for e, m in r.epochs.items()], dtype=float)
    last = int(points[:, 0].max())
    counts, xs, ys = np.histogram2d(points[:, 0], points[:, 1], bins=(np.arange(0.5, last + 1.5), np.linspace(0, 1, 51)))
    ax.pcolormesh(xs, ys, np.ma.masked_equal(counts.T, 0), cmap="Greys", norm=LogNorm(vmin=1), alpha=0.6)


def _hyperparameters(board: pd.DataFrame) -> list[str]:
    """The hyperparameter columns that differ between trials: set to two values, or set in some trials (at least
    two) and absent in others. A parameter only one trial sets (a baseline's explicit defaults) is left out."""
    def varies(values: pd.Series) -> bool:
        present = values.dropna()
        return _text(present).nunique() > 1 or (len(present) >= 2 and values.isna().any())

    columns = board.columns[len(leaderboard.LEADERBOARD_COLUMNS):]
    return [c for c in columns if c != "seed" and varies(board[c])]


def _text(values: pd.Series) -> pd.Series:
    """Values as text, a parameter a trial lacks (conditional ones) as "absent" (pandas 3 keeps NaN in astype(str))."""
    return values.map(lambda v: "absent" if pd.isna(v) else str(v))


def _parallel_coordinates(board: pd.DataFrame):
    trained = board[board["epochs_trained"] > 0].head(PARALLEL_DRAWN)
    varying = _hyperparameters(trained)
    if len(trained) < 2:
        return None
    scaled = pd.DataFrame(index=trained.index)
    labels = []
    for column in [*varying, "best_val_accuracy"]:
        scaled[column], label = _axis(trained[column])
        labels.append(f"{column}\n{label}")
    scaled["status"] = trained["status"]
    figure = _new_figure(max(6.0, 1.6 * len(labels)), 4.5)
    ax = figure.subplots()
    statuses = scaled["status"].drop_duplicates().tolist()  # pandas colours the classes in this order
    pd.plotting.parallel_coordinates(scaled, "status", ax=ax, color=[STATUS_COLOURS.get(s, "#000") for s in statuses],
                                     alpha=0.8, linewidth=1.5)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("scaled to each axis's range")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def _axis(values: pd.Series) -> tuple[pd.Series, str]:
    """One parallel-coordinates axis: values scaled to [0, 1] (log where they span decades; a parameter a
    trial lacks, as conditional ones do, at -0.1) and the axis's label."""
    import numpy as np

    numeric = pd.to_numeric(values, errors="coerce")
    if values.dtype != bool and numeric.notna().any() and numeric.notna().sum() == values.notna().sum():
        low, high = float(numeric.min()), float(numeric.max())
        log = low > 0 and high / low > 20
        position = np.log(numeric) if log else numeric
        first, last = (np.log(low), np.log(high)) if log else (low, high)
        scaled = (position - first) / (last - first) if last > first else position * 0 + 0.5
        label = f"{low:.3g}–{high:.3g}{' (log)' if log else ''}" + (", absent: below" if numeric.isna().any() else "")
        return scaled.fillna(-0.1), label
    text = _text(values)
    order = sorted(text.unique())  # categorical: its values in sorted order, spread over [0, 1]
    label = " / ".join(order) if len(order) <= 4 else f"{len(order)} values"
    return text.map({v: i / max(len(order) - 1, 1) for i, v in enumerate(order)}), label


def _importance_section(run_dir: Location, study) -> str:
    caption = "Optuna's importance evaluator (PED-ANOVA by default) on the study's finished trials"
    if study is None:
        return f"<p class='note'>No Optuna study in {RunDir(run_dir).study.name} yet.</p>"
    import optuna

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    try:
        with warnings.catch_warnings(record=True) as caught:  # its caveats go into the report, not the console
            warnings.simplefilter("always")
            importances = optuna.importance.get_param_importances(study)
        caveats = sorted({str(w.message) for w in caught})
        caption += f" (Optuna: {' '.join(caveats)})" if caveats else ""
    except Exception as e:  # noqa: BLE001 - too few finished trials, nothing that varies: a note, not a failed report
        return f"<p class='note'>{html.escape(caption)}: not available yet ({html.escape(str(e))}).</p>"
    if not importances:
        return f"<p class='note'>{html.escape(caption)}: no parameter to assess yet.</p>"
    series = pd.Series(importances).sort_values()
    figure = _new_figure(7, 0.45 * len(series) + 1.5)
    ax = figure.subplots()
    series.plot.barh(ax=ax, color="#1f77b4")
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(f"{len(finished)} finished trials of study '{study.study_name}'", fontsize=9)
    return _figure(run_dir, "importance", figure, caption)


def _final_section(run_dir: Location, final: dict[str, Any] | None) -> str:
    if final is None:
        return "<p class='note'>The final retrain and its one test evaluation run after the search.</p>"
    import numpy as np

    confusion = np.array(final["confusion_matrix"])
    figure = _new_figure(6, 5.2)
    ax = figure.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    for (true, predicted), count in np.ndenumerate(confusion):
        if count:
            ax.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(len(confusion)))
    ax.set_yticks(range(len(confusion)))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"test accuracy {final['accuracy']:.4f} on {final['samples']} volumes", fontsize=9)
    figure.colorbar(image, ax=ax, shrink=0.8)
    out = _figure(run_dir, "confusion_matrix", figure, "confusion matrix of the final model on the test set")
    averaged = final.get("test_time_averaging")
    if averaged and averaged["views"] > 1:
        out = f"<p>Each test prediction averages the {html.escape(averaged['over'])}.</p>" + out
    return out + _per_digit(run_dir, final)


def _per_digit(run_dir: Location, final: dict[str, Any]) -> str:
    """Per-digit accuracy, all rows and upright (even rows) vs rotated (odd rows) where predictions were kept."""
    table = pd.DataFrame({"all": pd.Series(final["per_class_accuracy"]).astype(float)})
    table.index = table.index.astype(int)
    path = RunDir(run_dir).final.predictions
    summary = ""
    if storage.is_file(path):
        rows = pd.read_csv(io.BytesIO(storage.read_bytes(path)))
        rows["correct"] = rows["digit"] == rows["predicted"]
        rows["kind"] = rows["row"].mod(2).map({0: "upright", 1: "rotated"})
        kinds = rows.pivot_table(index="digit", columns="kind", values="correct", aggfunc="mean")
        table = table.join(kinds[[k for k in ("upright", "rotated") if k in kinds]])
        overall = rows.groupby("kind")["correct"].mean()
        summary = (f"<p>Upright rows (even, the original digits): <b>{overall.get('upright', float('nan')):.4f}</b>; "
                   f"rotated rows (odd, their randomly rotated copies): <b>{overall.get('rotated', float('nan')):.4f}</b>.</p>")
    figure = _new_figure(8, 4)
    ax = figure.subplots()
    table.plot.bar(ax=ax, rot=0, color=["#444444", "#2ca02c", "#ff7f0e"][: len(table.columns)])
    ax.set_xlabel("digit")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    return summary + _figure(run_dir, "per_digit", figure, "test accuracy per digit: all rows, upright and rotated")


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
               "baseline", "finalist_of", *_hyperparameters(board)]
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
