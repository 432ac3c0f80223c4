"""The result of ``joule compile``: every layer's mapping with its cost report, as data.

``to_dict`` is the schema of ``schedule.json`` (DESIGN.md "Outputs"); every
number in it comes from the cost model, never from the solver's objective.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from joule.cost.result import CostResult
from joule.ir.loopnest import LoopNest, UnmappedOp
from joule.mapping import Mapping
from joule.tiling import TilingSummary, summarize

JOULE_VERSION = "0.1.0"
TIME_KEYS = frozenset({"time_s", "pass_times_s"})


@dataclass(frozen=True)
class LayerSchedule:
    nest: LoopNest
    mapping: Mapping
    cost: CostResult
    solver: dict[str, Any]
    dataflow: str
    shared_with: str | None = None  # first layer of the same shape, solved once for both
    notes: tuple[str, ...] = ()

    @property
    def energy_bound_pj(self) -> float:
        """The best certified energy bound: the solver report's (proven by the mapper or by
        the mapspace's bounds) or the compulsory one."""
        return max(self.cost.lower_bound_pj, self.solver.get("energy_bound_pj", 0.0))

    @property
    def tiling(self) -> TilingSummary:
        """Per dim the loops' tiles and residual runs, and the PEs residual tiles leave idle."""
        return summarize(self.nest, self.mapping, self.cost)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.nest.name,
            "op": self.nest.op,
            "onnx_node": self.nest.onnx_node,
            "dims": dict(self.nest.dims),
            "macs": self.nest.macs,
            "dataflow": self.dataflow,
            "mapping": self.mapping.to_dict(),
            **self.cost.to_dict(),  # energy, breakdown, MAC energy, accesses, cycles, bound
            "tiling": self.tiling.to_dict(),  # tiles, residuals, PE utilisation, idle PEs
            "solver": self.solver,
            "signature": self.nest.signature(),
            "shared_with": self.shared_with,
            "notes": list(self.notes),
        }


@dataclass
class Schedule:
    model: str
    target: str
    target_hash: str
    objective: str
    dataflow: str
    mapper: str
    layers: list[LayerSchedule]
    unmapped_ops: list[UnmappedOp]
    time_s: float = 0.0
    pass_times_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    verification: dict[str, Any] = field(default_factory=dict)  # {"tvm": {...}} after --emit tvm

    @property
    def energy_pj(self) -> float:
        return sum(layer.cost.energy_pj for layer in self.layers)

    def totals(self) -> dict[str, Any]:
        return {
            "energy_pj": self.energy_pj,
            "cycles": sum(layer.cost.cycles for layer in self.layers),
            "macs": sum(layer.nest.macs for layer in self.layers),
            "lower_bound_pj": sum(layer.energy_bound_pj for layer in self.layers),
            "time_s": self.time_s,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "joule_version": JOULE_VERSION,
            "model": self.model,
            "target": self.target,
            "target_hash": self.target_hash,
            "objective": self.objective,
            "dataflow": self.dataflow,
            "mapper": self.mapper,
            "complete": self.complete,
            "layers": [layer.to_dict() for layer in self.layers],
            "unmapped_ops": [u.to_dict() for u in self.unmapped_ops],
            "totals": self.totals(),
            "pass_times_s": self.pass_times_s,
            "warnings": self.warnings,
            **({"verification": self.verification} if self.verification else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"


def strip_times(data: Any) -> Any:
    """The schedule without its wall-clock fields: what must be identical across runs."""
    if isinstance(data, dict):
        return {k: strip_times(v) for k, v in data.items() if k not in TIME_KEYS}
    if isinstance(data, list):
        return [strip_times(v) for v in data]
    return data
