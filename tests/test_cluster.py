"""Cluster deployment: the `ray up` config against Ray's own schema, the KubeRay manifests' structure,
and a real local multi-node Ray cluster (head + 2 workers as `ray start` processes) brought up,
inspected, one worker killed, and brought down again."""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import psutil
import pytest
import ray
import ray.autoscaler
import yaml

from search import cluster, connection
from search.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_DIR = ROOT / "cluster"
RAY_UP = CLUSTER_DIR / "ray-cluster.yaml"
KUBERAY = CLUSTER_DIR / "kuberay"
ENTRYPOINT = "python -m search run spaces/wide.py --address auto"
RESULTS = "/mnt/results"


# --- `ray up` config ---------------------------------------------------------------------------

def _ray_up_config() -> dict:
    return yaml.safe_load(RAY_UP.read_text())


def _validate_like_ray_up(config: dict) -> dict:
    """What `ray up` does before it talks to the cloud: fill in the provider defaults, then validate
    against ray/autoscaler/ray-schema.json plus Ray's own cross-field checks."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_ray_up_config_passes_rays_own_validation():
    config = _ray_up_config()
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(config, json.loads(schema_path.read_text()))  # the file as written, strictly
    prepared = _validate_like_ray_up(config)
    assert config["provider"]["type"] == "aws"
    head, gpu = config["available_node_types"][config["head_node_type"]], config["available_node_types"]["gpu"]
    assert head["resources"] == {"CPU": 0} and "--num-cpus=0" in " ".join(config["head_start_ray_commands"])
    assert gpu["resources"]["GPU"] == 1 and gpu["min_workers"] == 0 and gpu["max_workers"] >= 1
    assert prepared["available_node_types"][config["head_node_type"]]["max_workers"] == 0
    # The dashboard (and Ray's job API) stays on the head's loopback; every node runs token auth.
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert all("RAY_AUTH_MODE=token" in " ".join(config[key]) for key in ("head_start_ray_commands", "worker_start_ray_commands"))
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    # The project reaches the nodes as a synced checkout, installed with the gpu extra on GPU workers.
    assert config["file_mounts"]["~/conv3d-search"] == "."
    assert any('conv3d-search[gpu]' in c for c in prepared["worker_setup_commands"])
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"


@pytest.mark.parametrize("break_it, error", [
    (lambda c: c.update(bogus_key=1), "bogus_key"),  # the schema allows no unknown top-level keys
    (lambda c: c.update(max_workers="four"), "'four' is not of type 'integer'"),
    (lambda c: c["available_node_types"]["gpu"].pop("node_config"), "'node_config' is a required property"),
    (lambda c: c["available_node_types"]["gpu"]["resources"].update(GPU="one"), "'one' is not of type 'integer'"),
    (lambda c: c.update(head_node_type="nope"), "`head_node_type` must be one of `available_node_types`"),
    (lambda c: c["available_node_types"]["gpu"].update(min_workers=9), "smaller than the sum of `min_workers`"),
    (lambda c: c.pop("provider"), "'provider'"),
])
def test_a_broken_ray_up_config_is_rejected(break_it, error):
    config = _ray_up_config()
    break_it(config)
    with pytest.raises((jsonschema.ValidationError, ValueError, KeyError)) as caught:
        _validate_like_ray_up(config)
    assert error in str(caught.value)


# --- KubeRay manifests -------------------------------------------------------------------------

def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]


def _check_ray_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == ray.__version__
    assert spec["authOptions"]["mode"] == "token"
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    templates = [("head", head["template"])]
    head_container = head["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in json.dumps(head_container.get("resources", {}))
    (gpu,) = spec["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    worker_container = gpu["template"]["spec"]["containers"][0]
    assert worker_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    templates.append((gpu["groupName"], gpu["template"]))
    images = set()
    for group, template in templates:  # the shared results volume, at the same path, on every pod
        pod = template["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        container = pod["containers"][0]
        mounted = {m["name"] for m in container["volumeMounts"] if m["mountPath"] == RESULTS}
        assert mounted and claims.get(mounted.pop()) == "conv3d-search-results", group
        images.add(container["image"])
    assert len(images) == 1  # one image (cluster/Dockerfile) for head and workers


def test_kuberay_raycluster_manifest():
    (doc,) = _docs("raycluster.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    _check_ray_cluster_spec(doc["spec"])


def test_kuberay_rayjob_manifest():
    (doc,) = _docs("rayjob.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert spec["entrypoint"].startswith(ENTRYPOINT) and f"--results {RESULTS}" in spec["entrypoint"]
    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"] == "/home/ray/conv3d-search"
    _check_ray_cluster_spec(spec["rayClusterSpec"])
    (pvc,) = _docs("results-pvc.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "conv3d-search-results"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_dockerfile_builds_on_the_installed_ray_and_installs_the_gpu_extra():
    text = (CLUSTER_DIR / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-py311-gpu" in text.splitlines()
    assert 'pip install --no-cache-dir ".[gpu]"' in text
    assert "WORKDIR /home/ray/conv3d-search" in text


# --- the local multi-node cluster ----------------------------------------------------------------

_DRIVER = """
import json, os, sys, ray
from ray.job_submission import JobSubmissionClient

address, dashboard = sys.argv[1], sys.argv[2]
ray.init(address=address, logging_level="ERROR", log_to_driver=False)

@ray.remote(num_cpus=1)
def where():
    return ray.get_runtime_context().get_node_id(), sorted(os.sched_getaffinity(0))

placed, cores = {}, {}
for r in sys.argv[3:]:
    placed[r], cores[r] = ray.get(where.options(resources={r: 0.01}).remote())
jobs = JobSubmissionClient(dashboard).list_jobs()  # Ray's own HTTP client: sends the token when RAY_AUTH_MODE=token
print("RESULT=" + json.dumps({"nodes": ray.nodes(), "placed": placed, "cores": cores, "jobs": len(jobs)}))
"""


def _driver(info: cluster.ClusterInfo, *resources: str) -> dict:
    env = {**os.environ, **info.env}
    done = subprocess.run([sys.executable, "-c", _DRIVER, info.address, info.dashboard_url, *resources],
                          env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[0][len("RESULT="):])


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _all_gone(pids) -> bool:
    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return not any(alive(pid) for pid in pids)


def _mentions(process: psutil.Process, root: str) -> bool:
    try:
        return root in " ".join(process.cmdline()) or any(f.path.startswith(root) for f in process.open_files())
    except (psutil.Error, OSError):
        return False


def test_local_cluster_up_kill_one_worker_down():
    root = tempfile.mkdtemp(prefix="c3s-", dir="/tmp")  # short: Ray's socket paths live under it
    started = time.monotonic()
    cores = sorted(os.sched_getaffinity(0))
    info = cluster.up(workers=2, temp_dir=root, pin_cpus=len(cores) >= 2)
    try:
        assert [w.name for w in info.workers] == ["worker-1", "worker-2"] and info.auth
        assert info.dashboard_url.startswith("http://127.0.0.1:")
        seen = _driver(info, "c3s_worker_1", "c3s_worker_2")
        alive = {n["NodeID"]: n for n in seen["nodes"] if n["Alive"]}
        assert len(alive) == 3
        cpus = {n["NodeName"]: n["Resources"].get("CPU", 0) for n in alive.values()}
        assert cpus == {"head": 0, "worker-1": 1, "worker-2": 1}
        # Each worker's own resource places work on exactly that node.
        assert seen["placed"] == {"c3s_worker_1": info.worker("worker-1").node_id,
                                  "c3s_worker_2": info.worker("worker-2").node_id}
        if len(cores) >= 2:  # pinned: the task ran in a Ray worker process confined to its node's own core
            assert seen["cores"] == {"c3s_worker_1": [cores[0]], "c3s_worker_2": [cores[1]]}
        assert seen["jobs"] >= 1  # the connected drivers are listed as jobs: the authenticated request went through
        # Token authentication: the dashboard's API refuses a request without the token.
        assert _http_status(info.dashboard_url + "/api/version") == 401
        with urllib.request.urlopen(info.dashboard_url + "/api/authentication_mode", timeout=10) as response:
            assert json.load(response) == {"authentication_mode": "token"}

        everything = {p.pid for p in psutil.process_iter() if _mentions(p, root)}
        second = {p.pid for p in cluster._node_processes(info.worker("worker-2"))}
        killed = cluster.kill_worker("worker-1", info, wait_dead=45)  # returns once Ray's GCS marks it dead
        assert len(killed) >= 3  # raylet, dashboard agent, runtime-env agent, log monitor, idle workers
        assert _all_gone(killed)
        assert not cluster._node_processes(info.worker("worker-1"))
        assert all(psutil.pid_exists(pid) for pid in second)  # the other worker is untouched
        with pytest.raises(UserError, match="none of its processes"):
            cluster.kill_worker("worker-1", info)
    finally:
        stopped = cluster.down(info)
    assert stopped > 0
    assert not [p for p in psutil.process_iter() if _mentions(p, root)]
    assert _all_gone(everything)
    assert not Path(root).exists()
    assert cluster.down(root) == 0  # nothing left to stop
    assert time.monotonic() - started < 120


# --- fast checks of the helpers ----------------------------------------------------------------

def _info(workers: int = 2) -> cluster.ClusterInfo:
    nodes = tuple(cluster.Node(f"worker-{i}", f"{i}abcdef0123", f"/tmp/x/worker-{i}", f"c3s_worker_{i}")
                  for i in range(1, workers + 1))
    return cluster.ClusterInfo("10.0.0.5:6379", "http://127.0.0.1:8265", "/tmp/x",
                               cluster.Node("head", "ffff", "/tmp/x/head"), nodes, True)


def test_a_worker_is_named_by_name_node_id_prefix_or_resource_not_by_a_shared_ip():
    info = _info()
    assert info.worker("worker-2").name == "worker-2"
    assert info.worker("2abcdef0123").name == "worker-2" and info.worker("1abcde").name == "worker-1"
    assert info.worker("c3s_worker_1").name == "worker-1"
    with pytest.raises(UserError, match="every node of this local cluster has that IP"):
        info.worker("10.0.0.5")
    assert _info(workers=1).worker("10.0.0.5").name == "worker-1"
    with pytest.raises(UserError, match="no such worker"):
        info.worker("worker-9")
    assert cluster.ClusterInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    assert info.env == {"RAY_AUTH_MODE": "token"}


def test_up_refuses_a_temp_dir_too_long_for_rays_sockets_before_starting_anything(tmp_path):
    long_root = tmp_path / ("x" * 60)
    with pytest.raises(UserError, match="too long for a Ray temp dir"):
        cluster.up(workers=1, temp_dir=long_root)
    assert not long_root.exists()


def test_pinning_more_cores_than_the_machine_has_is_refused_before_starting_anything(tmp_path):
    with pytest.raises(UserError, match=r"--pin-cpus needs workers x cpus-per-node \(64 x 1\) between 1 and"):
        cluster.up(workers=64, temp_dir=tmp_path / "c", pin_cpus=True)
    assert not (tmp_path / "c").exists()


def test_down_with_nothing_running_is_a_no_op_and_removes_only_its_own_files(tmp_path):
    assert cluster.down(tmp_path / "none") == 0
    (tmp_path / "head" / "session_x").mkdir(parents=True)
    (tmp_path / "worker-1").mkdir()
    (tmp_path / "worker-1.log").write_text("log")
    (tmp_path / "cluster.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("the user's")  # a folder the user named may hold other things
    assert cluster.down(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(UserError, match="no local cluster is up"):
        cluster.load(tmp_path / "none")


def test_dashboard_login_hint_says_where_the_token_is_and_how_to_send_it():
    hint = connection.dashboard_login_hint(_info().dashboard_url, auth=True)
    for needed in ("http://127.0.0.1:8265", "ray get-auth-token", "~/.ray/auth_token", "Authorization: Bearer",
                   "RAY_AUTH_MODE=token", "401"):
        assert needed in hint


def test_cli_subcommands_parse():
    parser = argparse.ArgumentParser()
    cluster.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["cluster", "up", "--workers", "3", "--cpus-per-node", "2"])
    assert (args.cluster_command, args.workers, args.cpus_per_node, args.head_cpus) == ("up", 3, 2, 0)
    assert parser.parse_args(["cluster", "up", "--pin-cpus"]).pin_cpus is True
    assert parser.parse_args(["cluster", "down"]).cluster_command == "down"
    assert parser.parse_args(["cluster", "kill-worker", "worker-1"]).worker == "worker-1"
