"""A whole search run, top to bottom: prepare, data, connect, tune, pick the best, final (and its report).

Each step is a call into the module that owns it. ``results/<run-name>/`` holds ``run.json`` (how the
run was made, search.provenance), ``leaderboard.csv``, ``epochs.csv``, ``trials.json``, ``best.json``,
Ray's experiment state in ``tune/`` and the final evaluation in ``final/``. ``start`` never reuses a
run folder; ``resume`` continues one. SIGTERM or Ctrl-C ends either with search.stopping.Stopped, after
Tune saved its state.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from search import backend, connection, data, disk, files, final, leaderboard, provenance, report, resources, tuner
from search.errors import UserError
from search.options import RunOptions
from search.space import Space, load_space
from search.stopping import StopSignals


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A run that passed every check that needs no Ray: its options, space, data file (and its search
    data: the training split, divided into search-train and validation) and fresh run folder."""

    options: RunOptions
    space: Space
    data_file: Path
    train: data.Volumes
    val: data.Volumes
    run_dir: Path


def prepare(options: RunOptions) -> Prepared:
    """The backend, the space with the command line's overrides, the whole data file, and a fresh run folder
    that can be written and has room for the run's checkpoints. Nothing here starts Ray."""
    # The backend first (the space's keras-tuner imports Keras), resolved: None means $KERAS_BACKEND, else tensorflow.
    options = dataclasses.replace(options, backend=backend.choose(options.backend))
    space = load_space(options.space_path)
    space = dataclasses.replace(space, settings=space.settings.replace(**options.settings_overrides()))
    data_file = data.resolve(options.data)
    train, val = _search_data(data_file, space)  # validates the whole file
    run_dir = files.new_dir(options.results / (options.name or f"{space.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"))
    with files.removed_if_refused(run_dir):
        disk.check_room(run_dir, space)
    return Prepared(options, space, data_file, train, val, run_dir)


def start(run: Prepared) -> dict[str, Any]:
    """Search the prepared run, then pick the best and test it once; return the summary."""
    options, space, run_dir, train, val = run.options, run.space, run.run_dir, run.train, run.val
    with files.removed_if_refused(run_dir):
        _connect(options, options.backend)
    info = provenance.start(run_dir, options, space, run.data_file, (len(train), len(val)), options.backend)
    with StopSignals(run_dir) as stop:
        with stop.tune():
            records = tuner.search(space, train, val, run_dir, options.resources)
        return _finish(run_dir, info, options, space, run.data_file, train, val, records, stop)


def resume(run_dir: Path, address: str | None = None, final_test: bool = True,
           wait_for_resources: float | None = None) -> dict[str, Any]:
    """Continue an interrupted run to its original trial budget, then pick the best and test it once."""
    run_dir = Path(run_dir)
    info, options = provenance.read(run_dir)
    options = dataclasses.replace(options, address=address or options.address, final=final_test and options.final,
                                  wait_for_resources=options.wait_for_resources if wait_for_resources is None
                                  else wait_for_resources)
    keras_backend = backend.choose(provenance.keras_backend(info))  # the run's, before the tuner imports Keras
    connection.reap_dead_driver(run_dir, info)
    if not tuner.can_restore(run_dir):
        raise UserError(f"{run_dir}: no Ray Tune experiment state to resume (was the run started?)")
    space, data_file = _unchanged_inputs(info)
    train, val = _search_data(data_file, space)
    _connect(options, keras_backend)
    provenance.resumed(run_dir, info, options.address)
    with StopSignals(run_dir) as stop:
        if info.get("search_ended"):  # straight on to the finalists
            records = leaderboard.Records.load(run_dir)
        else:
            with stop.tune():
                records = tuner.resume_search(space, train, val, run_dir, options.resources)
        return _finish(run_dir, info, options, space, data_file, train, val, records, stop)


def _finish(run_dir: Path, info: dict[str, Any], options: RunOptions, space: Space, data_file: Path,
            train: data.Volumes, val: data.Volumes, records: leaderboard.Records, stop: StopSignals) -> dict[str, Any]:
    """After the search: the finalists, the best of all, its one test."""
    provenance.mark(run_dir, info, "search_ended", keep_first=True)
    with stop.tune():
        records = tuner.finalists(records, space.settings, train, val, run_dir, options.resources)
    board = leaderboard.write(run_dir, records)
    provenance.mark(run_dir, info, "ended")
    best = leaderboard.pick(records)
    files.write_json(run_dir / "best.json", best)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "trials": len(board), "best": best}
    if options.final:
        summary["test_accuracy"] = final.test_once(best["params"], data_file, final.out_dir(run_dir), options.resources)
    report.write_or_warn(run_dir)  # the finished run's pictures (rewritten while the search ran)
    return summary


def final_for_rank(run_dir: Path, rank: int, address: str | None = None, keras_backend: str | None = None) -> dict[str, Any]:
    """Retrain and test the configuration ranked `rank` on the leaderboard into final-rank-K/ (final/ for an untested winner).

    It trains under keras_backend, by default the backend the run was made with.
    """
    run_dir = Path(run_dir)
    info, options = provenance.read(run_dir)
    options = dataclasses.replace(options, address=address or options.address)
    keras_backend = backend.choose(keras_backend or provenance.keras_backend(info))
    chosen = leaderboard.pick(leaderboard.Records.load(run_dir), rank)
    _connect(options, keras_backend)
    out = final.out_dir(run_dir, rank)
    accuracy = final.test_once(chosen["params"], Path(info["data"]["path"]), out, options.resources)
    return {"trial_id": chosen["trial_id"], "test_accuracy": accuracy, "final_dir": str(out)}


def _connect(options: RunOptions, keras_backend: str) -> None:
    """Ray, and a node that can hold one trial."""
    connection.connect(options.address, options.dashboard_host, keras_backend, options.resources.mps)
    resources.wait_until_placeable(options.resources, options.wait_s())


def _search_data(data_file: Path, space: Space) -> tuple[data.Volumes, data.Volumes]:
    """The training split, divided into search-train and validation, once the whole file is valid (the test
    split's values are checked and dropped: none reaches a model before the final evaluation)."""
    return data.train_val_split(data.load_train(data_file), space.settings.val_fraction, seed=space.settings.seed)


def _unchanged_inputs(info: dict[str, Any]) -> tuple[Space, Path]:
    """The run's space (with its settings as run) and data file, refused if either file changed since."""
    space = load_space(info["space"]["path"])
    if space.sha256 != info["space"]["sha256"]:
        raise UserError(f"{space.path}: the space file changed since the run started; resume needs the original")
    data_file = Path(info["data"]["path"])
    if data_file.is_file() and data.sha256(data_file) != info["data"]["sha256"]:  # a missing one: _search_data says so
        raise UserError(f"{data_file}: the data file changed since the run started")
    as_run = {k: info["space"]["settings"][k] for k in ("samples", "time_budget_s", "max_epochs", "seed")
              if k in info["space"]["settings"]}
    return dataclasses.replace(space, settings=space.settings.replace(**as_run)), data_file
