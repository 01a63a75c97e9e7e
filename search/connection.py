"""Connecting to Ray: start a local Ray or join a cluster, with the job's worker environment; how to log in to
the dashboard; on resume, clearing what a dead driver's local Ray left running; and, in a trial, which node it is on.

Starting and stopping clusters is Ray's (`ray start`, `ray up`, KubeRay); this module only joins one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from search import backend
from search.errors import UserError


# Before Tune reuses an actor (tuner.REUSE_ACTORS) it waits this long for the ended trial's thread to finish;
# when its default, 2 s, ran out on a loaded machine it failed the next trial ("reuse requires reset_config()").
WORKER_TUNE_ENV = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "60"}
# "0" starts a local Ray without its dashboard: for batch jobs nobody watches (and the test suite), as it
# costs a local Ray about 2 CPU-seconds more to start and 0.7 more per idle minute (docs/operations.md).
DASHBOARD_VARIABLE = "CONV3D_SEARCH_DASHBOARD"


def connect(address: str | None, dashboard_host: str = "127.0.0.1", keras_backend: str = backend.DEFAULT,
            mps: bool = False) -> None:
    """Start a local Ray (dashboard on dashboard_host, unless $CONV3D_SEARCH_DASHBOARD is "0") or join the
    cluster at address ("auto" for the local one).

    Every worker process of this job gets KERAS_BACKEND=keras_backend (and the backend's other variables).
    With mps, a local Ray's GPU gets its MPS daemon now, before any worker creates a CUDA context (on a
    cluster each trial starts its node's daemon); where MPS cannot start, one line says why and trials
    share the GPU by time-slicing.
    """
    import ray

    if ray.is_initialized():
        return
    if mps and not address:
        status = backend.start_mps(stop_at_exit=True)
        print(f"mps: {status}", flush=True)
        mps = status == "on"  # no daemon: the workers get no MPS directories, and run as without --mps
    env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::DeprecationWarning",
                        **WORKER_TUNE_ENV, **backend.env_vars(keras_backend, mps)}}
    env["worker_process_setup_hook"] = "search.console.setup_worker"  # TensorFlow's GPU-less start-up lines
    if address:
        context = ray.init(address=address, runtime_env=env)
    else:
        with sigterm_held():
            context = ray.init(include_dashboard=os.environ.get(DASHBOARD_VARIABLE) != "0",
                               dashboard_host=dashboard_host, runtime_env=env)
    url = getattr(context, "dashboard_url", None)
    if url:
        print(dashboard_login_hint(f"http://{url}"), flush=True)


@contextlib.contextmanager
def sigterm_held() -> Iterator[None]:
    """SIGTERM blocked in this thread while it starts a local Ray, so Ray's processes (GCS, raylet, and the workers
    the raylet forks) inherit it blocked.

    `timeout`, systemd's stop, Slurm's scancel and a batch system's time limit signal every process of the job, not
    only the driver: unblocked, the local GCS would die with it, and the driver's clean stop (search.stopping) would
    wait on a GCS that is gone. Held, only the driver acts on it; it saves, then ray.shutdown ends Ray's processes
    (with SIGKILL where SIGTERM is held: about 3 s more at each run's end), and they die with the driver too
    (Ray's fate-sharing). A cluster's processes are not the driver's children: nothing changes there."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def dashboard_login_hint(url: str, auth: bool | None = None) -> str:
    """How to open the dashboard at url and log in with Ray's token, as text for a person (auth None: ask it)."""
    auth = _dashboard_auth(url) if auth is None else auth
    if not auth:
        return (f"Dashboard: {url} (token authentication is off: anyone who can reach "
                "the port can use it, including Ray's job API)")
    port = url.rsplit(":", 1)[-1]
    where = ("listens on 127.0.0.1 only; from another machine use an SSH tunnel, "
             f"e.g. `ssh -L {port}:127.0.0.1:{port} host` or `ray dashboard cluster/ray-cluster.yaml`"
             if "//127.0.0.1:" in url or "//localhost:" in url else
             "listens beyond this machine: anyone with the token who reaches it can run code through Ray's job API")
    return "\n".join([
        f"Dashboard: {url}  ({where})",
        "Token authentication is on (RAY_AUTH_MODE=token): without the token the page only asks for it, "
        "and /api/* answers 401 (403 for a wrong token).",
        "  Log in: paste the token into the page's prompt; print it with `ray get-auth-token` "
        "(it is ~/.ray/auth_token unless RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH is set). "
        "The dashboard keeps it in an HttpOnly cookie (ray-authentication-token, 30 days).",
        "  Scripts and curl: send `Authorization: Bearer <token>` "
        "(e.g. curl -H \"Authorization: Bearer $(ray get-auth-token)\" " + url + "/api/version).",
        "  Drivers and `ray job submit`: set RAY_AUTH_MODE=token in their environment (an explicit "
        "--address never turns it on by itself), with the token in ~/.ray/auth_token or RAY_AUTH_TOKEN.",
    ])


def _dashboard_auth(url: str) -> bool:
    """Whether the dashboard at url asks for a token (it says so without one); assume yes if it can't be asked."""
    try:
        with urllib.request.urlopen(url + "/api/authentication_mode", timeout=5) as response:
            return json.load(response).get("authentication_mode") != "disabled"
    except (OSError, ValueError):
        return True


def reap_dead_driver(run_dir: Path, last: dict[str, Any]) -> None:
    """Refuse to resume a run whose driver is alive; kill what a dead driver's local Ray left running.

    `last` is the facts() of the run's latest driver. When a driver that started its own Ray is SIGKILLed,
    Ray's core processes exit with it but some helpers (the dashboard and runtime-env agents) live on,
    orphaned. They hold files in that Ray session's folder, which is how we recognise them.
    """
    import psutil

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


def where_am_i() -> dict[str, str]:
    """In a trial: its Ray node's name (``ray start --node-name``; the host name where the name is just the IP) and IP."""
    import ray

    ip, node_id = ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id()
    name = next((n["NodeName"] for n in ray.nodes() if n["NodeID"] == node_id), "")
    return {"node": socket.gethostname() if not name or name == ip else name, "node_ip": ip}


def facts(address: str | None) -> dict[str, Any]:
    """Where this driver runs and what the cluster has, for run.json (resume reads "pid", "session", "address")."""
    import ray

    return {"address": address,  # None: a local Ray that this driver started
            "session": ray.get_runtime_context().get_session_name(),
            "resources": ray.cluster_resources(), "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "host": platform.node(), "pid": os.getpid(),
            "mps": backend.mps_running()}  # on the driver's node, the GPU node of a local run
