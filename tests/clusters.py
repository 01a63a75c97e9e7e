"""A local multi-node Ray for tests: Ray's own ray.cluster_utils.Cluster, with what our tests add to it.

Each node is a real head or raylet with its own processes; the search runs against it through the CLI
with --address. What we add: node names (the leaderboard's `node` column), token authentication on
every node, a private temp dir, and losing a node without a graceful shutdown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

import psutil
from ray.cluster_utils import Cluster

# Drivers that join with an explicit --address must ask for token auth themselves (Ray turns it on
# by itself only for address "auto" or none); Ray reads it at import, so it goes in their env.
DRIVER_ENV = {"RAY_AUTH_MODE": "token"}


class LocalCluster:
    def __init__(self, cluster: Cluster, workers: dict, root: str):
        self.cluster, self.workers = cluster, workers  # workers: node name -> Ray's Node
        self.root = root  # its RAY_TMPDIR, which every process of its nodes inherits

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def env(self) -> dict[str, str]:
        return dict(DRIVER_ENV)

    @property
    def dashboard_url(self) -> str:
        return "http://" + self.cluster.webui_url

    def processes(self, cmdline_part: str) -> list[psutil.Process]:
        """This cluster's live processes whose command line has cmdline_part (other Rays on the machine are not ours)."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if cmdline_part in " ".join(process.info["cmdline"] or []) and process.environ().get("RAY_TMPDIR") == self.root:
                    found.append(process)
            except (psutil.Error, OSError):
                continue
        return found

    def kill(self, name: str, timeout: float = 45) -> None:
        """Lose a worker node: SIGKILL its raylet and agents (no graceful shutdown; its Ray workers exit
        with the raylet), then wait until Ray's GCS marks it dead."""
        self.cluster.remove_node(self.workers.pop(name), allow_graceful=False)
        self.cluster.wait_for_nodes(timeout)


@contextlib.contextmanager
def local_cluster(workers: int = 2, *, cpus_per_worker: int = 1, dashboard: bool = False,
                  unset: tuple[str, ...] = ()) -> Iterator[LocalCluster]:
    """A head with 0 CPUs (trials land on workers) and `workers` nodes named worker-1, worker-2, ...

    unset: environment variables the nodes (and so their Ray workers) start without.
    """
    root = tempfile.mkdtemp(prefix="c3s-", dir="/tmp")  # short: Ray's socket paths live under it
    # The nodes inherit this process's environment. RAY_TMPDIR also moves the address file that
    # Cluster writes (ray_current_cluster), so a plain ray.init() elsewhere on this machine never
    # joins this cluster, and Cluster.shutdown() removes our file, not the machine's.
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED", *unset)}
    os.environ.update(RAY_TMPDIR=root, RAY_USAGE_STATS_ENABLED="0", **DRIVER_ENV)
    for name in unset:
        os.environ.pop(name, None)
    _refresh_auth_mode()
    cluster = Cluster()
    try:
        # The GCS declares a node dead after 5 missed health checks: about 5 s here instead of 15.
        # Free or random ports: Ray's fixed defaults (8265, 52365) may be another Ray's on this machine.
        cluster.add_node(num_cpus=0, node_name="head", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                         dashboard_port=_free_port(), dashboard_agent_listen_port=0,
                         _system_config={"health_check_period_ms": 1000})
        # Nodes share the head's session folder; add_node returns once each is up, so they never race
        # for the same socket names (as parallel `ray start`s sharing a temp dir do).
        nodes = {f"worker-{i}": cluster.add_node(num_cpus=cpus_per_worker, node_name=f"worker-{i}")
                 for i in range(1, workers + 1)}
        cluster.wait_for_nodes()
        yield LocalCluster(cluster, nodes, root)
    finally:
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _refresh_auth_mode()
        shutil.rmtree(root, ignore_errors=True)


def ensure_auth_token() -> None:
    """Create Ray's token (~/.ray/auth_token) now if there is none, so parallel test workers never race to write it."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        _refresh_auth_mode()
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE")
        else:
            os.environ["RAY_AUTH_MODE"] = saved
        _refresh_auth_mode()


def _refresh_auth_mode() -> None:
    """Make this process's Ray (its GCS client in Cluster) see RAY_AUTH_MODE as set now, as Ray itself does
    when it turns token auth on; create the token (~/.ray/auth_token) if auth is on and there is none."""
    from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
    from ray._raylet import Config

    Config.initialize("")
    ensure_token_if_auth_enabled(None, create_token_if_missing=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
