"""One LoopNest per MAC call site, with call-site tensor names and folded copies.

A PrimFunc shared by several call sites (LegalizeOps deduplicates structurally
equal functions) is described once; each site names the tensors after its own
arguments. An operand produced by an affine copy within the same ONNX node
(Gemm's ``transB`` becomes ``permute_dims`` + ``matmul``) is folded into the
operand's projection, so the weight tensor is the ONNX weight itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from joule.frontend.records import Access, Binding, MacBlock, ModuleDescription
from joule.ir.affine import AffineExpr
from joule.ir.loopnest import LoopNest, Tensor
from joule.lower.naming import canonicalize

_ROLES = ("output", "input", "weight")


@dataclass(frozen=True)
class _Operand:
    value: int
    projection: tuple[AffineExpr, ...]
    shape: tuple[int, ...]
    dtype: str
    padding: tuple[tuple[int, int], ...] | None


def dtype_bits(dtype: str) -> int:
    """Element bits of a TVM dtype string (``float32`` -> 32, ``bool`` -> 8)."""
    match = re.search(r"(\d+)$", dtype)
    return int(match.group(1)) if match else 8


def build_loopnest(
    desc: ModuleDescription,
    site: Binding,
    block: MacBlock,
    name: str,
    *,
    producers: dict[int, Binding],
    label: Callable[[int], str],
    folded: set[int],
) -> LoopNest:
    """The LoopNest of one MAC block at one call site; adds folded copies' vars to ``folded``."""
    func = desc.funcs[site.func or ""]
    node = next((n for n in desc.nodes if n.name == site.node), None)

    def operand(access: Access) -> _Operand:
        param = func.params[access.param]
        value = site.args[access.param] if access.param < len(site.args) else site.var
        op = _Operand(value, access.projection, param.shape or (), param.dtype, access.padding)
        return _fold(desc, site, op, producers, folded)

    out, first, second = operand(block.output), *map(operand, block.operands)
    operands = (out, first, second)
    canon = canonicalize(block.dims, block.reduction, tuple(o.projection for o in operands))
    tensors = tuple(
        Tensor(label(o.value), role, dtype_bits(o.dtype), proj, o.shape)  # type: ignore[arg-type]
        for o, role, proj in zip(operands, _ROLES, canon.projections, strict=True)
    )
    attrs = _attrs(node.attrs if node else {}, operands, canon.source, site, block)
    return LoopNest(
        name=name,
        dims=canon.dims,
        reduction=canon.reduction,
        tensors=tensors,
        op=node.op_type if node else "",
        onnx_node=site.node or "",
        relax_op=site.relax_op,
        attrs=attrs,
    )


def _fold(
    desc: ModuleDescription,
    site: Binding,
    op: _Operand,
    producers: dict[int, Binding],
    folded: set[int],
) -> _Operand:
    """See through affine copies (transposes) the same ONNX node applied to this operand."""
    while op.padding is None:
        producer = producers.get(op.value)
        if producer is None or producer.node != site.node or producer.kind != "call_tir":
            return op
        copy = desc.funcs[producer.func or ""].copy
        if copy is None:
            return op
        env = {f"a{i}": axis for i, axis in enumerate(op.projection)}
        source = desc.funcs[producer.func or ""].params[copy.source]
        folded.add(producer.var)
        op = _Operand(
            producer.args[copy.source],
            tuple(_substitute(axis, env) for axis in copy.projection),
            source.shape or (),
            source.dtype,
            None,
        )
    return op


def _substitute(expr: AffineExpr, env: dict[str, AffineExpr]) -> AffineExpr:
    coeffs: dict[str, int] = {}
    offset = expr.offset
    for d, c in expr.terms:
        inner = env[d]
        offset += c * inner.offset
        for d2, c2 in inner.terms:
            coeffs[d2] = coeffs.get(d2, 0) + c * c2
    return AffineExpr.of(coeffs, offset)


def _attrs(onnx_attrs, operands, source, site, block) -> tuple[tuple[str, str], ...]:
    attrs: dict[str, str] = {}
    for key, value in onnx_attrs.items():
        text = _attr_text(value)
        if text is not None:
            attrs[key] = text
    for role, o in zip(_ROLES, operands, strict=True):
        if o.padding is not None:
            key = "padding" if role == "input" else f"padding.{role}"
            attrs[key] = json.dumps([list(p) for p in o.padding])
    attrs["tir.func"] = site.func or ""
    attrs["tir.block"] = block.name
    attrs["tir.dims"] = " ".join(f"{d}={v or '-'}" for d, v in source.items())
    return tuple(sorted(attrs.items()))


def _attr_text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return ",".join(str(v) for v in value)
    return None
