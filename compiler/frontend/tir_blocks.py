"""Read a legalized PrimFunc's blocks as affine loop nests (plain records out).

Generic over operators: a *MAC block* is any block with a reduction iter
whose body is ``out[i] = out[i] + a[f(i)] * b[g(i)]`` (casts allowed) with
affine f, g. Index expressions are linearised over the block's iter vars;
``v // c`` and ``v % c`` on an iter var (grouped conv's channel) are made
affine by splitting ``v`` into ``v_o * c + v_i``. Reads through a copy block
(``pad_temp``, possibly zero-padding with ``if_then_else``) are composed
through it, so accesses address the real tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm_ffi
from joule.frontend.records import Access, CopyMap, MacBlock, Param, PrimFuncInfo
from joule.ir.affine import AffineExpr
from tvm import s_tir, tirx
from tvm.ir import expr as ir_expr
from tvm.ir.prim import expr as prim

_SPATIAL, _REDUCE = 0, 2
_Lin = dict[str, int]  # affine form: dim -> coeff, "" -> constant


class _NotAffine(Exception):
    pass


@dataclass
class _Copy:
    """A block ``dst[v0..vn] = src[f(v)]`` (or ``if_then_else(cond, src[f(v)], 0)``)."""

    dst: object
    src: object
    ivars: list[object]
    extents: list[int]
    indices: list[object]
    zero_padded: bool


def describe_primfunc(name: str, func: tirx.PrimFunc) -> PrimFuncInfo:
    """The MAC blocks of ``func`` and, if it is a pure affine copy, its index map."""
    params = tuple(_param(p) for p in func.params)
    index = {p: i for i, p in enumerate(func.params)}
    blocks: list[s_tir.SBlock] = []
    tvm_ffi.structural_walk(func.body, [(s_tir.SBlock, blocks.append)], order="pre")
    blocks = [b for b in blocks if b.iter_vars]
    static = [all(isinstance(iv.dom.extent, prim.IntImm) for iv in b.iter_vars) for b in blocks]
    if not all(static):
        # Symbolic extents: only say whether a MAC is among the blocks, for the error message.
        dynamic = any(
            _mac_operands(b) is not None for b, ok in zip(blocks, static, strict=True) if not ok
        )
        return PrimFuncInfo(name, params, (), None, dynamic=dynamic)
    copies = {c.dst: c for c in (_as_copy(b) for b in blocks) if c is not None}
    macs = tuple(m for m in (_as_mac(b, index, copies) for b in blocks) if m is not None)
    copy = None
    if len(blocks) == 1 and blocks[0].writes and blocks[0].writes[0].source in index:
        only = copies.get(blocks[0].writes[0].source)
        if only is not None and only.src in index and not only.zero_padded:
            copy = _copy_map(only, index)
    return PrimFuncInfo(name, params, macs, copy)


def _param(var: object) -> Param:
    ty = var.ty
    shape = []
    for s in ty.shape:
        if not isinstance(s, prim.IntImm):
            return Param(var.name, None, str(ty.dtype))
        shape.append(int(s))
    return Param(var.name, tuple(shape), str(ty.dtype))


# -- block patterns ---------------------------------------------------------------


def _strip_cast(e: object) -> object:
    while isinstance(e, prim.Cast):
        e = e.value
    return e


def _as_copy(block: s_tir.SBlock) -> _Copy | None:
    body = block.body
    if not isinstance(body, tirx.BufferStore) or any(
        iv.iter_type != _SPATIAL for iv in block.iter_vars
    ):
        return None
    ivars = [iv.var for iv in block.iter_vars]
    if len(body.indices) != len(ivars) or any(
        not i.same_as(v) for i, v in zip(body.indices, ivars, strict=True)
    ):
        return None
    value, zero_padded = _strip_cast(body.value), False
    if isinstance(value, ir_expr.Call) and getattr(value.op, "name", "") == "prim.if_then_else":
        other = _strip_cast(value.args[2])
        if not isinstance(other, prim.FloatImm | prim.IntImm) or other.value != 0:
            return None
        value, zero_padded = _strip_cast(value.args[1]), True
    if not isinstance(value, ir_expr.TensorLoad):
        return None
    extents = [int(iv.dom.extent) for iv in block.iter_vars]
    return _Copy(body.buffer, value.source, ivars, extents, list(value.indices), zero_padded)


def _mac_operands(block: s_tir.SBlock) -> tuple[object, object] | None:
    """The two loads ``a, b`` when the block is ``out[i] = out[i] + a * b`` with a reduction."""
    body = block.body
    if not isinstance(body, tirx.BufferStore) or all(
        iv.iter_type != _REDUCE for iv in block.iter_vars
    ):
        return None
    value = _strip_cast(body.value)
    if not isinstance(value, prim.Add):
        return None
    acc, prod = _strip_cast(value.a), _strip_cast(value.b)
    if not _is_load_of(acc, body.buffer):
        acc, prod = prod, acc
    if not _is_load_of(acc, body.buffer) or not isinstance(prod, prim.Mul):
        return None
    a, b = _strip_cast(prod.a), _strip_cast(prod.b)
    if not isinstance(a, ir_expr.TensorLoad) or not isinstance(b, ir_expr.TensorLoad):
        return None
    if a.source.same_as(b.source) and all(
        x.same_as(y) for x, y in zip(a.indices, b.indices, strict=True)
    ):
        return None  # a square (x*x), not a product of two operands
    return a, b


def _as_mac(block: s_tir.SBlock, index: dict, copies: dict) -> MacBlock | None:
    loads = _mac_operands(block)
    if loads is None or block.body.buffer not in index:
        return None
    try:
        return _describe_mac(block, block.body, loads, index, copies)
    except _NotAffine:
        return None


def _is_load_of(e: object, buffer: object) -> bool:
    return isinstance(e, ir_expr.TensorLoad) and e.source.same_as(buffer)


# -- affine forms ------------------------------------------------------------------


def _describe_mac(block, store, loads, index, copies) -> MacBlock:
    dims: list[tuple[str, int]] = []
    reduction: set[str] = set()
    env: dict[object, _Lin] = {}
    splits = _split_factors(block, [store.indices, *(ld.indices for ld in loads)])
    for iv in block.iter_vars:
        name, extent = _dim_name(iv.var.name), int(iv.dom.extent)
        factor = splits.get(iv.var)
        if factor:
            outer, inner = f"{name}_o", f"{name}_i"
            parts = [(outer, extent // factor), (inner, factor)]
            env[iv.var] = {outer: factor, inner: 1}
        else:
            parts = [(name, extent)]
            env[iv.var] = {name: 1}
        dims += parts
        if iv.iter_type == _REDUCE:
            reduction.update(d for d, _ in parts)
    extents = dict(dims)
    output = Access(index[store.buffer], _project(store.indices, env, extents))
    operands = tuple(_operand(ld, env, extents, index, copies) for ld in loads)
    if any(op is None for op in operands):
        raise _NotAffine
    ordered = sorted(operands, key=lambda acc: acc.param)  # operands in argument order
    return MacBlock(block.name_hint, tuple(dims), frozenset(reduction), output, tuple(ordered))


def _dim_name(var_name: str) -> str:
    return var_name.removeprefix("v_") or var_name


def _operand(load, env, extents, index, copies) -> Access | None:
    indices = [_linear(i, env, extents) for i in load.indices]
    buffer, padding = load.source, None
    while buffer not in index:
        copy = copies.get(buffer)
        if copy is None:
            return None
        inner = dict(zip(copy.ivars, indices, strict=True))
        src_shape = [int(s) for s in copy.src.ty.shape]
        new = [_linear(i, inner, extents) for i in copy.indices]
        if copy.zero_padded:
            padding = _declared_padding(copy, src_shape)
        indices, buffer = new, copy.src
    projection = tuple(_to_affine(lin) for lin in indices)
    return Access(index[buffer], projection, padding)


def _declared_padding(copy: _Copy, src_shape: list[int]) -> tuple[tuple[int, int], ...]:
    """(before, after) per axis of a pad block ``dst[v] = src[v - before]``."""
    pads = []
    for axis, expr in enumerate(copy.indices):
        env = {v: {f"a{k}": 1} for k, v in enumerate(copy.ivars)}
        lin = _linear(expr, env, {f"a{k}": e for k, e in enumerate(copy.extents)})
        before = -lin.get("", 0)
        pads.append((before, copy.extents[axis] - src_shape[axis] - before))
    return tuple(pads)


def _copy_map(copy: _Copy, index: dict) -> CopyMap | None:
    env = {v: {f"a{k}": 1} for k, v in enumerate(copy.ivars)}
    extents = {f"a{k}": e for k, e in enumerate(copy.extents)}
    try:
        lins = [_linear(i, env, extents) for i in copy.indices]
    except _NotAffine:
        return None
    return CopyMap(index[copy.src], tuple(_to_affine(lin) for lin in lins))


def _project(indices, env, extents) -> tuple[AffineExpr, ...]:
    return tuple(_to_affine(_linear(i, env, extents)) for i in indices)


def _to_affine(lin: _Lin) -> AffineExpr:
    return AffineExpr.of({d: c for d, c in lin.items() if d}, lin.get("", 0))


def _split_factors(block, index_lists) -> dict[object, int]:
    """Iter vars used as ``v // c`` or ``v % c`` with c dividing the extent: split by c."""
    extents = {iv.var: int(iv.dom.extent) for iv in block.iter_vars}
    found: dict[object, int] = {}

    def visit(node: object) -> None:
        if (
            isinstance(node.a, ir_expr.Var)
            and node.a in extents
            and isinstance(node.b, prim.IntImm)
        ):
            c, extent = int(node.b), extents[node.a]
            if 1 < c < extent and extent % c == 0:
                found.setdefault(node.a, c)

    for indices in index_lists:
        for expr in indices:
            tvm_ffi.structural_walk(expr, [(prim.FloorDiv, visit), (prim.FloorMod, visit)])
    return found


def _linear(e: object, env: dict, extents: dict[str, int]) -> _Lin:
    """``e`` as {dim: coeff, "": const}, or _NotAffine."""
    if isinstance(e, prim.IntImm):
        return {"": int(e.value)}
    if isinstance(e, prim.Cast):
        return _linear(e.value, env, extents)
    if isinstance(e, ir_expr.Var):
        if e in env:
            return dict(env[e])
        raise _NotAffine(str(e))
    if isinstance(e, prim.Add | prim.Sub):
        a, b = _linear(e.a, env, extents), _linear(e.b, env, extents)
        sign = 1 if isinstance(e, prim.Add) else -1
        for k, v in b.items():
            a[k] = a.get(k, 0) + sign * v
        return {k: v for k, v in a.items() if v or k == ""}
    if isinstance(e, prim.Mul):
        a, b = _linear(e.a, env, extents), _linear(e.b, env, extents)
        if set(b) <= {""}:
            a, b = b, a
        if not set(a) <= {""}:
            raise _NotAffine(str(e))
        c = a.get("", 0)
        return {k: c * v for k, v in b.items() if c * v or k == ""}
    if isinstance(e, prim.FloorDiv | prim.FloorMod) and isinstance(e.b, prim.IntImm):
        return _div_mod(_linear(e.a, env, extents), int(e.b), extents, isinstance(e, prim.FloorDiv))
    raise _NotAffine(type(e).__name__)


def _div_mod(lin: _Lin, c: int, extents: dict[str, int], div: bool) -> _Lin:
    """``lin // c`` or ``lin % c`` when the part not divisible by c stays within [0, c)."""
    if c <= 0:
        raise _NotAffine("division by a non-positive constant")
    quotient: _Lin = {}
    rest: _Lin = {}
    q0, r0 = divmod(lin.get("", 0), c)
    quotient[""], rest[""] = q0, r0
    for d, k in lin.items():
        if d == "":
            continue
        if k % c == 0:
            quotient[d] = k // c
        else:
            rest[d] = k
    lo = rest[""] + sum(min(0, k * (extents[d] - 1)) for d, k in rest.items() if d)
    hi = rest[""] + sum(max(0, k * (extents[d] - 1)) for d, k in rest.items() if d)
    if lo < 0 or hi >= c:
        raise _NotAffine("floordiv/floormod that does not separate")
    return quotient if div else rest
