"""Cluster deployment: the `ray up` config against Ray's own schema, the KubeRay manifests' structure,
and the dashboard login hint a driver prints for a cluster."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml

from search import connection

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


def test_kuberay_rayjob_s3_manifest_needs_no_shared_volume_and_gives_every_pod_the_bucket_keys():
    (doc,) = _docs("rayjob-s3.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert spec["entrypoint"].startswith(ENTRYPOINT) and " --results s3://" in spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__ and cluster["authOptions"]["mode"] == "token"
    templates = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    for template in templates:
        pod = template["spec"]
        assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]  # the bucket is the run folder
        container = pod["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "conv3d-search-s3"}}]
        assert "AWS_ENDPOINT_URL" in {e["name"] for e in container["env"]}
        assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(container["env"])  # keys only from the Secret


def test_dockerfile_builds_on_the_installed_ray_and_installs_the_gpu_extra():
    text = (CLUSTER_DIR / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-py311-gpu" in text.splitlines()
    assert 'pip install --no-cache-dir ".[gpu]"' in text
    assert "WORKDIR /home/ray/conv3d-search" in text


# --- logging in to a cluster's dashboard --------------------------------------------------------

def test_dashboard_login_hint_says_where_the_token_is_and_how_to_send_it():
    hint = connection.dashboard_login_hint("http://127.0.0.1:8265", auth=True)
    for needed in ("http://127.0.0.1:8265", "ray get-auth-token", "~/.ray/auth_token", "Authorization: Bearer",
                   "RAY_AUTH_MODE=token", "401"):
        assert needed in hint
