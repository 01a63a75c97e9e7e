"""The driver at scale: the service's pipeline against bare Ray Tune, with synthetic trials, at 1,000 and 10,000 trials.

Run: .venv/bin/python benchmarks/bench_scale.py [--trials 1000 10000] [--storage local s3] [--epoch-s 0.05]
Each measurement runs in a process of its own. The service is the real pipeline (``run.prepare`` and
``run.start``: Tune, the study search, TPE, ASHA, RecordKeeper and its journal, the report writer, the
watchers) with only the training replaced (search.synthetic.trainable passed in: a sleep and
a learning curve per epoch, reporting and checkpointing as a trial does). Bare Tune runs the same
synthetic trainable with the same TPE, ASHA, concurrency and checkpoint frequency (and Tune's own retention,
num_to_keep=2: the service keeps the same count by search.retention) and none of our
callbacks. The space is benchmarks/scale_space.py (16 parameters, rungs at 1 and 3 of 9 epochs, 16 at
once, --no-final). "s3" is SeaweedFS on loopback (tests/s3.py).

Printed per run: wall time against the minimum (epochs trained x epoch sleep / concurrency) and the
service's ratio to bare Tune, and the trial processes each started (_trial_processes); for each tenth of the run (by trials proposed) the driver's CPU seconds per
trial, TPE's ask (OptunaSearch.suggest) per trial, and ours per trial (the CPU of every call into what the
service adds to Tune's driver: Probe.OURS); the driver's peak memory; the run folder's size.
Goals (issues 25 and 35): at 10,000 trials within 1.15x bare Tune, at 1,000 within 1.1x (1.3x on SeaweedFS);
ours per trial in the last tenth at most 1.5x the first tenth's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "benchmarks" / "scale_space.py"
CONCURRENCY = 16
TENTHS = 10


class Probe:
    """At each TPE ask (OptunaSearch.suggest: one per trial proposed), the driver's CPU seconds so far and the
    ask's own CPU; a run's tenths are counted in trials proposed, from the first ask to the last (the end of
    the run, after the last proposal, is reported apart). With ours=True it also times, in the thread that
    runs it, every call of what the service adds to Tune's driver (OURS): the records, the Tune loggers the
    pipeline attaches, the study's snapshot, the report (whose thread is not the driver's main one)."""

    OURS = (("search.tuner", "RecordKeeper", ("setup", "on_trial_result", "on_trial_complete", "on_trial_error",
                                              "on_experiment_end")),
            ("search.tuner", "StudySearch", ("save", "restore")),
            ("search.retention", "Retention", ("taking", "stored")),
            ("search.report", None, ("write",)),
            ("search.watch", "TensorBoard", ("log_trial_start", "log_trial_result", "log_trial_end")),
            ("ray.tune.logger", "CSVLoggerCallback", ("log_trial_start", "log_trial_result", "log_trial_end")),
            ("ray.tune.logger", "JsonLoggerCallback", ("log_trial_start", "log_trial_result", "log_trial_end")))

    def __init__(self, ours: bool = False):
        self.asks: list[tuple[float, float]] = []  # (process CPU before the ask, the ask's CPU)
        self.ours: list[tuple[int, float, str]] = []  # (asks so far, the call's CPU in its thread, what was called)
        from ray.tune.search.optuna import OptunaSearch

        suggest = OptunaSearch.suggest

        def timed(searcher, trial_id):
            process, thread = time.process_time(), time.thread_time()
            try:
                return suggest(searcher, trial_id)
            finally:
                self.asks.append((process, time.thread_time() - thread))

        OptunaSearch.suggest = timed
        if ours:
            import importlib

            for module, cls, names in self.OURS:
                owner = importlib.import_module(module)
                owner = getattr(owner, cls) if cls else owner
                for name in names:
                    setattr(owner, name, self._timed(getattr(owner, name)))

    def _timed(self, function):
        import functools

        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.ours.append((len(self.asks), time.thread_time() - started, function.__qualname__))
        return timed

    def tenths(self) -> list[dict[str, float]]:
        """Per tenth of the trials proposed: the driver's CPU per trial, TPE's ask per trial, ours per trial."""
        bounds = [round(k * (len(self.asks) - 1) / TENTHS) for k in range(TENTHS + 1)]
        out = []
        for first, last in zip(bounds, bounds[1:]):
            trials = max(1, last - first)
            cpu = self.asks[last][0] - self.asks[first][0]
            parts: dict[str, float] = {}
            for at, c, name in self.ours:
                if first < at <= last:
                    parts[name] = parts.get(name, 0.0) + c / trials
            out.append({"cpu_per_trial": cpu / trials, "tpe_per_trial": sum(a for _, a in self.asks[first:last]) / trials,
                        "ours_per_trial": sum(parts.values()), "ours_parts": parts})
        return out

    def after_last_ask(self) -> float:
        """The driver's CPU seconds from the last proposal to now (the last trials and the stage's end)."""
        return time.process_time() - self.asks[-1][0]


def _trial_processes() -> int:
    """Trial actors (processes) Ray started in the run, from its state API: Tune reuses a trial's actor only when
    another trial is already waiting for it, so trials that end together cost new processes, each a Python start
    and Ray's imports (about 1.7 CPU-seconds here, as docs/benchmarks.md measured): the largest cost outside the driver."""
    from ray.util.state import list_actors

    return sum(a.class_name == "ImplicitFunc" for a in list_actors(limit=100_000, raise_on_missing_output=False))  # a function trainable


def _folder_size(where: str) -> int:
    from search import storage

    location = storage.parse(where)
    if isinstance(location, Path):
        return sum(p.stat().st_size for p in location.rglob("*") if p.is_file())
    import pyarrow.fs as pafs

    infos = location.filesystem.get_file_info(pafs.FileSelector(location.path, recursive=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def run_service(trials: int, results: str, epoch_s: float) -> dict:
    """The pipeline as `python -m search run benchmarks/scale_space.py --samples N --no-final` runs it."""
    from search import disk, run, storage, synthetic
    from search.leaderboard import Records
    from search.options import RunOptions
    from search.resources import Resources

    probe = Probe(ours=True)
    # The disk check prices Keras checkpoints (12 bytes a parameter, two a trial): 190 GiB at 5,000 trials of this
    # space. A synthetic checkpoint is a few bytes, so it is skipped here; it runs before the timed part anyway.
    disk.check_room = lambda *args: None
    options = RunOptions(SPACE, results=storage.parse(results), name="service", samples=trials, final=False,
                         resources=Resources(cpus=(os.cpu_count() or 1) / CONCURRENCY))
    prepared = run.prepare(options)
    started = time.perf_counter()
    summary = run.start(prepared, synthetic.trainable(epoch_s))
    wall = time.perf_counter() - started
    tail_cpu = probe.after_last_ask()
    loading = time.perf_counter()
    records = Records.load(summary.run_dir)  # what resume reads first
    load_s = time.perf_counter() - loading
    epochs = sum(max(r.epochs, default=0) for r in records.trials.values())
    return {"wall_s": wall, "trials": len(records.trials), "epochs": epochs, "tenths": probe.tenths(), "tail_cpu_s": tail_cpu,
            "processes": _trial_processes(), "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "records_load_s": load_s,
            "folder_mib": _folder_size(str(summary.run_dir)) / 2**20}


def run_bare(trials: int, results: str, epoch_s: float) -> dict:
    """The same synthetic trials, TPE, ASHA and checkpoint settings in a plain Tuner: no callbacks of ours."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from search import bridge, storage, synthetic
    from search.data import Volumes
    from search.protocol import METRIC, Plan

    import numpy as np

    space = bridge.load_space(SPACE)
    settings = space.settings.replace(samples=trials)
    probe = Probe()
    ray.init(num_cpus=os.cpu_count())
    sampler = optuna.samplers.TPESampler(seed=settings.seed, multivariate=True, group=True, constant_liar=True,
                                         n_startup_trials=settings.tpe_startup_trials())
    searcher = ConcurrencyLimiter(OptunaSearch(space=bridge.define_by_run(space), metric=METRIC, mode="max",
                                               sampler=sampler), max_concurrent=CONCURRENCY)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=settings.max_epochs,
                              grace_period=settings.grace_period, reduction_factor=settings.reduction_factor)
    tiny = Volumes(np.zeros((1, 16, 16, 16), np.uint8), np.zeros(1, np.int64))
    # policy.plan's Plan, built here: the bare run uses none of the service's modules
    plan = Plan(checkpoint_every=settings.checkpoint_every, rungs=settings.rungs())
    trainable = tune.with_resources(tune.with_parameters(synthetic.trainable(epoch_s), train=tiny, val=tiny, plan=plan),
                                    {"cpu": (os.cpu_count() or 1) / CONCURRENCY})
    where = storage.parse(results) / "bare"
    started = time.perf_counter()
    grid = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=searcher, scheduler=scheduler,
                                    num_samples=trials, reuse_actors=True),
        run_config=tune.RunConfig(name="tune", **storage.tune_storage(where),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2), verbose=1),
    ).fit()
    wall = time.perf_counter() - started
    tail_cpu = probe.after_last_ask()
    epochs = sum(int(r.metrics.get("epoch", 0)) for r in grid)
    return {"wall_s": wall, "trials": len(grid), "epochs": epochs, "tenths": probe.tenths(), "tail_cpu_s": tail_cpu,
            "processes": _trial_processes(), "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "folder_mib": _folder_size(str(where)) / 2**20}


def study_at_scale(sizes: list[int], asks: int = 5) -> None:
    """TPE's ask and the study's copy in Tune's searcher state against the study's size, outside any run: a study
    of n finished trials of the scale space (random values, a synthetic curve's accuracy), in memory, in
    Optuna's journal file as the service keeps it, and in SQLite as it kept it before; per size, the mean of
    `asks` asks with the service's TPE settings, the journal's replay (a resume, the report), and its bytes
    (what StudySearch.save puts in every snapshot of a bucket run)."""
    import warnings

    import optuna

    from search import bridge, synthetic
    from search import study as run_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    space = bridge.load_space(SPACE)
    sample = bridge.define_by_run(space)
    print("\nThe study at scale (16 parameters; TPE multivariate, grouped, constant liar, as the service):")
    for n in sizes:
        memory = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(n):
            trial = memory.ask()
            memory.tell(trial, synthetic.final_accuracy(sample(trial)))
        folder = Path(tempfile.mkdtemp(prefix="conv3d-study-"))
        url = f"sqlite:///{folder / 'before.sqlite'}"
        journal = folder / "optuna.journal"
        for to in (url, run_study.journal_storage(journal)):
            optuna.copy_study(from_study_name=memory.study_name, from_storage=memory._storage, to_storage=to,
                              to_study_name="scale")
        line = f"  {n:6d} trials:"
        started = time.perf_counter()
        stored = optuna.load_study(study_name="scale", storage=run_study.journal_storage(journal))
        stored.trials
        replay = time.perf_counter() - started
        service = dict(seed=0, multivariate=True, group=True, constant_liar=True, n_startup_trials=16)
        for name, study, sampler in (("in memory", memory, optuna.samplers.TPESampler(**service)),
                                     ("journal, as the service", stored, optuna.samplers.TPESampler(**service)),
                                     ("SQLite, before", optuna.load_study(study_name="scale", storage=url),
                                      optuna.samplers.TPESampler(**service)),
                                     ("in memory, univariate TPE", memory,
                                      optuna.samplers.TPESampler(seed=0, constant_liar=True, n_startup_trials=16))):
            study.sampler = sampler
            seconds = []
            for _ in range(asks):
                started = time.perf_counter()
                trial = study.ask()
                sample(trial)
                seconds.append(time.perf_counter() - started)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            line += f" TPE ask {sum(seconds) / asks * 1e3:7.1f} ms ({name});"
        line += f" journal {journal.stat().st_size / 2**20:5.1f} MiB, replayed in {replay:.2f} s"
        print(line, flush=True)


def _measure(kind: str, trials: int, storage: str, epoch_s: float, env: dict, folder: Path) -> dict:
    """One measurement in a fresh process; its console output goes to a log beside the results."""
    out = folder / f"{kind}-{trials}-{storage}.json"
    log = folder / f"{kind}-{trials}-{storage}.log"
    results = (f"s3://runs/scale-{trials}-{int(time.time())}" if storage == "s3"
               else str(folder / f"runs-{kind}-{trials}"))
    child_env = {**env, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # bare Tune without its loggers too: Tune's machinery only
                 "RAY_MAX_LIMIT_FROM_API_SERVER": "100000"}  # _trial_processes lists every actor the run had
    with open(log, "w") as console:
        subprocess.run([sys.executable, __file__, "--one", kind, "--trials", str(trials), "--results", results,
                        "--out", str(out), "--epoch-s", str(epoch_s)], env=child_env, stdout=console, stderr=subprocess.STDOUT, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def _print(trials: int, storage: str, epoch_s: float, service: dict, bare: dict) -> None:
    print(f"\n{trials} trials, {storage} storage, {CONCURRENCY} at once, {epoch_s} s per epoch:")
    for name, m in (("bare Tune", bare), ("service", service)):
        minimum = m["epochs"] * epoch_s / CONCURRENCY
        print(f"  {name:9s} {m['wall_s']:7.1f} s wall, minimum {minimum:6.1f} s ({m['wall_s'] / minimum:.2f}x), "
              f"{m['trials']} trials, {m['epochs']} epochs, {m['processes']} trial processes, peak {m['peak_mib']:.0f} MiB, folder {m['folder_mib']:.1f} MiB, "
              f"driver CPU after the last proposal {m['tail_cpu_s']:.1f} s")
    print(f"  service / bare Tune: {service['wall_s'] / bare['wall_s']:.3f}x"
          f"  (goal: <= {1.15 if trials >= 10000 else 1.3 if storage == 's3' else 1.1}x); records load (resume) {service['records_load_s']:.2f} s")
    print("  tenth:                 " + " ".join(f"{k + 1:6d}" for k in range(len(service["tenths"]))))
    for name, m in (("bare", bare), ("service", service)):
        print(f"  {name:8s} CPU ms/trial   " + " ".join(f"{t['cpu_per_trial'] * 1e3:6.1f}" for t in m["tenths"]))
        print(f"  {name:8s} TPE ms/trial   " + " ".join(f"{t['tpe_per_trial'] * 1e3:6.1f}" for t in m["tenths"]))
    print("  service  ours ms/trial  " + " ".join(f"{t['ours_per_trial'] * 1e3:6.1f}" for t in service["tenths"]))
    first, last = service["tenths"][0], service["tenths"][-1]
    for name, tenth in (("first", first), ("last", last)):
        parts = sorted(tenth.get("ours_parts", {}).items(), key=lambda kv: -kv[1])
        print(f"  ours in the {name} tenth, ms/trial: " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in parts))
    print(f"  ours (records, loggers, study snapshot, report), last tenth / first: "
          f"{last['ours_per_trial'] / first['ours_per_trial']:.2f}x (goal: <= 1.5x)")
    # The report is rewritten every 30 s or more, so it lands in some tenths and not in others: apart, by halves.
    report = [t.get("ours_parts", {}).get("write", 0.0) for t in service["tenths"]]
    print(f"  without the report: {(last['ours_per_trial'] - report[-1]) / (first['ours_per_trial'] - report[0]):.2f}x; "
          f"the report per trial, first half {sum(report[:5]) / 5 * 1e3:.1f} ms, second half {sum(report[5:]) / 5 * 1e3:.1f} ms")
    growth = (last["cpu_per_trial"] - last["tpe_per_trial"]) / (first["cpu_per_trial"] - first["tpe_per_trial"])
    bare_growth = ((bare["tenths"][-1]["cpu_per_trial"] - bare["tenths"][-1]["tpe_per_trial"])
                   / (bare["tenths"][0]["cpu_per_trial"] - bare["tenths"][0]["tpe_per_trial"]))
    print(f"  the whole driver without TPE, last tenth / first: service {growth:.2f}x, bare Tune {bare_growth:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--storage", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--epoch-s", type=float, default=0.05)
    parser.add_argument("--folder", default=None, help="where runs and logs go (default: a new temporary folder)")
    parser.add_argument("--study-sizes", type=int, nargs="*", default=[1000, 3000, 10000],
                        help="study sizes for the TPE-ask part (none: skip it)")
    parser.add_argument("--one", choices=["service", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measured = (run_service if args.one == "service" else run_bare)(args.trials[0], args.results, args.epoch_s)
        Path(args.out).write_text(json.dumps(measured))
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="conv3d-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"runs and logs: {folder}", flush=True)
    for storage in args.storage:
        env = dict(os.environ)
        server = None
        if storage == "s3":
            sys.path.insert(0, str(ROOT / "tests"))
            from s3 import seaweedfs  # the tests' loopback SeaweedFS

            server = seaweedfs(folder / "seaweedfs")
            env.update(server.__enter__().env())
        try:
            for trials in args.trials:
                bare = _measure("bare", trials, storage, args.epoch_s, env, folder)
                service = _measure("service", trials, storage, args.epoch_s, env, folder)
                _print(trials, storage, args.epoch_s, service, bare)
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    if args.study_sizes:
        study_at_scale(args.study_sizes)


if __name__ == "__main__":
    main()
