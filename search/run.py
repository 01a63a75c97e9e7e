"""A whole search run, top to bottom: prepare, data, connect, tune, pick the best, final (and its report).

Each step is a call into the module that owns it; the run folder's layout is search.rundir's. ``start``
never reuses a run folder; ``resume`` continues one. SIGTERM or Ctrl-C ends either with
search.stopping.Stopped, after Tune saved its state.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from search import backend, bridge, connection, data, disk, ensemble, files, final, leaderboard, provenance, report, resources, storage, study_search, tuner, warmstart, watch
from search import study as run_study
from search.errors import UserError
from search.leaderboard import Pick
from search.options import RunOptions
from search.provenance import RunInfo
from search.rundir import FinalDir, RunDir
from search.space import Space
from search.stopping import StopSignals
from search.storage import Location


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A run that passed every check that needs no Ray: its options, space, data file (and its search
    data: the training split, divided into search-train and validation) and fresh run folder."""

    options: RunOptions
    space: Space
    data_file: Path
    train: data.Volumes
    val: data.Volumes
    run_dir: Location
    warm_start: list[warmstart.Source] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a finished run found: how many trials it recorded, the winner, and the winner's test accuracy
    (None with --no-final)."""

    run_dir: Location
    trials: int
    best: Pick
    test_accuracy: float | None = None
    ensemble: dict[str, Any] | None = None  # the finalists' ensemble's test metrics (search.ensemble), if built
    front: str | None = None  # a multi-objective run's Pareto front: its size and knee (Records.front_line)


@dataclasses.dataclass(frozen=True)
class Retrained:
    """The final retrain of one leaderboard rank: the trial, its test accuracy, the folder it wrote."""

    trial_id: str
    test_accuracy: float
    final_dir: Location


def prepare(options: RunOptions) -> Prepared:
    """The backend, the space with the command line's overrides, the whole data file, and a fresh run folder
    that can be written and has room for the run's checkpoints (in a bucket: the preflight of search.storage).
    Nothing here starts Ray."""
    # The backend first (the space's keras-tuner imports Keras), resolved: None means $KERAS_BACKEND, else tensorflow.
    options = dataclasses.replace(options, backend=backend.choose(options.backend))
    space = bridge.load_space(options.space_path)
    space = dataclasses.replace(space, settings=space.settings.replace(**options.settings_overrides()))
    data_file = data.resolve(options.data)
    train, val = _search_data(data_file, space)  # validates the whole file
    earlier = warmstart.read(space, options.warm_start, data.sha256(data_file)) if options.warm_start else []
    run_dir = storage.new_dir(options.results / (options.name or f"{space.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"))
    with files.removed_if_refused(run_dir):
        disk.check_room(run_dir, space.settings, bridge.param_counts(space))
    return Prepared(options, space, data_file, train, val, run_dir, earlier)


def start(run: Prepared, trainable: tuner.Trainable | None = None) -> Summary:
    """Search the prepared run with `trainable` (search.trial.run_trial by default), then pick the best and test
    it once."""
    options, space, run_dir, train, val = run.options, run.space, run.run_dir, run.train, run.val
    with files.removed_if_refused(run_dir):
        _connect(options, options.backend)
    info = provenance.start(run_dir, options, space, run.data_file, (len(train), len(val)), options.backend,
                            tuner.trainable_name(trainable))
    if run.warm_start:
        _warm_start(run_dir, info, run.warm_start)
    with StopSignals(run_dir) as stop:
        with stop.tune():
            records = tuner.search(space, train, val, run_dir, options.resources, _watchers(run_dir),
                                   trainable=trainable)
        return _finish(run_dir, info, options, space, run.data_file, train, val, records, stop, trainable)


def resume(run_dir: Location, address: str | None = None, final_test: bool = True,
           wait_for_resources: float | None = None, samples: int | None = None,
           time_budget_s: float | None = None, trainable: tuner.Trainable | None = None) -> Summary:
    """Continue an interrupted run to its original trial budget, then pick the best and test it once.

    With samples or time_budget_s, extend a run whose search ended instead: that many more trials (a time budget
    alone: up to the space's samples) in a new experiment, TPE going on from every trial of the same study
    (policy.make_searcher), then the finalists, the pick and the final test over the whole run, into new folders
    (RunDir.search_tune, final_of, ensemble_of); run.json records each extension. Nothing earlier is overwritten.

    A run in a bucket resumes from the bucket alone (Tune's state, the records, the study in Tune's searcher
    state), on any machine; the bucket is checked writable before Ray starts. `trainable` must be the one the run
    was started with (run.json names it)."""
    run_dir = RunDir(run_dir).path
    storage.check_writable(run_dir)
    info = provenance.read(run_dir)
    if tuner.trainable_name(trainable) != info.trainable:
        raise UserError(f"{run_dir}: the run trained with {info.trainable}, not {tuner.trainable_name(trainable)}")
    options = dataclasses.replace(info.options, address=address or info.options.address,
                                  final=final_test and info.options.final,
                                  wait_for_resources=info.options.wait_for_resources if wait_for_resources is None
                                  else wait_for_resources)
    keras_backend = backend.choose(info.keras_backend)  # the run's, before the tuner imports Keras
    connection.reap_dead_driver(run_dir, info.last_cluster)
    extend = samples is not None or time_budget_s is not None
    if extend:
        _check_extendable(run_dir, info, samples, time_budget_s)
    elif not info.extensions and not tuner.can_restore(run_dir):
        raise UserError(f"{run_dir}: no Ray Tune experiment state to resume (was the run started?)")
    space, data_file = _unchanged_inputs(info)
    train, val = _search_data(data_file, space)
    _connect(options, keras_backend)
    provenance.resumed(run_dir, info, options.address)
    with StopSignals(run_dir) as stop:
        if extend:
            provenance.extended(run_dir, info, samples or space.settings.samples, time_budget_s,
                                len(leaderboard.Records.load(run_dir).trials))
        latest = len(info.extensions)
        if info.searched:  # straight on to the finalists
            records = leaderboard.Records.load(run_dir)
        elif latest and (extend or not tuner.can_restore(run_dir, latest)):  # new, or died before Tune saved it
            with stop.tune():
                records = tuner.search(_extension_space(run_dir, space, info), train, val, run_dir, options.resources,
                                       _watchers(run_dir), latest, trainable)
        else:
            with stop.tune():  # the restored experiment keeps the watchers it was started with
                records = tuner.resume_search(space, train, val, run_dir, options.resources, latest, trainable)
        return _finish(run_dir, info, options, space, data_file, train, val, records, stop, trainable)


def _check_extendable(run_dir: Location, info: RunInfo, samples: int | None, time_budget_s: float | None) -> None:
    """An extension needs a budget, a search that ended and the searcher state it ended with; else one line."""
    if (samples is not None and samples < 1) or (time_budget_s is not None and not time_budget_s > 0):
        raise UserError(f"an extension needs samples >= 1 and a time budget > 0 s (got {samples}, {time_budget_s})")
    if info.extensions and not info.searched and not tuner.can_restore(run_dir, len(info.extensions)):
        info.extensions.pop()  # an extension that died before Tune saved anything: this one takes its place
    if not info.searched:
        raise UserError(f"{run_dir}: its search has not ended; resume it without --samples or --time-budget first")
    study_search.searcher_state(RunDir(run_dir).search_tune(len(info.extensions)))  # what the extension goes on from


def _extension_space(run_dir: Location, space: Space, info: RunInfo) -> Space:
    """The space with the newest extension's budget (no baselines: they ran), said on the console."""
    more = info.extensions[-1]
    print(f"extending the search: up to {more['samples']} more trial{'s' if more['samples'] != 1 else ''}"
          + (f" within {more['time_budget_s']:g} s" if more["time_budget_s"] else "")
          + f" in {RunDir(run_dir).search_tune(len(info.extensions)).name}", flush=True)
    settings = space.settings.replace(samples=more["samples"], time_budget_s=more["time_budget_s"], baselines=())
    return dataclasses.replace(space, settings=settings)


def _finish(run_dir: Location, info: RunInfo, options: RunOptions, space: Space, data_file: Path,
            train: data.Volumes, val: data.Volumes, records: leaderboard.Records, stop: StopSignals,
            trainable: tuner.Trainable | None) -> Summary:
    """After the search (or its latest extension): the finalists, the best of all, its one test, into that
    search's folders."""
    extension = len(info.extensions)
    provenance.mark(run_dir, info, "search_ended", keep_first=True)
    run_study.export(run_dir)
    with stop.tune():
        records = tuner.finalists(records, space.settings, train, val, run_dir, options.resources, _watchers(run_dir),
                                  trainable)
    leaderboard.write(run_dir, records)
    best = records.pick()
    storage.write_json(RunDir(run_dir).best_of(extension), best.to_json())
    run_study.export(run_dir)
    earlier = RunDir(run_dir).final if extension else None  # the newest tested: an unchanged winner's is copied
    accuracy = (final.test_once(best.params, data_file, RunDir(run_dir).final_of(extension), options.resources, earlier)
                if options.final else None)
    together = (_ensemble(run_dir, records, val, data_file, space.settings.finalists, options.resources, extension)
                if options.final else None)
    provenance.mark(run_dir, info, "ended")  # after the final retrain and test: the run's whole wall time
    report.write_or_warn(run_dir)  # the finished run's pictures (rewritten while the search ran)
    return Summary(run_dir, len(records.trials), best, accuracy, together, records.front_line())


def _ensemble(run_dir: Location, records: leaderboard.Records, val: data.Volumes, data_file: Path, size: int,
              resources: resources.Resources, extension: int) -> dict[str, Any] | None:
    """With 2 finalists or more, their ensemble (search.ensemble) beside the winner; a failure is one line, and the
    run still ends with the winner's test."""
    if size < 2:
        return None
    try:
        return ensemble.test_once(run_dir, records, val, data_file, size, resources, RunDir(run_dir).ensemble_of(extension))
    except UserError as e:
        print(f"ensemble: not built: {e}", file=sys.stderr, flush=True)
        return None


def final_ensemble(run_dir: Location, size: int, address: str | None = None,
                   keras_backend: str | None = None) -> tuple[dict[str, Any], Location]:
    """An ensemble of `size` selections among the run's finalists, retrained (under keras_backend, by default
    the run's) and tested once into a new final-ensemble folder; its test metrics and the folder."""
    run_dir = RunDir(run_dir).path
    storage.check_writable(run_dir)
    info = provenance.read(run_dir)
    options = dataclasses.replace(info.options, address=address or info.options.address)
    keras_backend = backend.choose(keras_backend or info.keras_backend)
    space, data_file = _unchanged_inputs(info)
    _, val = _search_data(data_file, space)
    records = leaderboard.Records.load(run_dir)
    ensemble.candidates(run_dir, records)  # the data and the finalists are checked before Ray starts
    _connect(options, keras_backend)
    out = RunDir(run_dir).new_ensemble()
    return ensemble.test_once(run_dir, records, val, data_file, size, options.resources, out), out.path


def final_for_rank(run_dir: Location, rank: int, address: str | None = None,
                   keras_backend: str | None = None, within: str | None = None) -> Retrained:
    """Retrain and test the configuration ranked `rank` on the leaderboard into final-rank-K/ (final/ for an untested
    winner); with `within` ("latency_ms<=1.5"), the most accurate trial within those costs into final-pareto-TRIAL/
    (tested once: the same pick again reads its result).

    It trains under keras_backend, by default the backend the run was made with.
    """
    run_dir = RunDir(run_dir).path
    storage.check_writable(run_dir)
    info = provenance.read(run_dir)
    options = dataclasses.replace(info.options, address=address or info.options.address)
    keras_backend = backend.choose(keras_backend or info.keras_backend)
    chosen = leaderboard.Records.load(run_dir).pick(rank, within)
    _connect(options, keras_backend)
    out: FinalDir = RunDir(run_dir).final_within(chosen.trial_id) if within else RunDir(run_dir).final_for_rank(rank)
    accuracy = final.test_once(chosen.params, info.data.path, out, options.resources)
    return Retrained(chosen.trial_id, accuracy, out.path)


def _warm_start(run_dir: Location, info: RunInfo, sources: list[warmstart.Source]) -> None:
    """Tell the earlier runs' trials to the study before TPE proposes; run.json and the console say how many."""
    warmstart.tell(sources, run_study.live_storage(run_dir), run_study.name(run_dir))
    provenance.note(run_dir, info, "warm_start", [s.to_json() for s in sources])
    for s in sources:
        print(f"warm start: told TPE {len(s.trials)} trials of {s.run_dir} ({s.skipped} did not fit the space)", flush=True)


def _watchers(run_dir: Location) -> tuner.Watchers:
    """What watches a stage: TensorBoard, CSV and JSON logs, the Optuna study in the run folder, the report."""
    return tuner.Watchers(tuple(watch.tune_loggers()), run_study.searcher_arguments(run_dir), report.ReportWriter(run_dir).soon)


def _connect(options: RunOptions, keras_backend: str) -> None:
    """Tune's settings, Ray, and a node that can hold one trial."""
    tuner.setup()
    connection.connect(options.address, options.dashboard_host, keras_backend, options.resources.mps)
    resources.wait_until_placeable(options.resources, options.wait_s())


def _search_data(data_file: Path, space: Space) -> tuple[data.Volumes, data.Volumes]:
    """The training split, divided into search-train and validation, once the whole file is valid (the test
    split's values are checked and dropped: none reaches a model before the final evaluation)."""
    return data.train_val_split(data.load_train(data_file), space.settings.val_fraction, seed=space.settings.seed)


def _unchanged_inputs(info: RunInfo) -> tuple[Space, Path]:
    """The run's space (with its settings as run) and data file, refused if either file changed since."""
    space = bridge.load_space(info.space.path)
    if space.sha256 != info.space.sha256:
        raise UserError(f"{space.path}: the space file changed since the run started; resume needs the original")
    data_file = info.data.path
    if data_file.is_file() and data.sha256(data_file) != info.data.sha256:  # a missing one: _search_data says so
        raise UserError(f"{data_file}: the data file changed since the run started")
    as_run = {k: getattr(info.space.settings, k) for k in ("samples", "time_budget_s", "max_epochs", "seed")}
    return dataclasses.replace(space, settings=space.settings.replace(**as_run)), data_file
