"""Warm start (search.warmstart): an earlier run's trials told to TPE before it proposes, through the real
pipeline with synthetic training (search.synthetic), the CLI in this process; a run that cannot warm-start another
is one line."""

from __future__ import annotations

import json

import optuna
import pytest

from search import bridge, data, policy, warmstart
from search import study as run_study
from search.errors import UserError
from search.leaderboard import Records
from search.protocol import Stage, Status
from search.resources import Resources
from searching import ROOT, read_csv, run_in_process

pytestmark = pytest.mark.xdist_group("warmstart")  # one earlier run, shared by the file's tests

SYNTHETIC_EPOCH_S = 0.01  # search.synthetic's epochs
SCALE_SPACE = (ROOT / "benchmarks" / "scale_space.py").read_text()
EARLIER = 16


def _space(tmp_path, name: str, startup: int = 4, change: tuple[str, str] | None = None):
    """The scale benchmark's space with its own start-up count, one line changed if asked."""
    text = SCALE_SPACE.replace('"startup_trials": 16', f'"startup_trials": {startup}')
    if change:
        assert change[0] in text
        text = text.replace(*change)
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def earlier(small_data_file, tmp_path_factory):
    """A finished run of EARLIER synthetic trials of the scale space."""
    folder = tmp_path_factory.mktemp("earlier")
    assert run_in_process("run", str(_space(folder, "scale")), "--data", str(small_data_file), "--results", str(folder),
                          "--name", "earlier", "--samples", str(EARLIER), "--cpus-per-trial", "0.5", "--no-final",
                          epoch_s=SYNTHETIC_EPOCH_S) == 0
    return folder / "earlier"


def test_fitting_trials_are_told_at_the_fidelity_they_reached_and_change_what_tpe_proposes(
        earlier, small_data_file, tmp_path):
    space = bridge.load_space(_space(tmp_path, "same"))
    sha = data.sha256(small_data_file)
    [source] = warmstart.read(space, [earlier], sha)
    trials = Records.load(earlier).trials
    assert (len(source.trials), source.skipped) == (EARLIER, 0)
    by_id = {t.user_attrs["warm_start_trial_id"]: t for t in source.trials}
    for trial_id, record in trials.items():
        told = by_id[trial_id]
        last = max(record.epochs)
        assert told.intermediate_values == {e: m["val_accuracy"] for e, m in record.epochs.items()}
        if last == space.settings.max_epochs:  # trained the whole budget: a complete trial, at its last epoch
            assert told.state == optuna.trial.TrialState.COMPLETE and told.value == record.epochs[last]["val_accuracy"]
        else:  # ASHA stopped it at a rung: TPE ranks it below every complete one
            assert record.status == Status.STOPPED and told.state == optuna.trial.TrialState.PRUNED
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in source.trials)

    # A narrower space takes only the trials it could have proposed.
    narrow = bridge.load_space(_space(tmp_path, "narrow", change=('hp.Int("blocks", 1, 4)', 'hp.Int("blocks", 1, 2)')))
    [fits] = warmstart.read(narrow, [earlier], sha)
    assert len(fits.trials) == sum(r.params["blocks"] <= 2 for r in trials.values()) and fits.skipped == EARLIER - len(fits.trials)

    # The same seed, the same space: cold, TPE's first 4 proposals are random start-up (those of Optuna's random
    # sampler with the space's seed); warm, the told trials count, so they are TPE's from the first: each differs
    # from the start-up proposal at its place (a continuous learning rate: equal only if drawn the same way).
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=space.settings.seed))
    start_up = [bridge.sample(space, random.ask()) for _ in range(4)]
    proposals = {}
    for kind in ("cold", "warm"):
        run_dir = tmp_path / kind
        run_dir.mkdir()
        if kind == "warm":
            warmstart.tell([source], run_study.live_storage(run_dir), run_study.name(run_dir))
        searcher = policy.make_searcher(space, run_dir, Resources(), run_study.searcher_arguments(run_dir))
        proposals[kind] = [searcher.suggest(f"{kind}-{i}") for i in range(4)]
        study = optuna.load_study(study_name=run_study.name(run_dir), storage=run_study.live_storage(run_dir))
        assert len(study.trials) == (EARLIER if kind == "warm" else 0) + 4
    assert proposals["cold"] == start_up
    assert [warm == random_one for warm, random_one in zip(proposals["warm"], start_up)] == [False] * 4

    with pytest.raises(UserError, match="made on another data file"):
        warmstart.read(space, [earlier], "0" * 64)
    with pytest.raises(UserError, match="not a run folder"):
        warmstart.read(space, [tmp_path], sha)


def test_a_warm_started_run_says_what_it_was_told_and_an_unfitting_run_is_one_line(earlier, small_data_file, tmp_path,
                                                                                   capfd):
    space = _space(tmp_path, "scale")
    assert run_in_process("run", str(space), "--data", str(small_data_file), "--results", str(tmp_path), "--name", "warm",
                          "--samples", "4", "--cpus-per-trial", "0.5", "--no-final", "--warm-start", str(earlier),
                          epoch_s=SYNTHETIC_EPOCH_S) == 0, capfd.readouterr().err[-3000:]
    assert f"warm start: told TPE {EARLIER} trials of {earlier} (0 did not fit the space)" in capfd.readouterr().out
    run_dir = tmp_path / "warm"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["options"]["warm_start"] == [str(earlier)]
    assert info["warm_start"] == [{"run": str(earlier), "told": EARLIER, "skipped": 0}]
    board = read_csv(run_dir / "leaderboard.csv")  # every row a trial this run trained
    assert len(board) == 4 and not set(board["trial_id"]) & set(Records.load(earlier).trials)
    assert all(r.stage == Stage.SEARCH for r in Records.load(run_dir).trials.values())
    study = run_study.load(run_dir)
    assert sum("warm_start_trial_id" in t.user_attrs for t in study.trials) == EARLIER and len(study.trials) == EARLIER + 4

    unfitting = _space(tmp_path, "valid", change=('hp.Fixed("padding", "same")', 'hp.Fixed("padding", "valid")'))
    capfd.readouterr()
    assert run_in_process("run", str(unfitting), "--data", str(small_data_file), "--results", str(tmp_path),
                          "--warm-start", str(earlier), epoch_s=SYNTHETIC_EPOCH_S) == 2
    assert capfd.readouterr().err.strip() == f"error: {earlier}: none of its {EARLIER} search trials fits valid.py"
    assert not list(tmp_path.glob("valid-*"))  # refused before a run folder was made
