"""Fault injection on a real multi-node Ray: a head (0 CPUs) and two 1-CPU worker nodes on this machine
(Ray's ray.cluster_utils.Cluster, tests/clusters.py), and the search driven through the real CLI with --address.

(a) a worker node dies mid-search, (c) trials that raise, diverge or outgrow their memory share, (d) a
pandas reader polling leaderboard.csv throughout a run, and the Ray dashboard in a real headless Chromium
during that run. (b), the driver SIGKILLed and the run resumed on the cluster, is checked on the same kind
of cluster by test_s3_run.py's multi-node test, whose run folder is in a bucket.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from clusters import LocalCluster, local_cluster
from searching import SPACES, read_csv, records, start, tail, wait, wait_for

CHROMIUM = shutil.which("chromium")
LOST_WORKER_EPOCH_S = 1.5  # a synthetic trial's 4 epochs: time to catch one mid-run and lose its node


@pytest.fixture(scope="module")
def faults_cluster():
    """The module's 3-node cluster: the faulty run's, then the lost node's (that test ends it: it runs last)."""
    with local_cluster(workers=2, dashboard=True) as nodes:
        yield nodes


def _run_args(space: str, data: Path, results: Path, name: str, info: LocalCluster, *extra: str) -> list[str]:
    return ["run", str(SPACES / space), "--data", str(data), "--results", str(results), "--name", name,
            "--address", info.address, "--no-final", *extra]


# (c), (d) and the dashboard share one run of tests/spaces/faults.py: 2 sampled trials and 4 faulty ones; (a) then
# loses a node of the same cluster.

@pytest.fixture(scope="module")
def faulty_run(faults_cluster, small_data_file, tmp_path_factory):
    """Run faults.py on the module's fresh 3-node cluster, with a pandas reader and a browser watching; return what
    they saw."""
    tmp, info = tmp_path_factory.mktemp("faulty"), faults_cluster
    log, run_dir = tmp / "driver.log", tmp / "faulty"
    driver = start(log, *_run_args("faults.py", small_data_file, tmp, "faulty", info, "--memory-per-trial", "1.5"),
                   env=info.env)
    reader = _Reader(run_dir / "leaderboard.csv")
    reader.start()
    wait_for(run_dir, driver, "a running trial", lambda trials: any(r.status == "running" for r in trials.values()), log=log)
    page = _dashboard_page(info, tmp / "dashboard.png") if CHROMIUM else None
    wait(driver, log)
    reader.stop()
    return {"run_dir": run_dir, "reads": reader.reads, "errors": reader.errors, "page": page,
            "screenshot": tmp / "dashboard.png", "log": tail(log)}


@pytest.mark.xdist_group("faulty_run")
def test_c_bad_trials_are_marked_with_their_reason_and_the_others_finish(faulty_run):
    board = read_csv(faulty_run["run_dir"] / "leaderboard.csv").fillna({"baseline": "", "error": ""}).set_index("baseline")
    assert len(board) == 6, faulty_run["log"]
    assert board.loc["raises", "status"] == "error"
    assert board.loc["raises", "error"] == "RuntimeError: injected fault at epoch 2"
    assert board.loc["raises", "epochs_trained"] == 1  # what it finished before failing is kept
    assert board.loc["diverges", "status"] == "diverged"
    assert board.loc["diverges", "error"].startswith("loss became nan at epoch 2")
    assert board.loc["too-big", "status"] == "oom"
    assert "OOM when allocating tensor" in board.loc["too-big", "error"]
    assert "1.5 GiB share" in board.loc["too-big", "error"]
    good = board.loc[""]
    assert len(good) == 2 and (good["status"] == "completed").all() and (good["epochs_trained"] == 3).all()
    assert (good["best_val_accuracy"] > 0).all()


@pytest.mark.xdist_group("faulty_run")
def test_c_a_worker_lost_before_tune_registered_its_checkpoint_resumes_from_that_checkpoint(faulty_run):
    board = read_csv(faulty_run["run_dir"] / "leaderboard.csv").fillna({"baseline": ""}).set_index("baseline")
    assert board.loc["lost", "status"] == "baseline" and board.loc["lost", "epochs_trained"] == 3  # trained cleanly
    epochs = read_csv(faulty_run["run_dir"] / "epochs.csv")
    lost = epochs[epochs["trial_id"] == board.loc["lost", "trial_id"]].set_index("epoch")
    # Epoch 1 reached Tune only through the checkpoint it left on storage; epoch 2 trained on from it.
    assert list(lost.index) == [1, 2, 3] and list(lost["resumed_from"]) == [0, 1, 1], lost


@pytest.mark.xdist_group("faulty_run")
def test_d_leaderboard_csv_parses_at_every_read_and_never_loses_a_row(faulty_run):
    reads, errors = faulty_run["reads"], faulty_run["errors"]
    assert not errors, errors[:3]
    assert len(reads) >= 50  # it really was polled throughout the run
    assert reads[-1] == frozenset(read_csv(faulty_run["run_dir"] / "leaderboard.csv")["trial_id"])
    for earlier, later in zip(reads, reads[1:]):
        assert earlier <= later  # atomic rewrites: a reader sees the old file or the new one, never less


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="Debian's chromium is not installed (see README)")
@pytest.mark.xdist_group("faulty_run")
def test_dashboard_in_a_headless_browser_shows_the_running_search_not_a_login(faulty_run):
    page = faulty_run["page"]
    assert page is not None, "chromium is missing: the test setup installs it (README, Tests)"
    assert faulty_run["screenshot"].stat().st_size > 10_000
    assert "search run" in page["jobs"] and "RUNNING" in page["jobs"], page["jobs"][:2000]
    assert not page["login"], page["jobs"][:2000]
    assert page["login_without_token"]  # the same page without the cookie asks for the token: auth stays on


@pytest.mark.xdist_group("faulty_run")
def test_a_lost_worker_node_costs_its_trials_no_checkpointed_epoch(faulty_run, faults_cluster, small_data_file, tmp_path):
    """After the faulty run (it needs both nodes), on its cluster; synthetic trials (search.synthetic): the subject is
    Ray's and the pipeline's recovery, not the training."""
    ray_cluster = faults_cluster
    log, run_dir = tmp_path / "driver.log", tmp_path / "lost-worker"
    driver = start(log, *_run_args("steady.py", small_data_file, tmp_path, "lost-worker", ray_cluster), env=ray_cluster.env,
                   synthetic_epoch_s=LOST_WORKER_EPOCH_S)
    victim = wait_for(run_dir, driver, "a trial mid-run", log=log, found=lambda trials: next(
        (r for r in trials.values() if r.status == "running" and r.epochs and max(r.epochs) < 4), None))
    dead = victim.node
    ray_cluster.kill(dead)  # SIGKILLs the node's raylet and agents; returns once Ray's GCS marks the node dead
    wait(driver, log)

    after = records(run_dir)
    assert len(after) == 4 and {r.status for r in after.values()} == {"completed"}, after
    moved = after[victim.trial_id]
    assert sorted(moved.epochs) == [1, 2, 3, 4]
    on_dead = [e for e, m in moved.epochs.items() if m["node"] == dead]
    later = [e for e, m in moved.epochs.items() if m["node"] != dead]
    assert on_dead and later and max(on_dead) < min(later), moved.epochs
    # It resumed on the surviving node from its last checkpoint, not from epoch 0.
    assert moved.epochs[min(later)]["resumed_from"] == min(later) - 1 >= max(victim.epochs)
    survivor = moved.epochs[min(later)]["node"]
    assert survivor in {"worker-1", "worker-2"} - {dead}
    board = read_csv(run_dir / "leaderboard.csv").set_index("trial_id")
    assert board.loc[victim.trial_id, "node"] == f"{dead}>{survivor}"
    assert (board["epochs_trained"] == 4).all() and len(board) == 4


class _Reader(threading.Thread):
    """Reads leaderboard.csv with pandas every 20 ms, as a user's notebook would, and keeps what it saw."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.reads, self.errors, self.done = path, [], [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if self.path.exists():
                try:
                    self.reads.append(frozenset(read_csv(self.path)["trial_id"]))
                except Exception as e:  # noqa: BLE001 - any failure to parse is what this test looks for
                    self.errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join()


def _dashboard_page(info: LocalCluster, screenshot: Path) -> dict:
    """Open the dashboard's Jobs page in headless Chromium, without and then with the auth cookie; screenshot the latter."""
    from playwright.sync_api import sync_playwright

    token = os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").read_text().strip()
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            without = _open(browser, info.dashboard_url, "Authentication Token Required")
            with_token = _open(browser, info.dashboard_url, "RUNNING", token, screenshot)
        finally:
            browser.close()
    return {"jobs": with_token[0], "login": with_token[1], "login_without_token": without[1]}


def _open(browser, url: str, expect: str, token: str | None = None, screenshot: Path | None = None) -> tuple[str, bool]:
    """(page text, whether Ray's login dialog shows) of the Jobs page, once `expect` shows (or after 60 s)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    if token:
        context.add_cookies([{"name": "ray-authentication-token", "value": token, "url": url}])
    page = context.new_page()
    page.goto(url + "/#/jobs", timeout=60_000)
    try:
        page.get_by_text(expect).first.wait_for(timeout=60_000)
    except Exception:  # noqa: BLE001 - the page text (and screenshot) show what it showed instead
        pass
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=True)
    text = page.inner_text("body")
    context.close()
    return text, "Authentication Token Required" in text
