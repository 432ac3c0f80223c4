"""The loop-nest IR: one perfectly nested affine loop nest around a multiply-accumulate.

This is Timeloop's "problem": what a layer computes, independent of any chip or
mapping. It imports no TVM so that the cost model and the mapper load fast and
can be fed from anywhere (ONNX via TVM, Timeloop YAML, a hand-written spec).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from joule.errors import IRParseError
from joule.ir.affine import AffineExpr

Role = Literal["input", "weight", "output"]
ROLES: tuple[Role, ...] = ("input", "weight", "output")


@dataclass(frozen=True)
class Tensor:
    """One operand of the MAC.

    ``role`` is the tensor's part in the dataflow: the output accumulates, the
    ``weight`` is the operand a weight-stationary array keeps in place. For an
    activation x activation product (attention's QK^T, AV) the second operand
    takes the weight role. ``shape`` is the real tensor's shape: an index outside
    it reads zero, which is how convolution padding is recorded.
    """

    name: str
    role: Role
    bits: int
    projection: tuple[AffineExpr, ...]
    shape: tuple[int, ...]

    @cached_property  # asked for millions of times by the proof's cost model
    def relevant_dims(self) -> frozenset[str]:
        return frozenset(d for axis in self.projection for d in axis.dims)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "bits": self.bits,
            "shape": list(self.shape),
            "projection": [str(axis) for axis in self.projection],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tensor:
        return cls(
            name=data["name"],
            role=data["role"],
            bits=int(data["bits"]),
            projection=tuple(AffineExpr.parse(p) for p in data["projection"]),
            shape=tuple(int(s) for s in data["shape"]),
        )


@dataclass(frozen=True)
class LoopNest:
    """``output[...] += input[...] * weight[...]`` over the box of ``dims``.

    ``dims`` keeps the loop order of the source (outermost first); each dim is
    spatial unless listed in ``reduction``. ``op`` is the ONNX op type,
    ``onnx_node`` the ONNX node name and ``relax_op`` the Relax operator it came
    from, so every number in a report traces back to the model.
    """

    name: str
    dims: tuple[tuple[str, int], ...]
    reduction: frozenset[str]
    tensors: tuple[Tensor, ...]
    op: str = ""
    onnx_node: str = ""
    relax_op: str = ""
    attrs: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        names = [d for d, _ in self.dims]
        if len(set(names)) != len(names):
            raise IRParseError(f"loop nest @{self.name} repeats a dim: {names}")
        for d, extent in self.dims:
            if extent < 1:
                raise IRParseError(f"loop nest @{self.name}: dim {d} has extent {extent} < 1")
        unknown = set(self.reduction) - set(names)
        for t in self.tensors:
            unknown |= t.relevant_dims - set(names)
        if unknown:
            raise IRParseError(f"loop nest @{self.name} uses undeclared dims {sorted(unknown)}")
        if [t.role for t in self.tensors].count("output") != 1:
            raise IRParseError(f"loop nest @{self.name} needs exactly one output tensor")

    @property
    def extents(self) -> dict[str, int]:
        return dict(self.dims)

    @property
    def dim_names(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.dims)

    @property
    def macs(self) -> int:
        return math.prod(e for _, e in self.dims)

    @property
    def output(self) -> Tensor:
        return next(t for t in self.tensors if t.role == "output")

    @property
    def operands(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.role != "output")

    def tensor(self, role: Role) -> Tensor:
        for t in self.tensors:
            if t.role == role:
                return t
        raise KeyError(role)

    def index_range(self, tensor: Tensor) -> list[tuple[int, int]]:
        """Per axis, the lowest and highest index the loop nest touches."""
        extents = self.extents
        ranges = []
        for axis in tensor.projection:
            lo = hi = axis.offset
            for d, c in axis.terms:
                span = c * (extents[d] - 1)
                lo += min(0, span)
                hi += max(0, span)
            ranges.append((lo, hi))
        return ranges

    def padding(self, tensor: Tensor) -> tuple[tuple[int, int], ...]:
        """Per axis, (before, after): indices outside the real tensor, read as zeros."""
        return tuple(
            (max(0, -lo), max(0, hi - (size - 1)))
            for (lo, hi), size in zip(self.index_range(tensor), tensor.shape, strict=True)
        )

    def signature(self) -> str:
        """A hash of the shape of the computation, blind to names.

        Two call sites with the same signature compute the same loop nest on
        same-shaped tensors, so one mapping solve serves both.
        """
        body = {
            "dims": [list(d) for d in self.dims],
            "reduction": sorted(self.reduction),
            "tensors": [
                [t.role, t.bits, list(t.shape), [str(p) for p in t.projection]]
                for t in self.tensors
            ],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "onnx_node": self.onnx_node,
            "relax_op": self.relax_op,
            "dims": dict(self.dims),
            "reduction_dims": [d for d in self.dim_names if d in self.reduction],
            "tensors": [t.to_dict() for t in self.tensors],
            "macs": self.macs,
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopNest:
        return cls(
            name=data["name"],
            dims=tuple((d, int(e)) for d, e in data["dims"].items()),
            reduction=frozenset(data.get("reduction_dims", ())),
            tensors=tuple(Tensor.from_dict(t) for t in data["tensors"]),
            op=data.get("op", ""),
            onnx_node=data.get("onnx_node", ""),
            relax_op=data.get("relax_op", ""),
            attrs=tuple(sorted((str(k), str(v)) for k, v in data.get("attrs", {}).items())),
        )


@dataclass(frozen=True)
class UnmappedOp:
    """An op with no MAC loop nest (elementwise, pooling, norms, reshapes): listed, not mapped.

    ``folded`` marks a copy (e.g. Gemm's weight transpose) that the lowering
    folded into a loop nest's projection: listed so nothing is silently dropped.
    """

    name: str
    op: str
    elements: int
    relax_op: str = ""
    folded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "elements": self.elements}
