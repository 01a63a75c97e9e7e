"""A local multi-node Ray cluster on this one machine, for trying the search and for tests.

``up()`` starts real ``ray start`` processes: a head (0 CPUs by default, so trials land on
workers) and N worker nodes, each with its own ``--temp-dir`` under one root folder, its own
node name (``worker-1``, ...) and a custom resource only it has (``c3s_worker_1: 1``), so a
test can place work on one worker and ``kill_worker()`` can take exactly that node down.
``down()`` ends every process of this cluster, and only those.

What Ray 2.60 does here, checked in its source (``ray/scripts/scripts.py``,
``ray/_private/services.py``, ``ray/_private/node.py``,
``ray/_private/authentication/authentication_token_setup.py``):

* Node IP. On Linux ``ray start`` rewrites a loopback ``--node-ip-address`` (127.0.0.1,
  localhost, ::1) to the machine's primary address (``resolve_ip_for_localhost``), and
  ``ray.init(address="127.0.0.1:PORT")`` does the same to the address it is given. The only
  switch that keeps 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) makes ``ray start
  --address`` refuse to start worker nodes. So every node registers as this machine's primary
  IP; the GCS and raylets listen on all interfaces; the traffic between them never leaves the
  host (the kernel delivers a host's own address locally). The dashboard is the exception: it
  listens on 127.0.0.1 only (``--dashboard-host``). We don't pass ``--node-ip-address`` at all:
  it would be rewritten anyway, and all nodes share the one IP, so an IP never names a node.
* Temp dirs. ``--temp-dir`` "can be specified per node" in 2.60: a worker without one uses the
  head's (``Node._init_temp``), and nodes sharing it also share the session folder. We give each
  node its own (``ROOT/head``, ``ROOT/worker-1``, ...): its sockets, logs and spill files are its
  own, and every process of a node has that folder in its command line or open files, which is
  how ``kill_worker()`` finds them. A private temp dir also keeps this cluster out of
  ``/tmp/ray/ray_current_cluster``, so a plain ``ray.init()`` elsewhere on the machine (the
  benchmarks, ``python -m search run`` without ``--address``) never joins it by accident.
* Ports. Two nodes on one host must not share a fixed port: we give the head free GCS, dashboard
  and client-server ports, and every node port 0 (random) for its dashboard agent and workers.
* Authentication. Ray 2.60 turns token authentication on by itself only for a new local
  ``ray.init()`` (``enable_token_auth_by_default``). ``ray start --head`` turns it on only when
  RAY_AUTH_MODE is unset *and* a token already exists (``~/.ray/auth_token``, RAY_AUTH_TOKEN or
  RAY_AUTH_TOKEN_PATH); ``ray start --address`` (a worker) never does, so on a machine with a
  token file a bare ``ray start`` cluster has an authenticating head and workers that can't join.
  We therefore set RAY_AUTH_MODE explicitly on every node (``token`` by default, with the token
  created by ``ray get-auth-token --generate`` if there is none). A driver that connects with an
  explicit address must set RAY_AUTH_MODE=token too (only ``address="auto"`` or none turns it on
  from the token file); ``ClusterInfo.env`` is what to add. Ray reads RAY_AUTH_MODE once per
  process, at import: put it in the environment before ``import ray`` (a shell ``export``, or a
  child process's env), not into ``os.environ`` afterwards.
* Stopping. ``ray stop [--force]`` cannot target one cluster: it kills every process on the
  machine whose name looks like Ray's (raylet, gcs_server, dashboard, workers, ...), i.e. every
  Ray of every user it may signal, including a search or benchmark running beside this cluster.
  So ``down()`` kills this cluster's processes itself (what ``ray stop --force`` does: SIGKILL),
  found by this cluster's root folder and GCS address.
* Losing a node. Killing only a raylet is already close to node loss in 2.60: its core workers
  notice within about a second and exit ("Shutting down the core worker because the local raylet
  failed"), even one busy inside a BLAS call, and its dashboard and runtime-env agents exit too;
  only the node's log monitor lives on. ``kill_worker()`` SIGKILLs the raylet and every process
  of the node at the same moment, as a dying machine would (no worker gets a last second to
  finish a checkpoint write), and leaves nothing behind. Either way Ray's GCS marks the node dead
  once its health checks fail: about 15 s with Ray's defaults, about 5 s on this cluster
  (``up(health_check_period_ms=1000)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from search.connection import dashboard_login_hint
from search.errors import UserError

STATE_FILE = "cluster.json"
HEAD = "head"
RESOURCE_PREFIX = "c3s_worker_"
OBJECT_STORE_MB = 512
# AF_UNIX socket paths are limited to 107 bytes; Ray's longest is
# ROOT/worker-NN/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store (about 75 bytes past ROOT).
_SOCKET_TAIL = len("/worker-99/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")
_SOCKET_MAX = 107


def default_root() -> Path:
    """The folder of the CLI's cluster: one per user, short enough for Ray's socket paths."""
    return Path(tempfile.gettempdir()) / f"conv3d-search-ray-{os.getuid()}"


@dataclasses.dataclass(frozen=True)
class Node:
    name: str  # "head", "worker-1", ...
    node_id: str  # Ray's hex node id
    temp_dir: str  # this node's --temp-dir
    resource: str | None = None  # the custom resource only this worker has (1 unit); None for the head


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    address: str  # GCS address: ray.init(address=...), `python -m search run --address`
    dashboard_url: str  # http://127.0.0.1:PORT
    root: str  # holds every node's temp dir, the `ray start` logs and cluster.json
    head: Node
    workers: tuple[Node, ...]
    auth: bool  # RAY_AUTH_MODE=token on every node

    @property
    def env(self) -> dict[str, str]:
        """What a driver's environment needs to connect with ``address`` (set before Ray is imported)."""
        return {"RAY_AUTH_MODE": "token" if self.auth else "disabled"}

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.head, *self.workers)

    def worker(self, key: str) -> Node:
        """A worker by name (worker-1), node id (or a unique prefix of 6+ characters), or custom resource.

        An IP names a worker only when one worker is running: all nodes here share one IP.
        """
        exact = [w for w in self.workers if key in (w.name, w.node_id, w.resource)]
        if exact:
            return exact[0]
        if len(key) >= 6:
            prefixed = [w for w in self.workers if w.node_id.startswith(key)]
            if len(prefixed) == 1:
                return prefixed[0]
        if key == self.address.rsplit(":", 1)[0]:
            if len(self.workers) == 1:
                return self.workers[0]
            raise UserError(f"{key}: every node of this local cluster has that IP; name the worker "
                            f"({', '.join(w.name for w in self.workers)}) or give its node id")
        raise UserError(f"{key}: no such worker (workers: {', '.join(w.name for w in self.workers) or 'none'})")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterInfo:
        return cls(address=data["address"], dashboard_url=data["dashboard_url"], root=data["root"],
                   head=Node(**data["head"]), workers=tuple(Node(**w) for w in data["workers"]), auth=data["auth"])


def up(workers: int = 2, cpus_per_node: int = 1, head_cpus: int = 0, temp_dir: str | os.PathLike | None = None,
       *, auth: bool = True, object_store_mb: int = OBJECT_STORE_MB, health_check_period_ms: int = 1000,
       pin_cpus: bool = False, timeout: float = 120.0) -> ClusterInfo:
    """Start a head and `workers` worker nodes on this machine; return once Ray shows them all alive.

    temp_dir is the cluster's root folder (default: ``default_root()``); it must be short (Ray's
    socket paths) and holds nothing but this cluster. A live cluster there is refused; a dead
    one's leftovers are cleared. On any failure everything started so far is stopped again.
    health_check_period_ms: how often the GCS checks each raylet (Ray's default is 3000). It
    declares a node dead after 5 failed checks, so a killed worker is seen dead after about 5 s
    instead of 15 s; a slow node still gets Ray's 10-s timeout per check.
    pin_cpus: confine each worker node (its raylet and every process it starts) to cpus_per_node
    cores of its own, as a real machine of that size is; Ray's --num-cpus only counts, it doesn't
    confine, so without this a "1-CPU" node's TensorFlow also uses idle cores. The head is not pinned.
    """
    if workers < 0 or cpus_per_node < 0 or head_cpus < 0:
        raise UserError("cluster up: --workers, --cpus-per-node and --head-cpus must be >= 0")
    cores = sorted(os.sched_getaffinity(0))
    if pin_cpus and (cpus_per_node < 1 or workers * cpus_per_node > len(cores)):
        raise UserError(f"cluster up: --pin-cpus needs workers x cpus-per-node ({workers} x {cpus_per_node}) "
                        f"between 1 and this machine's {len(cores)} cores")
    root = Path(temp_dir or default_root()).absolute()
    if len(str(root)) + _SOCKET_TAIL > _SOCKET_MAX:
        raise UserError(f"{root}: too long for a Ray temp dir (its socket paths would pass {_SOCKET_MAX} bytes); "
                        f"use at most {_SOCKET_MAX - _SOCKET_TAIL} characters")
    _clear_stale(root)
    root.mkdir(parents=True, exist_ok=True)
    env = _node_env(auth)
    try:
        head_dir = root / HEAD
        dashboard_port = _free_port()
        head_env = {**env, "RAY_health_check_period_ms": str(health_check_period_ms)}  # read by the head's GCS
        _ray_start(root, HEAD, [
            "--head", "--port", "0", "--num-cpus", str(head_cpus), "--num-gpus", "0",
            "--temp-dir", str(head_dir), "--node-name", HEAD,
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
            "--ray-client-server-port", str(_free_port()),
            *_common_flags(object_store_mb),
        ], head_env, timeout)
        address = (head_dir / "ray_current_cluster").read_text().strip()  # written by `ray start --head`
        names = [f"worker-{i}" for i in range(1, workers + 1)]
        # Record what is starting, so down() can find it even if the workers fail to come up.
        partial = ClusterInfo(address, f"http://127.0.0.1:{dashboard_port}", str(root),
                              Node(HEAD, "", str(head_dir)), (), auth)
        _write_state(root, partial)
        starts = [_ray_start_async(root, name, [
            "--address", address, "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
            "--temp-dir", str(root / name), "--node-name", name,
            "--resources", json.dumps({f"{RESOURCE_PREFIX}{i}": 1}),
            *_common_flags(object_store_mb),
        ], env, cores[(i - 1) * cpus_per_node:i * cpus_per_node] if pin_cpus else None)
            for i, name in enumerate(names, start=1)]
        for name, process in starts:
            _wait_started(root, name, process, timeout)
        nodes = _wait_alive(address, env, [HEAD, *names], timeout)
        info = dataclasses.replace(
            partial,
            head=Node(HEAD, nodes[HEAD], str(head_dir)),
            workers=tuple(Node(name, nodes[name], str(root / name), f"{RESOURCE_PREFIX}{i}")
                          for i, name in enumerate(names, start=1)),
        )
        _write_state(root, info)
        return info
    except BaseException:
        down(root, remove=False)  # stop what started; keep the logs named in the error
        raise


def down(cluster: ClusterInfo | str | os.PathLike | None = None, *, remove: bool = True) -> int:
    """Stop every process of one local cluster (SIGKILL, as ``ray stop --force``); return how many.

    cluster: its ClusterInfo or root folder (default: ``default_root()``). Other Ray clusters on
    the machine are not touched (``ray stop`` would end them all). remove: delete the root folder
    (the nodes' logs) afterwards. Safe to call when nothing runs.
    """
    root = Path(cluster.root if isinstance(cluster, ClusterInfo) else cluster or default_root()).absolute()
    address = _read_address(root) or (cluster.address if isinstance(cluster, ClusterInfo) else None)
    killed = 0
    for _ in range(5):  # a raylet can start a worker while we kill; look again until nothing is left
        found = _cluster_processes(root, address)
        if not found:
            break
        killed += _kill(found)
    (root / STATE_FILE).unlink(missing_ok=True)
    if remove:
        _remove_ours(root)
    return killed


def kill_worker(node: str, cluster: ClusterInfo | str | os.PathLike | None = None,
                *, wait_dead: float = 0.0) -> list[int]:
    """Simulate losing one worker node: SIGKILL its raylet and every process it runs; return their PIDs.

    node: the worker's name (worker-1), node id (or a unique prefix), custom resource, or IP (only
    when there is one worker). wait_dead > 0: then wait up to that many seconds for Ray's GCS to
    mark the node dead (its health check takes a few seconds).
    """
    info = load(cluster) if not isinstance(cluster, ClusterInfo) else cluster
    target = info.worker(node)
    processes = _node_processes(target)
    if not processes:
        raise UserError(f"{target.name}: none of its processes is running (already killed?)")
    pids = sorted(p.pid for p in processes)
    _kill(processes)
    if wait_dead > 0:
        nodes = _probe_nodes(info.address, _node_env(info.auth, ensure_token=False), until_dead=target.node_id,
                             timeout=wait_dead)
        if any(n["NodeID"] == target.node_id and n["Alive"] for n in nodes):
            raise UserError(f"{target.name}: Ray still shows the node alive after {wait_dead:.0f} s")
    return pids


def load(cluster: str | os.PathLike | None = None) -> ClusterInfo:
    """The running cluster recorded in a root folder (default: ``default_root()``)."""
    root = Path(cluster or default_root()).absolute()
    path = root / STATE_FILE
    if not path.is_file():
        raise UserError(f"no local cluster is up in {root} (start one with `python -m search cluster up`)")
    return ClusterInfo.from_json(json.loads(path.read_text()))


# --- processes -------------------------------------------------------------------------------------

def _node_env(auth: bool, ensure_token: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "token" if auth else "disabled"  # explicit on every node: see the module doc
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if auth and ensure_token:
        _ensure_token(env)
    return env


def _ensure_token(env: dict[str, str]) -> None:
    """Create Ray's token (~/.ray/auth_token) if none exists, with Ray's own command; the token is not printed."""
    done = subprocess.run([_ray_cli(), "get-auth-token", "--generate"], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    if done.returncode != 0:
        raise UserError(f"cluster up: `ray get-auth-token --generate` failed: {_last_line(done.stderr)}")


def _common_flags(object_store_mb: int) -> list[str]:
    return ["--dashboard-agent-listen-port", "0", "--min-worker-port", "0", "--max-worker-port", "0",
            "--object-store-memory", str(object_store_mb * 1024 * 1024), "--disable-usage-stats"]


def _ray_cli() -> str:
    """The `ray` script of this interpreter's environment (the PATH's may be another Ray)."""
    here = Path(sys.executable).parent / "ray"
    return str(here) if here.exists() else (shutil.which("ray") or "ray")


def _ray_start_async(root: Path, name: str, args: list[str], env: dict[str, str], cores: list[int] | None = None):
    (root / name).mkdir(parents=True, exist_ok=True)
    log = open(root / f"{name}.log", "wb")
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None  # inherited by all the node's processes
    try:
        process = subprocess.Popen([_ray_cli(), "start", *args], env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=pin)
    finally:
        log.close()
    return name, process


def _ray_start(root: Path, name: str, args: list[str], env: dict[str, str], timeout: float) -> None:
    _wait_started(root, name, _ray_start_async(root, name, args, env)[1], timeout)


def _wait_started(root: Path, name: str, process: subprocess.Popen, timeout: float) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise UserError(f"cluster up: `ray start` for {name} did not finish in {timeout:.0f} s "
                        f"(see {root / (name + '.log')})") from None
    if code != 0:
        raise UserError(f"cluster up: `ray start` for {name} failed: "
                        f"{_last_line((root / (name + '.log')).read_text(errors='replace'))}")


_PROBE = """
import json, sys, time, ray
address, dead, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + timeout
while True:  # with a node id: poll until the GCS has marked that node dead (or the time is up)
    nodes = ray.nodes()
    if not dead or not any(n["NodeID"] == dead and n["Alive"] for n in nodes) or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print("NODES=" + json.dumps([{k: n[k] for k in ("NodeID", "NodeName", "Alive", "Resources")} for n in nodes]))
"""


def _probe_nodes(address: str, env: dict[str, str], until_dead: str = "", timeout: float = 0.0) -> list[dict[str, Any]]:
    """ray.nodes() seen by a short-lived driver in a child process (this process stays unconnected).

    until_dead: a node id; the child then polls until Ray marks that node dead, or timeout passes.
    """
    done = subprocess.run([sys.executable, "-c", _PROBE, address, until_dead, str(timeout)], env=env,
                          capture_output=True, text=True, timeout=timeout + 120)
    for line in done.stdout.splitlines():
        if line.startswith("NODES="):
            return json.loads(line[len("NODES="):])
    raise UserError(f"cannot read the cluster's nodes at {address}: {_last_line(done.stderr)}")


def _wait_alive(address: str, env: dict[str, str], names: list[str], timeout: float) -> dict[str, str]:
    """Node ids by node name, once every named node is alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {n["NodeName"]: n["NodeID"] for n in _probe_nodes(address, env) if n["Alive"]}
        if all(name in alive for name in names):
            return {name: alive[name] for name in names}
        if time.monotonic() > deadline:
            missing = [name for name in names if name not in alive]
            raise UserError(f"cluster up: nodes not alive after {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(1)


def _cluster_processes(root: Path, address: str | None) -> list:
    """This cluster's processes: Ray's processes that name its root folder or GCS address, and their children.

    Worker and agent processes rename themselves (ray::IDLE, ray::DashboardAgent), and a killed
    raylet's children are reparented: those are found by the log files they hold open under root.
    This process and its parents are never included (a test or driver that connected holds files there).
    """
    folder = str(root) + os.sep
    at = re.compile(re.escape(address) + r"(?!\d)") if address else None
    return _find(lambda cmd: folder in cmd or bool(at and at.search(cmd)), folder)


def _node_processes(node: Node) -> list:
    marks = [node.temp_dir + os.sep] + ([f"--node_id={node.node_id}", f"--node-id={node.node_id}"] if node.node_id else [])
    return _find(lambda cmd: any(m in cmd for m in marks), node.temp_dir + os.sep)


def _find(matches, folder: str) -> list:
    import psutil

    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, Any] = {}
    for process in psutil.process_iter():
        if process.pid in spared:
            continue
        try:
            cmd = " ".join(process.cmdline())
            if _is_ray_process(process, cmd) and (matches(cmd) or _holds_files_in(process, folder)):
                found[process.pid] = process
        except (psutil.Error, OSError):
            continue
    for process in list(found.values()):  # workers and agents are the raylet's children: take them before it dies
        try:
            for child in process.children(recursive=True):
                if child.pid not in spared:
                    found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return list(found.values())


def _is_ray_process(process, cmd: str) -> bool:
    """Ray's own processes (not a driver such as `python -m search run`, which also holds log files)."""
    return (cmd.startswith(("ray::", "ray-dashboard-")) or "/site-packages/ray/" in cmd or " -m ray." in cmd
            or "/bin/ray start" in cmd or process.name() in ("raylet", "gcs_server"))


def _holds_files_in(process, folder: str) -> bool:
    return any(f.path.startswith(folder) for f in process.open_files())


def _kill(processes: Iterable) -> int:
    import psutil

    processes = list(processes)
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(processes, timeout=10)
    return len(processes)


# --- state -----------------------------------------------------------------------------------------

def _write_state(root: Path, info: ClusterInfo) -> None:
    tmp = root / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n")
    os.replace(tmp, root / STATE_FILE)


def _read_address(root: Path) -> str | None:
    try:
        return json.loads((root / STATE_FILE).read_text())["address"]
    except (OSError, ValueError, KeyError):
        try:
            return (root / HEAD / "ray_current_cluster").read_text().strip() or None
        except OSError:
            return None


def _clear_stale(root: Path) -> None:
    """Refuse a root whose cluster is running; clear what a dead one left behind."""
    if not root.exists():
        return
    address = _read_address(root)
    if _cluster_processes(root, address):
        if (root / STATE_FILE).is_file():
            raise UserError(f"a local Ray cluster is already up in {root} (address {address}); "
                            "stop it with `python -m search cluster down` first")
        raise UserError(f"{root}: Ray processes are using this folder; stop them or choose another folder")
    _remove_ours(root)


def _remove_ours(root: Path) -> None:
    """Delete what up() put into root (node temp dirs, `ray start` logs, the state), then root if empty.

    Nothing else: root may be a folder the user named.
    """
    if not root.is_dir():
        return
    for path in root.iterdir():
        ours = path.name in (HEAD, STATE_FILE, f".{STATE_FILE}.tmp", f"{HEAD}.log") or (
            path.name.startswith("worker-") and (path.is_dir() or path.suffix == ".log"))
        if not ours:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    try:
        root.rmdir()
    except OSError:
        pass  # not empty: something of the user's is in it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


# --- CLI -------------------------------------------------------------------------------------------

def add_cli(commands) -> None:
    """Register ``cluster up|down|kill-worker`` on the CLI's subcommands (argparse subparsers action)."""
    parser = commands.add_parser("cluster", help="start or stop a local multi-node Ray cluster on this machine")
    actions = parser.add_subparsers(dest="cluster_command", required=True, parser_class=type(parser))
    start = actions.add_parser("up", help="start a head and N worker nodes (real `ray start` processes)")
    start.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    start.add_argument("--cpus-per-node", type=int, default=1, help="CPUs each worker offers (default 1)")
    start.add_argument("--head-cpus", type=int, default=0, help="CPUs the head offers (default 0: trials run on workers)")
    start.add_argument("--object-store-mb", type=int, default=OBJECT_STORE_MB,
                       help=f"object store per node in MiB (default {OBJECT_STORE_MB})")
    start.add_argument("--dir", type=Path, help=f"root folder of the nodes' temp dirs (default {default_root()})")
    start.add_argument("--no-auth", action="store_true", help="turn Ray's token authentication off (not recommended)")
    start.add_argument("--pin-cpus", action="store_true",
                       help="confine each worker node to cores of its own, like a real machine of --cpus-per-node cores")
    stop = actions.add_parser("down", help="stop that cluster's processes (and no other Ray's)")
    stop.add_argument("--dir", type=Path, help=f"root folder of the cluster (default {default_root()})")
    stop.add_argument("--keep-logs", action="store_true", help="keep the nodes' temp dirs and logs")
    kill = actions.add_parser("kill-worker", help="simulate losing one worker node (SIGKILL its raylet and processes)")
    kill.add_argument("worker", help="worker name (worker-1), node id or custom resource")
    kill.add_argument("--dir", type=Path, help=f"root folder of the cluster (default {default_root()})")


def cmd_cluster(args: argparse.Namespace) -> int:
    if args.cluster_command == "up":
        info = up(args.workers, args.cpus_per_node, args.head_cpus, args.dir, auth=not args.no_auth,
                  object_store_mb=args.object_store_mb, pin_cpus=args.pin_cpus)
        env = " ".join(f"{k}={v}" for k, v in info.env.items())
        print(f"local Ray cluster up: head ({args.head_cpus} CPUs) + {len(info.workers)} workers "
              f"({args.cpus_per_node} CPU each), in {info.root}")
        print(f"  address:   {info.address}")
        print(f"  search:    {env} python -m search run spaces/quick.py --address {info.address}")
        print(f"  workers:   {', '.join(f'{w.name} ({w.node_id[:8]})' for w in info.workers) or 'none'}")
        print(dashboard_login_hint(info.dashboard_url, info.auth))
        print(f"stop it with: python -m search cluster down{' --dir ' + str(args.dir) if args.dir else ''}")
    elif args.cluster_command == "down":
        root = Path(args.dir or default_root())
        killed = down(root, remove=not args.keep_logs)
        print(f"stopped {killed} Ray processes of the cluster in {root}" if killed else f"no cluster was running in {root}")
    else:
        info = load(args.dir)
        pids = kill_worker(args.worker, info)
        print(f"killed {info.worker(args.worker).name}: {len(pids)} processes (raylet, workers, agents)")
    return 0
