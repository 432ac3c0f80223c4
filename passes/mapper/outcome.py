"""What every mapper returns and how candidates are compared, so mappers are interchangeable."""

from __future__ import annotations

import dataclasses
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joule.cost import CostResult
from joule.cost.model import score
from joule.cost.nest import flatten
from joule.defaults import DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT_S
from joule.errors import MappingError
from joule.mapping import Mapping
from joule.passes.mapper.mapspace.space import MapSpace

REMEMBERED_SCORES = 8192  # per space: a descent's sweep revisits points of the sweep before
OBJECTIVES = ("energy", "edp", "latency")
FACTORS = ("perfect", "imperfect")


@dataclass(frozen=True)
class SearchOptions:
    objective: str = "energy"
    max_cycles: int | None = None
    min_utilization: float | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    factors: str = "perfect"  # "imperfect": loops may leave a residual tile

    def cycle_cap(self, macs: int, pes: int) -> int | None:
        """The latency cap implied by ``max_cycles`` and ``min_utilization`` (the tighter)."""
        caps = []
        if self.max_cycles is not None:
            caps.append(self.max_cycles)
        if self.min_utilization is not None and self.min_utilization > 0:
            caps.append(int(macs / (self.min_utilization * pes)))
        return min(caps) if caps else None


@dataclass(frozen=True)
class SolverReport:
    """How a mapper ended: status, objective, best bound and gap (objective units), and
    the energy no mapping of the layer can beat (pJ, whatever the objective; for the
    energy objective the best bound, which the constraints such as a cycle cap raise)."""

    mapper: str
    status: str
    objective: float
    bound: float
    gap: float
    time_s: float
    evaluated: int = 0  # points scored (exhaustive, random) or CP-SAT branches
    energy_bound_pj: float = 0.0
    proof_work: int = 0  # work units the proof search (passes/prove.py) spent
    # With imperfect factors: the status and objective the perfect space was solved to
    # (the search over residual tiles starts there; status, bound and gap are then the
    # imperfect space's).
    perfect_status: str = ""
    perfect_objective: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SearchResult:
    mapping: Mapping
    cost: CostResult
    report: SolverReport


def objective_value(cost: CostResult, objective: str) -> float:
    if objective == "energy":
        return cost.energy_pj
    if objective == "edp":
        return cost.energy_pj * cost.cycles
    return float(cost.cycles)


def rank_key(cost: CostResult, objective: str) -> tuple[float, float]:
    """Order candidates: the objective first; ties go to fewer cycles (energy: equal
    counts can come with 15x fewer busy PEs) or to less energy (latency, EDP)."""
    tie = float(cost.cycles) if objective == "energy" else cost.energy_pj
    return (objective_value(cost, objective), tie)


def score_point(space: MapSpace, mapping: Mapping) -> CostResult | None:
    """Cost of a point of the space, or None when its tiles do not fit. The latest
    scores are remembered: local descents ask again for 10-55 % of their points."""
    remembered = _SCORES.setdefault(space, OrderedDict())
    if mapping in remembered:
        remembered.move_to_end(mapping)
        return remembered[mapping]
    flat = flatten(mapping, space.level_names)
    try:
        cost = score(space.nest, space.target, flat)
    except MappingError:
        cost = None
    remembered[mapping] = cost
    if len(remembered) > REMEMBERED_SCORES:
        remembered.popitem(last=False)
    return cost


_SCORES: weakref.WeakKeyDictionary[MapSpace, OrderedDict[Mapping, CostResult | None]] = (
    weakref.WeakKeyDictionary()
)


def within_cap(cost: CostResult, cap: int | None) -> bool:
    return cap is None or cost.cycles <= cap
