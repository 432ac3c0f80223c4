"""A network: the loop nests of a model in execution order, linked by the tensors they exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from joule.ir.loopnest import LoopNest, UnmappedOp


@dataclass
class Network:
    """Every op of a model: mapped loop nests and unmapped ops, nothing dropped.

    ``graph`` has one node per op (``kind`` = "loopnest" or "unmapped") and an
    edge producer -> consumer labelled with the tensor that flows along it.
    """

    model: str
    loopnests: list[LoopNest]
    unmapped_ops: list[UnmappedOp]
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    @property
    def total_macs(self) -> int:
        return sum(n.macs for n in self.loopnests)

    def loopnest(self, name: str) -> LoopNest:
        for nest in self.loopnests:
            if nest.name == name or nest.onnx_node == name:
                return nest
        raise KeyError(name)

    def unique_loopnests(self) -> dict[str, list[LoopNest]]:
        """Loop nests grouped by shape signature (one solve per group), in first-seen order."""
        groups: dict[str, list[LoopNest]] = {}
        for nest in self.loopnests:
            groups.setdefault(nest.signature(), []).append(nest)
        return groups

    def to_dict(self) -> dict[str, Any]:
        """The record ``joule lower --json`` prints (exactly these keys)."""
        return {
            "model": self.model,
            "total_macs": self.total_macs,
            "loopnests": [_lower_json(n) for n in self.loopnests],
            "unmapped_ops": [u.to_dict() for u in self.unmapped_ops],
        }


def _lower_json(nest: LoopNest) -> dict[str, Any]:
    """The per-loop-nest record of ``joule lower --json``."""
    return {
        "name": nest.name,
        "op": nest.op,
        "onnx_node": nest.onnx_node,
        "dims": dict(nest.dims),
        "reduction_dims": [d for d in nest.dim_names if d in nest.reduction],
        "tensors": [
            {
                "name": t.name,
                "role": t.role,
                "bits": t.bits,
                "projection": [str(axis) for axis in t.projection],
            }
            for t in nest.tensors
        ],
        "macs": nest.macs,
    }
