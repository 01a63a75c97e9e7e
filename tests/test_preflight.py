"""What is checked before a search starts: the whole data file, the output folder and its disk, the cluster's nodes.

Each refusal is one line and exit 2 before any trial trains, and leaves no run folder behind.
"""

from __future__ import annotations

import threading
import time

import pytest
import ray

from clusters import local_cluster
from kaggle import MALFORMED, kaggle_file
from searching import SPACES, run_in_process
from search import cli, disk, resources
from search.errors import UserError
from search.bridge import load_space, param_counts

TINY = SPACES / "tiny.py"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", ["run", "train", "train --test"])
@pytest.mark.parametrize("make, message", [(m, s) for _, m, s in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_every_malformed_data_file_is_refused_before_training_by_every_command(tmp_path, capsys, command, make, message):
    bad = make(tmp_path / "data.h5")
    out = tmp_path / "out"
    if command == "run":
        argv = ["run", str(TINY), "--data", str(bad), "--results", str(out)]
    else:
        argv = [*command.split(), "--preset", "machinecurve", "--data", str(bad), "--out", str(out)]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert message in line and str(bad) in line
    assert not out.exists() or not any(out.iterdir())  # no run folder, no trained model
    assert not ray.is_initialized()  # refused before Ray started


def test_a_results_folder_that_cannot_be_written_is_refused_up_front(tmp_path, capsys):
    in_the_way = kaggle_file(tmp_path / "data.h5")  # a file where the folder should go
    assert cli.main(["run", str(TINY), "--data", str(in_the_way), "--results", str(in_the_way / "results")]) == 2
    assert "cannot write the output folder (Not a directory)" in _one_error_line(capsys)


def test_a_disk_too_small_for_the_runs_checkpoints_is_refused_up_front(tmp_path, capsys):
    data_file = kaggle_file(tmp_path / "data.h5")
    results = tmp_path / "results"
    # A hundred million samples of the tiny space keep more checkpoints than any disk here holds.
    assert cli.main(["run", str(TINY), "--data", str(data_file), "--results", str(results), "--samples", "100000000"]) == 2
    line = _one_error_line(capsys)
    assert "GiB of checkpoints" in line and "GiB are free there" in line and str(results) in line
    assert not any(results.iterdir())  # the run folder it made to look at the disk is gone again
    assert not ray.is_initialized()


def test_the_checkpoint_estimate_follows_the_models_parameter_count():
    space = load_space(TINY)
    counts = param_counts(space)
    assert 191_882 in counts  # the machinecurve baseline, as the e2e leaderboard reports its param_count
    assert all(0 < c < 1_000_000 for c in counts) and len(set(counts)) > 3
    trials = space.settings.samples + 1 + space.settings.finalists
    average = disk.checkpoint_bytes(sum(counts) // len(counts))
    assert disk.run_bytes(space.settings, counts) == trials * 2 * average
    # 12 bytes a weight (float32 + Adam's two moments): what model.keras measured for the seed presets
    assert disk.checkpoint_bytes(1_198_474) == pytest.approx(14_446_324, rel=0.03)


def test_a_request_no_node_can_hold_is_refused_at_once_on_a_local_ray(tmp_path, capfd):
    data_file = kaggle_file(tmp_path / "data.h5")
    code = run_in_process("run", str(TINY), "--data", str(data_file), "--results", str(tmp_path / "results"),
                          "--gpus-per-trial", "1", epoch_s=None, timeout_s=180)  # before this check, it waited PENDING for ever
    err = capfd.readouterr().err
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "request of 1 CPU, 1 GPU" in errors[0] and "the cluster has 1 node of" in errors[0] and "0 GPU" in errors[0]
    assert not any((tmp_path / "results").iterdir())


@pytest.fixture
def one_cpu_cluster():
    """A head with no CPUs and one 1-CPU worker (tests/clusters.py), this process connected as a driver."""
    with local_cluster(workers=1) as cluster:
        ray.init(address=cluster.address)
        try:
            yield cluster.cluster
        finally:
            ray.shutdown()


def test_waiting_for_nodes_ends_when_one_joins_or_with_one_line_after_the_wait(one_cpu_cluster, capsys):
    # Nothing fits: with no wait, refused at once, naming the request and the nodes.
    with pytest.raises(UserError, match=r"request of 2 CPU, 0 GPU: the cluster has 1 node of 1 CPU, 0 GPU, .*; 1 node of 0 CPU"):
        resources.wait_until_placeable(resources.Resources(cpus=2), wait_s=0)
    with pytest.raises(UserError, match=r"2 CPU, 0 GPU, 1000.0 GiB memory after waiting 1 s"):
        resources.wait_until_placeable(resources.Resources(cpus=2, memory_gib=1000), wait_s=1)
    assert "waiting up to 1 s for a node with 2 CPU" in capsys.readouterr().out
    # As an autoscaler would, a node that fits joins while we wait (Ray adds nodes from the main thread only).
    waited: list[BaseException | None] = []
    waiter = threading.Thread(target=lambda: waited.append(_error_of(resources.wait_until_placeable,
                                                                     resources.Resources(cpus=2), wait_s=120)))
    waiter.start()
    time.sleep(3)
    assert waiter.is_alive()  # still waiting: nothing fits yet
    one_cpu_cluster.add_node(num_cpus=2)
    waiter.join(timeout=120)
    assert waited == [None] and "a node that fits one trial joined" in capsys.readouterr().out
    resources.wait_until_placeable(resources.Resources(cpus=1), wait_s=0)  # fits at once: no wait, no error


def _error_of(call, *args, **kwargs) -> BaseException | None:
    try:
        call(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - handed to the test's thread
        return e
    return None
