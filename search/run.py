"""A whole search run, top to bottom: run folder and provenance, Ray, the tuner, the leaderboard, the final test.

``results/<run-name>/`` holds ``run.json`` (how the run was made), ``leaderboard.csv``,
``epochs.csv``, ``trials.json``, ``best.json``, Ray's experiment state in ``tune/`` and the final
evaluation in ``final/``. An existing run folder is never reused by ``start``; ``resume`` continues one.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from search import backend, connection, data, disk, files, leaderboard, resources
from search.errors import UserError
from search.protocol import ENDED, FINALIST_KEY, Stage, Status
from search.space import Space, load_space
from search.stopping import StopSignals

FINAL_DIR = "final"


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the user chose on the command line for a run (everything else comes from the space file)."""

    space_path: Path
    data: str | None = None
    results: Path = Path("results")
    name: str | None = None
    address: str | None = None
    samples: int | None = None
    max_epochs: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    seed: int | None = None
    final: bool = True
    dashboard_host: str = "127.0.0.1"
    memory_per_trial: float | None = None  # GiB
    backend: str | None = None  # Keras backend; None: $KERAS_BACKEND, else tensorflow
    wait_for_resources: float | None = None  # s to wait for a node that fits a trial; None: resources.default_wait_s


def prepare(options: RunOptions) -> tuple[Space, Path, Path]:
    """Everything that can be checked before Ray starts: the backend, the space, the overrides, the whole data file,
    a fresh run folder we can write, room for the checkpoints. Returns (space, data file, run folder)."""
    backend.choose(options.backend)  # before the space's keras-tuner imports Keras
    space = load_space(options.space_path)
    overrides = {k: v for k, v in {"samples": options.samples, "max_epochs": options.max_epochs,
                                   "seed": options.seed}.items() if v is not None}
    if overrides:
        space = dataclasses.replace(space, settings=space.settings.replace(**overrides))
    data_file = data.check(options.data)
    name = options.name or f"{space.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = files.new_dir(options.results / name)
    with files.removed_if_refused(run_dir):
        disk.check_room(run_dir, space)
    return space, data_file, run_dir


def start(options: RunOptions, space: Space, data_file: Path, run_dir: Path) -> dict[str, Any]:
    """Run the search in run_dir (from prepare), then the final evaluation; return the summary.

    SIGTERM or Ctrl-C ends it with search.stopping.Stopped, after Tune saved its state: resume continues it.
    """
    keras_backend = backend.choose(options.backend)
    from search import tuner

    train, val = _search_data(data_file, space)
    with files.removed_if_refused(run_dir):
        connection.connect(options.address, options.dashboard_host, keras_backend)
        resources.wait_until_placeable(_resources(dataclasses.asdict(options)),
                                       _wait_s(options.wait_for_resources, options.address))
    info = {
        "command": sys.argv,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "space": {"path": str(space.path.resolve()), "sha256": space.sha256, "settings": dataclasses.asdict(space.settings)},
        "data": {"path": str(data_file.resolve()), "sha256": data.sha256(data_file),
                 "train": len(train), "validation": len(val), "val_fraction": space.settings.val_fraction},
        "seed": space.settings.seed,
        "backend": keras_backend,
        "versions": _versions(),
        "worker_env": backend.env_vars(keras_backend),
        "cluster": connection.facts(options.address),
        "started": _now(),
    }
    files.write_json(run_dir / "run.json", info)
    trial_resources = _resources(info["options"])
    with StopSignals(run_dir) as stop:
        with stop.tune():
            tuner.make_tuner(space, train, val, run_dir, trial_resources).fit()
        _finalists(run_dir, info, space, train, val, trial_resources, stop)
        return _finish(run_dir, info, data_file, trial_resources, options.final)


def resume(run_dir: Path, address: str | None = None, final: bool = True,
           wait_for_resources: float | None = None) -> dict[str, Any]:
    """Continue an interrupted run to its original trial budget, then write the leaderboard and final test."""
    run_dir = Path(run_dir)
    info = _read_run(run_dir)
    keras_backend = backend.choose(_run_backend(info))  # the run's, before the tuner imports Keras
    from search import tuner

    connection.reap_dead_driver(run_dir, info)
    if not tuner.can_restore(run_dir):
        raise UserError(f"{run_dir}: no Ray Tune experiment state to resume (was the run started?)")
    space = load_space(info["space"]["path"])
    if space.sha256 != info["space"]["sha256"]:
        raise UserError(f"{space.path}: the space file changed since the run started; resume needs the original")
    data_file = data.check(info["data"]["path"])
    if data.sha256(data_file) != info["data"]["sha256"]:
        raise UserError(f"{data_file}: the data file changed since the run started")
    settings = space.settings.replace(**{k: info["space"]["settings"][k] for k in ("samples", "max_epochs", "seed")})
    space = dataclasses.replace(space, settings=settings)
    train, val = _search_data(data_file, space)
    opts = info["options"]
    address = address or opts["address"]
    connection.connect(address, opts["dashboard_host"], keras_backend)
    trial_resources = _resources(opts)
    wait_s = wait_for_resources if wait_for_resources is not None else opts.get("wait_for_resources")
    resources.wait_until_placeable(trial_resources, _wait_s(wait_s, address))
    info.setdefault("resumed", []).append({"at": _now(), "command": sys.argv, "cluster": connection.facts(address)})
    files.write_json(run_dir / "run.json", info)
    with StopSignals(run_dir) as stop:
        if not info.get("search_ended"):  # else the search had finished: straight on to the finalists
            with stop.tune():
                tuner.restore_tuner(run_dir, train, val, trial_resources, space.settings).fit()
        _finalists(run_dir, info, space, train, val, trial_resources, stop)
        return _finish(run_dir, info, data_file, trial_resources, final and opts["final"])


def _finalists(run_dir: Path, info: dict[str, Any], space: Space, train: data.Volumes, val: data.Volumes,
               trial_resources: resources.Resources, stop: StopSignals) -> None:
    """The finalist stage after the search: retrain the search's top configurations that have no finished finalist yet.

    A resumed run starts the unfinished finalists afresh in a new Tune experiment rather than restoring the
    old one: Tune's restore of a stage killed right after a trial started can keep that trial in the
    concurrency limiter's live set forever, and the search waits on it (seen with one finalist at a time).
    A finalist is at most max_epochs of one trial; the finished ones are kept, the dead driver's others show as lost.
    """
    from search import tuner

    info["search_ended"] = info.get("search_ended") or _now()
    files.write_json(run_dir / "run.json", info)
    settings = space.settings
    if not settings.finalists:
        return
    records = leaderboard.Records.load(run_dir)
    done = {r.finalist_of for r in records.trials.values()
            if r.stage == Stage.FINALIST and r.status in ENDED and r.status != Status.LOST}
    configs = [c for c in tuner.finalist_configs(records, settings) if c[FINALIST_KEY] not in done]
    if configs:
        print(f"finalists: retraining {len(configs)} of the top configurations for {settings.max_epochs} epochs", flush=True)
        with stop.tune():
            tuner.make_finalists_tuner(configs, settings, train, val, run_dir, trial_resources).fit()


def final_for_rank(run_dir: Path, rank: int, address: str | None = None, keras_backend: str | None = None) -> dict[str, Any]:
    """Retrain and test the configuration ranked `rank` on the leaderboard into final-rank-K/.

    It trains under keras_backend, by default the backend the run was made with.
    """
    run_dir = Path(run_dir)
    info = _read_run(run_dir)
    keras_backend = backend.choose(keras_backend or _run_backend(info))
    records = leaderboard.Records.load(run_dir)
    trained = leaderboard.leaderboard(records).query("epochs_trained > 0")
    if not 1 <= rank <= len(trained):
        raise UserError(f"{run_dir}: --rank {rank} is out of range (the leaderboard has {len(trained)} trained trials)")
    opts = info["options"]
    address = address or opts["address"]
    connection.connect(address, opts["dashboard_host"], keras_backend)
    resources.wait_until_placeable(_resources(opts), _wait_s(opts.get("wait_for_resources"), address))
    from search.final import run_final

    row = trained.iloc[rank - 1]
    params = _final_params(records, row["trial_id"], int(row["best_epoch"]))
    out = run_dir / (FINAL_DIR if rank == 1 and not (run_dir / FINAL_DIR).exists() else f"{FINAL_DIR}-rank-{rank}")
    metrics = run_final(params, Path(info["data"]["path"]), out, opts["cpus_per_trial"], opts["gpus_per_trial"])
    return {"trial_id": row["trial_id"], "test_accuracy": metrics["accuracy"], "final_dir": str(out)}


def _resources(options: dict[str, Any]) -> resources.Resources:
    return resources.Resources(options["cpus_per_trial"], options["gpus_per_trial"], options["max_concurrent"],
                               options.get("memory_per_trial"))


def _wait_s(wait_for_resources: float | None, address: str | None) -> float:
    return resources.default_wait_s(address) if wait_for_resources is None else wait_for_resources


def _run_backend(info: dict[str, Any]) -> str:
    """The Keras backend a run was made with (runs from before backends were recorded used TensorFlow)."""
    return info.get("backend") or backend.DEFAULT


def _search_data(data_file: Path, space: Space) -> tuple[data.Volumes, data.Volumes]:
    """The training split only, divided into search-train and validation: the test split stays unread."""
    return data.train_val_split(data.load(data_file, "train"), space.settings.val_fraction, seed=space.settings.seed)


def _finish(run_dir: Path, info: dict, data_file: Path, trial_resources: resources.Resources, final: bool) -> dict[str, Any]:
    records = leaderboard.Records.load(run_dir)
    board = leaderboard.write(run_dir, records)
    info["ended"] = _now()
    files.write_json(run_dir / "run.json", info)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "trials": len(board)}
    trained = board[board["epochs_trained"] > 0]
    if trained.empty:
        raise UserError(f"{run_dir}: no trial trained successfully; see leaderboard.csv for each trial's status")
    best = trained.iloc[0]
    params = _final_params(records, best["trial_id"], int(best["best_epoch"]))
    best_info = {"trial_id": best["trial_id"], "val_accuracy": float(best["best_val_accuracy"]),
                 "best_epoch": int(best["best_epoch"]), "baseline": best["baseline"], "stage": best["stage"],
                 "finalist_of": best["finalist_of"], "params": params}
    files.write_json(run_dir / "best.json", best_info)
    summary["best"] = best_info
    if final and not (run_dir / FINAL_DIR / "test_metrics.json").exists():
        from search.final import run_final

        metrics = run_final(params, data_file, run_dir / FINAL_DIR, trial_resources.cpus, trial_resources.gpus)
        summary["test_accuracy"] = metrics["accuracy"]
    elif final:
        summary["test_accuracy"] = json.loads((run_dir / FINAL_DIR / "test_metrics.json").read_text())["accuracy"]
    return summary


def _final_params(records: leaderboard.Records, trial_id: str, best_epoch: int) -> dict[str, Any]:
    """The trial's configuration, set to train for the epoch count where its validation accuracy peaked.

    It keeps the trial's schedule_epochs: the cosine schedule's horizon, so the retrain's learning rate at
    each epoch is the one the trial had (runs from before schedule_epochs decayed over the epochs trained).
    """
    from search.params import validate

    return validate({**records.trials[trial_id].params, "epochs": best_epoch})


def _read_run(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no run.json)")
    return json.loads(path.read_text())


def _versions() -> dict[str, str]:
    names = ["conv3d-search", "ray", "tensorflow", "jax", "jaxlib", "torch", "keras", "keras-tuner", "optuna", "pandas",
             "numpy", "h5py"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
