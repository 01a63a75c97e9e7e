"""`python -m search ...`: parse arguments, call the stages, turn a UserError into one line and exit 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from search import backend
from search.errors import UserError
from search.stopping import Stopped

RESULTS = Path("results")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m search", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = commands.add_parser("data", help="regenerate 3D MNIST offline into a Kaggle-layout .h5 file")
    data.add_argument("--out", required=True, type=Path, help="file to write (must not exist)")
    data.add_argument("--seed", type=int, default=0, help="seed of the augmented copies (default 0)")

    train = commands.add_parser("train", help="train one configuration on 80%% of train, validate on 20%%")
    train.add_argument("--preset", help="a seed model: machinecurve, medium or notebook")
    train.add_argument("--params", help="JSON object (or a .json file) of hyperparameters; overrides --preset")
    train.add_argument("--data", help="Kaggle-layout .h5 file (default: regenerated 3D MNIST, cached)")
    train.add_argument("--epochs", type=int, help="override the configuration's epochs")
    train.add_argument("--batch-size", type=int, help="override the configuration's batch size")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, split and augmentation (default 0)")
    train.add_argument("--val-fraction", type=_val_fraction, default=0.2,
                       help="validation share of train (default 0.2); 0 trains on all of it, as the final retrain does")
    train.add_argument("--test", action="store_true", help="after training, evaluate once on the test set")
    train.add_argument("--out", type=Path, help="output folder (default: a new one under results/)")
    _precision_flag(train)
    _backend_flag(train, "$KERAS_BACKEND, else tensorflow")
    run = commands.add_parser("run", help="search a space file with Ray Tune, then retrain the best and test it once")
    run.add_argument("space", type=Path, help="space file, e.g. spaces/wide.py")
    run.add_argument("--data", help="Kaggle-layout .h5 file (default: regenerated 3D MNIST, cached)")
    run.add_argument("--name", help="run folder name under --results (default: <space>-<time>)")
    run.add_argument("--address", help="Ray cluster address, e.g. 'auto' (default: start a local Ray)")
    run.add_argument("--samples", type=_positive(int), help="number of trials (overrides the space file)")
    run.add_argument("--time-budget", type=_positive(float), metavar="SECONDS", dest="time_budget_s",
                     help="stop the search stage after this long, then go on to the finalists (overrides the space file)")
    run.add_argument("--max-epochs", type=_positive(int), help="epoch cap per trial, ASHA's max_t (overrides the space file)")
    run.add_argument("--cpus-per-trial", type=_positive(float), default=1.0, help="CPUs per trial (default 1)")
    run.add_argument("--gpus-per-trial", type=_gpu_share, default=0.0, help="GPUs per trial: a fraction below 1 or a whole number (default 0)")
    run.add_argument("--max-concurrent", type=_positive(int), help="at most this many trials at once")
    run.add_argument("--memory-per-trial", type=_positive(float), metavar="GIB",
                     help="memory each trial reserves on its node and may not outgrow (default: no limit)")
    run.add_argument("--mps", action="store_true",
                     help="run NVIDIA MPS on each GPU node, so trials sharing a GPU run their kernels at once")
    _precision_flag(run)
    _wait_flag(run)
    run.add_argument("--results", default=str(RESULTS),
                     help="folder of run folders, or s3://bucket/prefix (default results/)")
    _endpoint_flag(run)
    run.add_argument("--seed", type=_non_negative(int), help="seed of the sampler, split and trials (overrides the space file)")
    run.add_argument("--no-final", action="store_true", help="skip the final retrain and test")
    run.add_argument("--warm-start", nargs="+", default=[], metavar="RUN_DIR",
                     help="earlier run folders: their trials that fit this space are told to TPE before it proposes")
    run.add_argument("--dashboard-host", default="127.0.0.1",
                     help="interface for the dashboard of a local Ray (default 127.0.0.1; 0.0.0.0 exposes Ray's job API)")
    _backend_flag(run, "$KERAS_BACKEND, else tensorflow; every trial and the final retrain use it")

    resume = commands.add_parser("resume", help="continue an interrupted run to its original trial budget, or extend "
                                                "a finished search (--samples, --time-budget)")
    resume.add_argument("run_dir", help="the run folder, or s3://bucket/prefix/RUN")
    _endpoint_flag(resume)
    resume.add_argument("--address", help="Ray cluster address (default: as the run was started)")
    resume.add_argument("--samples", type=_positive(int),
                        help="extend a run whose search ended by N more trials; TPE goes on from every trial it saw, "
                             "then the finalists and the final test are redone into new folders")
    resume.add_argument("--time-budget", type=_positive(float), metavar="SECONDS", dest="time_budget_s",
                        help="extend for this long (with --samples: whichever ends first; alone: up to the space's samples)")
    resume.add_argument("--no-final", action="store_true", help="skip the final retrain and test")
    _wait_flag(resume)

    board = commands.add_parser("leaderboard", help="print a run's leaderboard")
    board.add_argument("run_dir", help="the run folder, or s3://bucket/prefix/RUN")
    _endpoint_flag(board)
    board.add_argument("--top", type=_positive(int), help="only the best N rows")

    report = commands.add_parser("report", help="write RUN_DIR/report.html (figures embedded, also as PNGs beside it)")
    report.add_argument("run_dir", help="the run folder, or s3://bucket/prefix/RUN")
    _endpoint_flag(report)

    final = commands.add_parser("final", help="retrain the K-th configuration of a run on all training data and test it once")
    final.add_argument("run_dir", help="the run folder, or s3://bucket/prefix/RUN")
    _endpoint_flag(final)
    pick = final.add_mutually_exclusive_group()  # one pick per final
    pick.add_argument("--rank", type=_positive(int), default=1, help="leaderboard rank (default 1)")
    pick.add_argument("--pareto", metavar="COST<=X",
                      help='instead, the most accurate trial within costs, e.g. "latency_ms<=1.5,param_count<=2e5"')
    pick.add_argument("--ensemble", type=_positive(int), metavar="K",
                      help="instead, an ensemble of K selections among the finalists, chosen on validation")
    final.add_argument("--address", help="Ray cluster address (default: as the run was started)")
    _backend_flag(final, "the run's, from run.json")
    return parser


def _endpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="an S3-compatible server for s3:// run folders, e.g. http://minio:9000 "
                             "(default: $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS S3)")


def _where(args: argparse.Namespace, value: str):
    """A run folder argument: a local Path, or an S3Path for s3://bucket/prefix (with --endpoint-url)."""
    from search import storage

    return storage.parse(value, args.endpoint_url)


def _run_argument(run_dir) -> str:
    """The run folder as a command takes it again: a bucket's endpoint, if the environment would not give it."""
    from search import storage

    endpoint = getattr(run_dir, "endpoint", None)
    return f"{run_dir} --endpoint-url {endpoint}" if endpoint and endpoint != storage.endpoint_from_env() else str(run_dir)


def _wait_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait-for-resources", type=_non_negative(float), metavar="SECONDS",
                        help="wait this long for a node that can hold one trial before giving up (default: 0 on a "
                             "local Ray or a cluster without an autoscaler, 600 on a `ray up` cluster)")


def _precision_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=backend.PRECISIONS, default="float32",
                        help="Keras dtype policy; mixed_bfloat16 computes in bfloat16 on GPUs, the loss stays float32 "
                             "(default float32)")


def _backend_flag(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--backend", choices=backend.BACKENDS, help=f"Keras backend (default: {default})")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _gpu_share(text: str) -> float:
    """Ray shares a GPU in fractions below 1, or gives whole GPUs: 1.5 can never be placed."""
    value = _non_negative(float)(text)
    if value > 1 and value != int(value):
        raise argparse.ArgumentTypeError(f"must be a fraction below 1 or a whole number of GPUs, got {text}")
    return value


def _non_negative(kind):
    def parse(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _val_fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def main(argv: list[str] | None = None, trainable=None) -> int:
    """The command line; `trainable` (search.tuner.Trainable) replaces the real trial in run and resume."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way
    try:
        args = _parser().parse_args(argv)
        args.trainable = trainable
        commands = {"data": cmd_data, "train": cmd_train, "run": cmd_run, "resume": cmd_resume,
                    "leaderboard": cmd_leaderboard, "final": cmd_final, "report": cmd_report}
        return commands[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"stopped by {e}: Ray Tune's state and every finished trial are saved in {e.run_dir}. "
              f"Continue with: python -m search resume {_run_argument(e.run_dir)}", file=sys.stderr)
        return e.exit_code


def cmd_data(args: argparse.Namespace) -> int:
    from search.data.cache import write_regenerated

    if args.out.exists():
        raise UserError(f"{args.out}: already exists; not overwriting it")
    started = time.perf_counter()
    digest = write_regenerated(args.out, seed=args.seed)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, sha256 {digest}) in {time.perf_counter() - started:.0f} s")
    return 0


def _train_params(args: argparse.Namespace) -> dict:
    from search import params as schema

    if not args.preset and not args.params:
        raise UserError("train: give --preset NAME or --params JSON")
    params: dict = {}
    if args.preset:
        if args.preset not in schema.PRESETS:
            raise UserError(f"train: unknown preset '{args.preset}' (choose from {', '.join(schema.PRESETS)})")
        params.update(schema.PRESETS[args.preset])
    if args.params:
        params.update(_read_params(args.params))
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    try:
        return schema.feasible({**params, **{k: v for k, v in overrides.items() if v is not None}})
    except schema.Infeasible as e:
        raise UserError(f"train: infeasible architecture: {e}") from None


def _read_params(text: str) -> dict:
    source = "--params"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UserError(f"--params: '{text}' is neither a JSON object nor an existing .json file")
        source, text = str(path), path.read_text()
    try:
        params = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{source}: invalid JSON ({e})") from None
    if not isinstance(params, dict):
        raise UserError(f"{source}: expected a JSON object of hyperparameters")
    return params


def cmd_train(args: argparse.Namespace) -> int:
    keras_backend = backend.choose(args.backend)  # before anything imports Keras
    params = _train_params(args)  # every flag and parameter is checked before data or Keras load
    from search import data, files, final

    data_file = data.resolve(args.data)
    out = files.new_dir(args.out or RESULTS / f"train-{args.preset or 'params'}-{time.strftime('%Y%m%d-%H%M%S')}")
    final.train_one(params, data_file, out, args.val_fraction, args.seed, args.precision, args.test, keras_backend)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from search import api
    from search.options import RunOptions
    from search.resources import Resources

    if args.dashboard_host not in ("127.0.0.1", "localhost"):
        print(f"warning: the Ray dashboard will listen on {args.dashboard_host}; anyone who reaches it can run code "
              "through Ray's job API", file=sys.stderr)
    options = RunOptions(
        space_path=args.space, data=args.data, results=_where(args, args.results), name=args.name, address=args.address,
        samples=args.samples, time_budget_s=args.time_budget_s, max_epochs=args.max_epochs, seed=args.seed, final=not args.no_final,
        resources=Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent, args.memory_per_trial,
                            mps=args.mps, precision=args.precision),
        dashboard_host=args.dashboard_host, backend=args.backend, wait_for_resources=args.wait_for_resources,
        warm_start=tuple(_where(args, w) for w in args.warm_start),
    )
    # the space, the whole data file, the run folder and its disk are checked before Ray starts, and then:
    announce = lambda run_dir: print(f"run folder: {run_dir}\n{_looking_hint(run_dir)} (the report is rewritten as the search runs)")  # noqa: E731
    _print_summary(api.start(options, on_run_dir=announce, trainable=args.trainable))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from search import api

    _print_summary(api.resume(_where(args, args.run_dir), args.address, final=not args.no_final,
                              wait_for_resources=args.wait_for_resources, samples=args.samples,
                              time_budget_s=args.time_budget_s, trainable=args.trainable))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from search import api, leaderboard

    print(leaderboard.table(api.open_run(_where(args, args.run_dir)).leaderboard(), args.top))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from search import api

    print(f"wrote {api.open_run(_where(args, args.run_dir)).write_report()}")
    return 0


def cmd_final(args: argparse.Namespace) -> int:
    from search import api

    result = api.open_run(_where(args, args.run_dir)).final(args.rank, args.address, args.backend, args.ensemble,
                                                             args.pareto)
    what = (f"ensemble of {result.trial_id}" if args.ensemble else f"within {args.pareto} ({result.trial_id})"
            if args.pareto else f"rank {args.rank} ({result.trial_id})")
    print(f"{what}: test accuracy {result.test_accuracy:.4f}; wrote {result.final_dir}")
    return 0


def _print_summary(summary) -> None:
    from search.rundir import RunDir

    best = summary.best
    print(f"\n{summary.trials} trials; best {best.trial_id} (val_accuracy {best.val_accuracy:.4f} "
          f"at epoch {best.best_epoch}){' [baseline ' + best.baseline + ']' if best.baseline else ''}"
          f"{' [finalist of ' + best.finalist_of + ']' if best.finalist_of else ''}")
    print(f"best configuration: {json.dumps(best.params)}")
    where = RunDir(summary.run_dir)
    if summary.test_accuracy is not None:
        from search.api import open_run

        metrics = open_run(where.path).test_metrics() or {}
        rows = (f" (upright rows {metrics['upright_accuracy']:.4f}, rotated rows {metrics['rotated_accuracy']:.4f})"
                if "rotated_accuracy" in metrics else "")
        print(f"final test accuracy (retrained on train + validation, tested once): {summary.test_accuracy:.4f}{rows}")
    if summary.ensemble is not None:
        members = ", ".join(f"{m['trial_id']} x{m['weight']:.2f}" for m in summary.ensemble["members"])
        print(f"ensemble of finalists ({members}; chosen on validation, retrained, tested once): "
              f"{summary.ensemble['accuracy']:.4f} (upright rows {summary.ensemble['upright_accuracy']:.4f}, "
              f"rotated rows {summary.ensemble['rotated_accuracy']:.4f}); {where.final_ensemble.path}")
    shown = (where.leaderboard_csv, where.epochs_csv, where.best_json, where.run_json, where.final.path)
    print("wrote " + ", ".join(str(path) for path in shown))
    print(_looking_hint(where.path))
    if summary.front:
        print(summary.front)


def _looking_hint(run_dir) -> str:
    """How to look at a run: its report, TensorBoard and optuna-dashboard, each with its command."""
    from search.rundir import RunDir

    where = RunDir(run_dir)
    return (f"look at it: {where.report} (any browser, offline); `tensorboard --logdir {run_dir}`; "
            f"`optuna-dashboard {where.study_local}` (pip install tensorboard optuna-dashboard)")

