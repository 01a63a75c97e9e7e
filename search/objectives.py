"""What a search optimizes: accuracy alone, or accuracy against costs (a Pareto front), under hard cost limits.

A space file's ``SEARCH["objectives"]`` and ``SEARCH["limits"]`` become an ``Objectives``; the study, ASHA's rungs,
the leaderboard and the final pick all read the front through the functions here. Non-dominated sorting and the
hypervolume are Optuna's (private in 5.1, so tests/test_objectives.py holds them to a brute-force front).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.errors import UserError
from search.protocol import METRIC

# Every objective a run may name, with the direction it is optimized in and what it measures.
DIRECTIONS = {METRIC: "max", "param_count": "min", "flops": "min", "latency_ms": "min"}
COSTS = {
    "param_count": "weights of the built model, counted before training",
    "flops": "floating-point operations of one view's forward pass (params.flops), before training",
    "latency_ms": "milliseconds per volume of the trained model's predict, on the trial's own device (train.latency_ms)",
}
KNOWN_BEFORE_TRAINING = ("param_count", "flops")  # their limits refuse a trial before it trains


@dataclass(frozen=True)
class Objectives:
    """The objectives in order (accuracy first: ASHA and the ranking read it) and the limits on costs."""

    names: tuple[str, ...] = (METRIC,)
    limits: tuple[tuple[str, float], ...] = ()  # (cost, the most it may be)

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    @property
    def costs(self) -> tuple[str, ...]:
        return self.names[1:]

    def directions(self) -> list[str]:
        return [DIRECTIONS[n] for n in self.names]

    def measures_latency(self) -> bool:
        return "latency_ms" in self.names or "latency_ms" in dict(self.limits)

    def over_limits(self, costs: Mapping[str, Any]) -> str | None:
        """Why these costs break a limit ("param_count 351,210 > limit 200,000"), or None; a cost not given is not judged."""
        broken = [f"{name} {show(costs[name])} > limit {show(limit)}" for name, limit in self.limits
                  if costs.get(name) is not None and costs[name] > limit]
        return "; ".join(broken) or None

    def constraints(self, costs: Mapping[str, Any]) -> dict[str, float]:
        """Optuna's constraint values (feasible when <= 0): each limit's excess, relative to the limit."""
        return {name: (costs[name] - limit) / limit for name, limit in self.limits if costs.get(name) is not None}

    def values(self, result: Mapping[str, Any]) -> list[float] | None:
        """The objective values of a result or record row, in order; None if any is missing or not a number."""
        values = [result.get(n) for n in self.names]
        if any(v is None or not isinstance(v, (int, float)) or math.isnan(v) for v in values):
            return None
        return [float(v) for v in values]

    def to_settings(self) -> dict[str, Any]:
        return {"objectives": list(self.names), "limits": dict(self.limits)}


def parse(objectives: Any, limits: Any) -> Objectives:
    """SEARCH's "objectives" (a list of names, or {name: "max"/"min"}) and "limits" ({cost: most}); UserError naming the key."""
    if isinstance(objectives, Mapping):
        for name, direction in objectives.items():
            if name in DIRECTIONS and direction != DIRECTIONS[name]:
                raise UserError(f"SEARCH['objectives']: {name!r} is optimized toward {DIRECTIONS[name]!r}, not {direction!r}")
        objectives = list(objectives)
    if not isinstance(objectives, (list, tuple)) or not objectives:
        raise UserError(f"SEARCH['objectives']={objectives!r} must be a non-empty list of names (known: {', '.join(DIRECTIONS)})")
    unknown = [n for n in objectives if not isinstance(n, str) or n not in DIRECTIONS]
    if unknown or len(set(map(str, objectives))) != len(objectives):
        raise UserError(f"SEARCH['objectives']={list(objectives)!r}: each must be one of {', '.join(DIRECTIONS)}, once")
    if objectives[0] != METRIC:
        raise UserError(f"SEARCH['objectives']={list(objectives)!r} must start with {METRIC!r} (ASHA stops trials on it)")
    if not isinstance(limits, Mapping):
        raise UserError(f"SEARCH['limits']={limits!r} must be a dict of cost -> the most it may be")
    for name, limit in limits.items():
        if name not in COSTS:
            raise UserError(f"SEARCH['limits'] names {name!r}: limits are on costs ({', '.join(COSTS)})")
        if type(limit) not in (int, float) or not limit > 0:
            raise UserError(f"SEARCH['limits'][{name!r}]={limit!r} must be a number > 0")
    return Objectives(tuple(objectives), tuple((n, float(v)) for n, v in limits.items()))


def _losses(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Objective values as Optuna's losses: lower is better in every column."""
    signs = np.array([-1.0 if DIRECTIONS[n] == "max" else 1.0 for n in names])
    return np.asarray(points, dtype=float).reshape(len(points), len(names)) * signs


def front_ranks(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Each point's non-domination rank, from 1 (1: on the Pareto front; 2: on it once the front is removed; ...)."""
    from optuna.study._multi_objective import _fast_non_domination_rank  # here: a trial imports this module

    if len(points) == 0:
        return np.array([], dtype=int)
    return _fast_non_domination_rank(_losses(points, names)) + 1


def crowding(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its own front layer: each objective's gap between its
    neighbours, scaled to the layer's range, summed; a layer's extremes get inf, so both ends of a front are kept.
    (Optuna's is written for its FrozenTrials, keyed by trial number.)"""
    losses, ranks = _losses(points, names), front_ranks(points, names)
    out = np.zeros(len(points))
    for rank in np.unique(ranks):
        layer = np.flatnonzero(ranks == rank)
        for j in range(losses.shape[1]):
            order = layer[np.argsort(losses[layer, j], kind="stable")]
            values = losses[order, j]
            out[order[0]] = out[order[-1]] = np.inf
            if values[-1] > values[0] and len(order) > 2:
                out[order[1:-1]] += (values[2:] - values[:-2]) / (values[-1] - values[0])
    return out


def distances(points: np.ndarray, names: Sequence[str], front: np.ndarray) -> np.ndarray:
    """Each point's distance to the ideal point (each objective at its best on the front), every objective scaled
    to the front's range: 0 to sqrt(objectives) on the front, the knee's the least."""
    losses, edge = _losses(points, names), _losses(front, names)
    low, high = edge.min(axis=0), edge.max(axis=0)
    scaled = (losses - low) / np.where(high > low, high - low, 1.0)
    return np.sqrt((scaled**2).sum(axis=1))


def knee(front: np.ndarray, names: Sequence[str]) -> int:
    """Index of the front's knee: the point nearest the ideal point (see distances); the more accurate wins a tie."""
    return int(np.lexsort((_losses(front, names)[:, 0], distances(front, names, front)))[0])


def hypervolume(points: np.ndarray, names: Sequence[str], worst: Sequence[float]) -> float:
    """The share of the box between the ideal corner (accuracy 1, every cost 0) and `worst` (accuracy 0, each cost's
    worst) that the points dominate: 0 to 1, and it only grows as trials are added."""
    from optuna._hypervolume import compute_hypervolume

    if len(points) == 0:
        return 0.0
    scale = np.array([1.0, *worst[1:]], dtype=float)
    losses = _losses(np.asarray(points, dtype=float) / scale, names)
    reference = _losses(np.array([[0.0] + [1.0] * (len(names) - 1)]), names)[0]
    inside = losses[(losses < reference).all(axis=1)]
    corner = _losses(np.array([[1.0] + [0.0] * (len(names) - 1)]), names)[0]
    box = float(np.prod(reference - corner))
    return float(compute_hypervolume(inside, reference)) / box if len(inside) else 0.0


_CONDITION = re.compile(r"^\s*(\w+)\s*(<=|<)\s*([0-9.eE+_-]+)\s*$")


def parse_condition(text: str) -> list[tuple[str, str, float]]:
    """`final --pareto "latency_ms<=1.5,param_count<=2e5"` -> [(cost, operator, bound)]; UserError if malformed."""
    conditions = []
    for part in text.split(","):
        match = _CONDITION.match(part)
        if not match or match[1] not in COSTS:
            raise UserError(f"--pareto {text!r}: expected COST<=NUMBER (COST one of {', '.join(COSTS)}), comma-separated")
        try:
            conditions.append((match[1], match[2], float(match[3].replace("_", ""))))
        except ValueError:
            raise UserError(f"--pareto {text!r}: {match[3]!r} is not a number") from None
    return conditions


def meets(costs: Mapping[str, Any], conditions: Sequence[tuple[str, str, float]]) -> bool:
    """Whether costs meet every condition (a cost not known fails it)."""
    def holds(name: str, op: str, bound: float) -> bool:
        value = costs.get(name)
        return value is not None and (value <= bound if op == "<=" else value < bound)
    return all(holds(*c) for c in conditions)


def show(value: float) -> str:
    """A cost as the console and errors print it: 351,210 or 1.52."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"
