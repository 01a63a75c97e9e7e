"""A whole search run, top to bottom: run folder and provenance, Ray, the tuner, the leaderboard, the final test.

``results/<run-name>/`` holds ``run.json`` (how the run was made), ``leaderboard.csv``,
``epochs.csv``, ``trials.json``, ``best.json``, Ray's experiment state in ``tune/`` and the final
evaluation in ``final/``. An existing run folder is never reused by ``start``; ``resume`` continues one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from search import backend, data, files, leaderboard
from search.errors import UserError
from search.space import Space, load_space

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


def prepare(options: RunOptions) -> tuple[Space, Path]:
    """Everything that can be checked before Ray starts: the backend, the space, the overrides, a fresh run folder."""
    backend.choose(options.backend)  # before the space's keras-tuner imports Keras
    space = load_space(options.space_path)
    overrides = {k: v for k, v in {"samples": options.samples, "max_epochs": options.max_epochs,
                                   "seed": options.seed}.items() if v is not None}
    if overrides:
        space = dataclasses.replace(space, settings=space.settings.replace(**overrides))
    name = options.name or f"{space.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return space, files.new_dir(options.results / name)


def start(options: RunOptions, space: Space, run_dir: Path) -> dict[str, Any]:
    """Run the search in run_dir (from prepare), then the final evaluation; return the summary."""
    keras_backend = backend.choose(options.backend)
    from search import tuner

    data_file = data.resolve(options.data)
    train, val = _search_data(data_file, space)
    connect(options.address, options.dashboard_host, keras_backend)
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
        "cluster": _cluster(options.address),
        "started": _now(),
    }
    files.write_json(run_dir / "run.json", info)
    resources = _resources(info["options"])
    tuner.make_tuner(space, train, val, run_dir, resources).fit()
    _finalists(run_dir, info, space, train, val, resources)
    return _finish(run_dir, info, data_file, resources, options.final)


def resume(run_dir: Path, address: str | None = None, final: bool = True) -> dict[str, Any]:
    """Continue an interrupted run to its original trial budget, then write the leaderboard and final test."""
    run_dir = Path(run_dir)
    info = _read_run(run_dir)
    keras_backend = backend.choose(_run_backend(info))  # the run's, before the tuner imports Keras
    from search import tuner

    _reap_dead_driver(run_dir, info)
    if not tuner.can_restore(run_dir):
        raise UserError(f"{run_dir}: no Ray Tune experiment state to resume (was the run started?)")
    space = load_space(info["space"]["path"])
    if space.sha256 != info["space"]["sha256"]:
        raise UserError(f"{space.path}: the space file changed since the run started; resume needs the original")
    data_file = Path(info["data"]["path"])
    if data.sha256(data_file) != info["data"]["sha256"]:
        raise UserError(f"{data_file}: the data file changed since the run started")
    settings = space.settings.replace(**{k: info["space"]["settings"][k] for k in ("samples", "max_epochs", "seed")})
    space = dataclasses.replace(space, settings=settings)
    train, val = _search_data(data_file, space)
    opts = info["options"]
    address = address or opts["address"]
    connect(address, opts["dashboard_host"], keras_backend)
    info.setdefault("resumed", []).append({"at": _now(), "command": sys.argv, "cluster": _cluster(address)})
    files.write_json(run_dir / "run.json", info)
    resources = _resources(opts)
    if not info.get("search_ended"):  # else the search had finished: straight on to the finalists
        tuner.restore_tuner(run_dir, train, val, resources, space.settings).fit()
    _finalists(run_dir, info, space, train, val, resources)
    return _finish(run_dir, info, data_file, resources, final and opts["final"])


def _finalists(run_dir: Path, info: dict[str, Any], space: Space, train: data.Volumes, val: data.Volumes,
               resources) -> None:
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
            if r.stage == leaderboard.FINALIST and r.status in leaderboard.FINAL and r.status != leaderboard.LOST}
    configs = [c for c in tuner.finalist_configs(records, settings) if c[tuner.FINALIST_KEY] not in done]
    if configs:
        print(f"finalists: retraining {len(configs)} of the top configurations for {settings.max_epochs} epochs", flush=True)
        tuner.make_finalists_tuner(configs, settings, train, val, run_dir, resources).fit()


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
    connect(address or opts["address"], opts["dashboard_host"], keras_backend)
    from search.final import run_final

    row = trained.iloc[rank - 1]
    params = _final_params(records, row["trial_id"], int(row["best_epoch"]))
    out = run_dir / (FINAL_DIR if rank == 1 and not (run_dir / FINAL_DIR).exists() else f"{FINAL_DIR}-rank-{rank}")
    metrics = run_final(params, Path(info["data"]["path"]), out, opts["cpus_per_trial"], opts["gpus_per_trial"])
    return {"trial_id": row["trial_id"], "test_accuracy": metrics["accuracy"], "final_dir": str(out)}


def connect(address: str | None, dashboard_host: str = "127.0.0.1", keras_backend: str = backend.DEFAULT) -> None:
    """Start a local Ray (dashboard on dashboard_host) or join the cluster at address ("auto" for the local one).

    Every worker process of this job gets KERAS_BACKEND=keras_backend (and the backend's other variables).
    """
    import ray

    if ray.is_initialized():
        return
    env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::DeprecationWarning",
                        **backend.env_vars(keras_backend)}}
    env["worker_process_setup_hook"] = "search.console.setup_worker"  # TensorFlow's GPU-less start-up lines
    if address:
        context = ray.init(address=address, runtime_env=env)
    else:
        context = ray.init(include_dashboard=True, dashboard_host=dashboard_host, runtime_env=env)
    url = getattr(context, "dashboard_url", None)
    if url:
        from search.cluster import dashboard_login_hint

        print(dashboard_login_hint(url=f"http://{url}"), flush=True)


def _resources(options: dict[str, Any]):
    from search.tuner import Resources

    return Resources(options["cpus_per_trial"], options["gpus_per_trial"], options["max_concurrent"],
                     options.get("memory_per_trial"))


def _run_backend(info: dict[str, Any]) -> str:
    """The Keras backend a run was made with (runs from before backends were recorded used TensorFlow)."""
    return info.get("backend") or backend.DEFAULT


def _reap_dead_driver(run_dir: Path, info: dict[str, Any]) -> None:
    """Refuse to resume a run whose driver is alive; kill what a dead driver's local Ray left running.

    When a driver that started its own Ray is SIGKILLed, Ray's core processes exit with it but some
    helpers (the dashboard and runtime-env agents) live on, orphaned. They hold files in that Ray
    session's folder, which is how we recognise them.
    """
    import psutil

    last = (info.get("resumed") or [info])[-1]["cluster"]
    if psutil.pid_exists(last["pid"]) and "search" in " ".join(psutil.Process(last["pid"]).cmdline()):
        raise UserError(f"{run_dir}: its driver (pid {last['pid']}) is still running; stop it before resuming")
    if last.get("address") or not last.get("session"):
        return  # a cluster we joined belongs to its owner, not to us
    for process in psutil.process_iter():
        try:
            if any(last["session"] in f.path for f in process.open_files()):
                process.kill()
        except (psutil.Error, OSError):
            continue


def _search_data(data_file: Path, space: Space) -> tuple[data.Volumes, data.Volumes]:
    """The training split only, divided into search-train and validation: the test split stays unread."""
    return data.train_val_split(data.load(data_file, "train"), space.settings.val_fraction, seed=space.settings.seed)


def _finish(run_dir: Path, info: dict, data_file: Path, resources, final: bool) -> dict[str, Any]:
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

        metrics = run_final(params, data_file, run_dir / FINAL_DIR, resources.cpus, resources.gpus)
        summary["test_accuracy"] = metrics["accuracy"]
    elif final:
        summary["test_accuracy"] = json.loads((run_dir / FINAL_DIR / "test_metrics.json").read_text())["accuracy"]
    from search import report

    report.write_or_warn(run_dir)  # the finished run's pictures (it was rewritten while the search ran)
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


def _cluster(address: str | None) -> dict[str, Any]:
    import ray

    return {"address": address,  # None: a local Ray that this driver started
            "session": ray.get_runtime_context().get_session_name(),
            "resources": ray.cluster_resources(), "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "host": platform.node(), "pid": os.getpid()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
