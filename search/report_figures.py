"""The report's figures: each drawn from the run's records or final test, saved as a PNG and embedded in the page.

matplotlib's object API with the Agg canvas: no pyplot state, so safe in search.report's background writer.
Each figure is bounded to draw however large the run (the top trials as lines, the others as a density).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd

from search import leaderboard, storage
from search import objectives as goals
from search.protocol import METRIC, Stage, Status
from search.provenance import RunInfo
from search.rundir import RunDir
from search.storage import Location

FIGURES = ("learning_curves", "parallel_coordinates", "importance", "confusion_matrix", "per_digit")
STATUS_COLOURS = {Status.COMPLETED: "#2ca02c", Status.STOPPED: "#ff7f0e", Status.BASELINE: "#1f77b4",
                  Status.RUNNING: "#555555", Status.INFEASIBLE: "#bbbbbb", Status.DIVERGED: "#d62728",
                  Status.OOM: "#9467bd", Status.ERROR: "#8c564b", Status.LOST: "#e377c2"}
CURVES_DRAWN = 30  # trials whose learning curves are drawn as lines; the rest are a density
PARALLEL_DRAWN = 200  # the top trials drawn in the parallel-coordinates figure
HYPERVOLUME_POINTS = 100  # points of the hypervolume's curve, however many trials


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def embed(run_dir: Location, name: str, figure, caption: str) -> str:
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


def learning_curves(records: leaderboard.Records, info: RunInfo):
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


def hyperparameters(board: pd.DataFrame) -> list[str]:
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


def parallel_coordinates(board: pd.DataFrame):
    trained = board[board["epochs_trained"] > 0].head(PARALLEL_DRAWN)
    varying = hyperparameters(trained)
    if len(trained) < 2:
        return None
    scaled = pd.DataFrame(index=trained.index)
    labels = []
    for column in [*varying, "best_val_accuracy"]:
        scaled[column], label = axis(trained[column])
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


def axis(values: pd.Series) -> tuple[pd.Series, str]:
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


def importance_section(run_dir: Location, study) -> str:
    caption = "Optuna's importance evaluator (PED-ANOVA by default) on the study's finished trials"
    if study is None:
        return f"<p class='note'>No Optuna study in {RunDir(run_dir).study.name} yet.</p>"
    import optuna

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))  # read, not changed
    try:
        with warnings.catch_warnings(record=True) as caught:  # its caveats go into the report, not the console
            warnings.simplefilter("always")
            importances = optuna.importance.get_param_importances(  # of accuracy, in a multi-objective study
                study, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None)
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
    return embed(run_dir, "importance", figure, caption)


def pareto_section(run_dir: Location, records: leaderboard.Records) -> str:
    """A multi-objective run's front (accuracy against each cost) and its hypervolume as the trials came in."""
    caption = ("validation accuracy against each cost of the search's trials: the Pareto front in colour (the line "
               "joins it), dominated trials in grey, the configurations retrained as finalists ringed, the knee starred")
    places = records.front_places()  # once: both figures read them
    front = pareto_front(records, places)
    curve = hypervolume_curve(records, places)
    return (embed(run_dir, "pareto_front", front, caption)
            + embed(run_dir, "hypervolume", curve, "the hypervolume of the search's front after each trial, in the "
                    "order the trials started: the share of the box from (accuracy 0, each cost's worst or its limit) "
                    "to (accuracy 1, cost 0) that the front dominates"))


def _search_points(records: leaderboard.Records, places: dict[str, tuple[int, float]]
                   ) -> tuple[list[leaderboard.TrialRecord], np.ndarray]:
    """The search trials on a front (Records.front_places) in the order they started, and their objective values."""
    placed = [r for r in records.trials.values() if r.stage == Stage.SEARCH and r.trial_id in places]
    return placed, np.array([records.objectives.values(r.objective_row()) for r in placed]).reshape(len(placed), -1)


def pareto_front(records: leaderboard.Records, places: dict[str, tuple[int, float]]):
    placed, points = _search_points(records, places)
    if not placed:
        return None
    names = records.objectives.names
    on = np.array([places[r.trial_id][0] == 1 for r in placed])
    retrained = {r.finalist_of for r in records.trials.values() if r.stage == Stage.FINALIST}
    ringed = np.array([r.trial_id in retrained for r in placed])
    knee = records.front(places=places)[0].trial_id
    figure = _new_figure(4.5 * len(names[1:]), 4)
    for ax, (column, cost) in zip(np.atleast_1d(figure.subplots(1, len(names) - 1)), enumerate(names[1:], start=1)):
        ax.scatter(points[~on, column], points[~on, 0], color="#bbbbbb", s=18, label="dominated")
        order = np.argsort(points[on, column])
        ax.plot(points[on, column][order], points[on, 0][order], "o-", color="#1f77b4", markersize=5, label="front")
        ax.scatter(points[ringed, column], points[ringed, 0], s=110, facecolors="none", edgecolors="black",
                   label="retrained as finalists")
        k = next(i for i, r in enumerate(placed) if r.trial_id == knee)
        ax.scatter([points[k, column]], [points[k, 0]], marker="*", s=220, color="#d62728", label="knee", zorder=3)
        if points[:, column].min() > 0 and points[:, column].max() > 10 * points[:, column].min():
            ax.set_xscale("log")
        ax.set_xlabel(cost)
        ax.set_ylabel(METRIC)
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return figure


def hypervolume_curve(records: leaderboard.Records, places: dict[str, tuple[int, float]]):
    placed, points = _search_points(records, places)
    if len(placed) < 2:
        return None
    names, limits = records.objectives.names, dict(records.objectives.limits)
    worst = [1.0, *(limits.get(n, points[:, i].max()) for i, n in enumerate(names[1:], start=1))]
    counts = np.unique(np.linspace(1, len(points), min(len(points), HYPERVOLUME_POINTS)).round().astype(int))
    volumes = [goals.hypervolume(points[:k], names, worst) for k in counts]  # bounded: a large run draws 100 of them
    figure = _new_figure(7, 3.5)
    ax = figure.subplots()
    ax.plot(counts, volumes, "o-", markersize=3)
    ax.set_xlabel("search trials on a front, in the order they started")
    ax.set_ylabel("hypervolume")
    ax.grid(alpha=0.3)
    return figure


def final_section(run_dir: Location, final: dict[str, Any] | None) -> str:
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
    out = embed(run_dir, "confusion_matrix", figure, "confusion matrix of the final model on the test set")
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
    return summary + embed(run_dir, "per_digit", figure, "test accuracy per digit: all rows, upright and rotated")


