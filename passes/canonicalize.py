"""canonicalize: drop extent-1 dims so the mapspace has no empty loops.

Precondition: loop nests straight from lowering. A dim of extent 1 contributes
nothing to any tile or count, but it would add slots (and orders) to every
mapper's search; after this pass every dim has extent > 1. A mapping of the
canonical nest is a mapping of the original one (the dropped loops run once).
Folding dims is left out: a folded dim cannot always be split back into the
original loops' factors, which the TVM schedule needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from joule.ir.affine import AffineExpr
from joule.ir.loopnest import LoopNest, Tensor
from joule.pipeline import MappingModule


@dataclass(frozen=True)
class Canonicalize:
    name: str = "canonicalize"

    def apply(self, module: MappingModule) -> MappingModule:
        return module.with_layers(
            [layer.with_(nest=drop_unit_dims(layer.nest)) for layer in module.layers]
        )


def drop_unit_dims(nest: LoopNest) -> LoopNest:
    unit = {d for d, e in nest.dims if e == 1}
    if not unit:
        return nest

    def strip(expr: AffineExpr) -> AffineExpr:
        return AffineExpr(tuple((d, c) for d, c in expr.terms if d not in unit), expr.offset)

    tensors = tuple(
        Tensor(t.name, t.role, t.bits, tuple(strip(p) for p in t.projection), t.shape)
        for t in nest.tensors
    )
    return LoopNest(
        name=nest.name,
        dims=tuple((d, e) for d, e in nest.dims if d not in unit),
        reduction=frozenset(nest.reduction - unit),
        tensors=tensors,
        op=nest.op,
        onnx_node=nest.onnx_node,
        relax_op=nest.relax_op,
        attrs=nest.attrs,
    )
