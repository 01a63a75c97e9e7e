"""Per-trial resources, and whether the cluster can ever place one trial: refused before the search, not left PENDING.

Ray keeps a trial whose request no node can hold PENDING for ever, and says so once in the middle of
Tune's table. A trial runs in one placement-group bundle, so one node must have all of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from search.errors import UserError

# Ray's cluster launcher (`ray up`) leaves this file on the head node; Tune uses it to tell an autoscaling cluster.
RAY_UP_CONFIG = Path("~/ray_bootstrap_config.yaml")
AUTOSCALER_WAIT_S = 600.0  # default wait for nodes on an autoscaling cluster: a cloud VM or pod starts in minutes
POLL_S = 2.0


@dataclass(frozen=True)
class Resources:
    """Per-trial resources (fractions allowed), how many trials may run at once, and how they use a GPU.

    memory_gib reserves memory on a node for each trial, and the trial holds itself to it (see search.trial).
    mps and precision are the GPU settings of search.backend (MPS daemon per node, Keras dtype policy).
    """

    cpus: float = 1.0
    gpus: float = 0.0
    max_concurrent: int | None = None
    memory_gib: float | None = None
    mps: bool = False
    precision: str = "float32"

    def bundle(self) -> dict[str, float]:
        """One trial's request in Ray's resource names (memory in bytes)."""
        request = {"CPU": self.cpus, "GPU": self.gpus}
        if self.memory_gib:
            request["memory"] = self.memory_gib * 2**30
        return request


def default_wait_s(address: str | None) -> float:
    """How long to wait for a node that can hold a trial: 0 on a local Ray, AUTOSCALER_WAIT_S on a `ray up` head."""
    return AUTOSCALER_WAIT_S if address and RAY_UP_CONFIG.expanduser().exists() else 0.0


def wait_until_placeable(resources: Resources, wait_s: float) -> None:
    """Return once some alive node can hold one trial; after wait_s seconds, a UserError naming the request and the nodes.

    While waiting, the request is passed to Ray's autoscaler (``request_resources``), which starts a
    node for it if the cluster has a node type that fits; the request is withdrawn afterwards.
    """
    from ray.autoscaler.sdk import request_resources

    bundle = resources.bundle()
    if _fits(bundle, _nodes()):
        return
    if wait_s > 0:
        print(f"waiting up to {wait_s:.0f} s for a node with {_describe(bundle)} for one trial "
              f"(the cluster has {_describe_nodes(_nodes())}; --wait-for-resources sets how long)", flush=True)
        request_resources(bundles=[bundle])
        try:
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                time.sleep(POLL_S)
                if _fits(bundle, _nodes()):
                    print("a node that fits one trial joined", flush=True)
                    return
        finally:
            request_resources(bundles=[])
    waited = f" after waiting {wait_s:.0f} s" if wait_s > 0 else ""
    raise UserError(f"no node can hold one trial's request of {_describe(bundle)}{waited}: "
                    f"the cluster has {_describe_nodes(_nodes())} (lower --cpus-per-trial, --gpus-per-trial or "
                    "--memory-per-trial, or add a node)")


def _nodes() -> list[dict[str, float]]:
    import ray

    return [n["Resources"] for n in ray.nodes() if n["Alive"]]


def _fits(bundle: dict[str, float], nodes: list[dict[str, float]]) -> bool:
    return any(all(node.get(name, 0.0) >= amount for name, amount in bundle.items() if amount) for node in nodes)


def _describe(resources: dict[str, float]) -> str:
    parts = [f"{resources.get('CPU', 0):g} CPU", f"{resources.get('GPU', 0):g} GPU"]
    if "memory" in resources:
        parts.append(f"{resources['memory'] / 2**30:.1f} GiB memory")
    return ", ".join(parts)


def _describe_nodes(nodes: list[dict[str, float]]) -> str:
    if not nodes:
        return "no alive node"
    kinds: dict[str, int] = {}
    for node in sorted(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)), reverse=True):  # largest first
        text = _describe({**node, "memory": node.get("memory", 0.0)})
        kinds[text] = kinds.get(text, 0) + 1
    return "; ".join(f"{count} node{'s' if count > 1 else ''} of {text}" for text, count in kinds.items())
