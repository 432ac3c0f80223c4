"""Apply one Joule mapping to one PrimFunc's MAC block with ``tvm.s_tir.Schedule``.

The mapping's loop nest (level 0 temporal, level 0 spatial, level 1 temporal,
...) becomes the block's loop nest: each canonical dim's TIR loop is split
once into its factors in that order (a grouped conv's ``ff`` is first split
into G and K), then one reorder puts every part where the mapping says. Dims of
extent 1 keep their single loop, outermost. Every mapped loop is annotated
``joule.level = <storage level>``; spatial loops also ``joule.spatial =
"X"|"Y"`` (the array axis). Annotations, not ``parallel``: the PE array is
not the CPU's threads, and a parallel reduction loop would be wrong.

Imperfect factors (a dim's outermost loop runs ceil(extent / the others)
times) are split with the nominal factors: their product exceeds the extent,
and TVM guards the block with a ``T.where`` predicate (index < extent), which
is exactly Joule's "points past the extent do not run".
"""

from __future__ import annotations

import tvm_ffi
from joule.cost.validate import canonical_problem
from joule.errors import MappingError
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from tvm import s_tir, tirx

LEVEL_KEY = "joule.level"
SPATIAL_KEY = "joule.spatial"


def apply_mapping(func: tirx.PrimFunc, nest: LoopNest, mapping: Mapping) -> tirx.PrimFunc:
    """``func`` with the MAC block of ``nest`` (attr ``tir.block``) scheduled as ``mapping``."""
    attrs = dict(nest.attrs)
    block_name = attrs.get("tir.block", "")
    where = f"PrimFunc {attrs.get('tir.func', nest.name)}, block {block_name}"
    _check_factors(nest, mapping, where)
    sch = s_tir.Schedule(func)
    try:
        block = sch.get_sblock(block_name)
    except s_tir.ScheduleError as err:
        raise MappingError(f"no block {block_name!r} to schedule", where=where) from err
    base = _dim_loops(sch, block, nest, attrs.get("tir.dims", ""), where)
    parts: dict[str, list[object]] = {}
    for dim, factors in ((d, mapping.factors(d)) for d, _ in nest.dims):
        loop = base.get(dim)
        if loop is None or not factors:
            continue
        parts[dim] = (
            [loop] if len(factors) == 1 else list(sch.split(loop, [int(f) for f in factors]))
        )
    order: list[object] = [base[d] for d, e in nest.dims if d in base and d not in parts]
    used = {d: 0 for d in parts}
    for lvl in mapping.levels:
        for lp in (*lvl.temporal, *lvl.spatial):
            loop = parts[lp.dim][used[lp.dim]]
            used[lp.dim] += 1
            order.append(loop)
            sch.annotate(loop, LEVEL_KEY, lvl.level)
            if lp.axis is not None:
                sch.annotate(loop, SPATIAL_KEY, lp.axis)
    if len(order) > 1:
        sch.reorder(*order)
    return sch.mod["main"]


def _check_factors(nest: LoopNest, mapping: Mapping, where: str) -> None:
    """Every dim's factors divide it, or are imperfect in the canonical form (the
    outermost runs ceil(extent / the others)): anything else is not this nest's mapping."""
    extents = dict(nest.dims)
    mapped = {lp.dim for lvl in mapping.levels for lp in (*lvl.temporal, *lvl.spatial)}
    unknown = sorted(mapped - set(extents))
    if unknown:
        raise MappingError(
            f"the mapping loops over {unknown}, which are not dims of @{nest.name}",
            where=where,
            hint=f"the nest's dims are {[d for d, _ in nest.dims]}",
        )
    for dim, extent in nest.dims:
        problem = canonical_problem(dim, extent, mapping.factors(dim))
        if problem is not None:
            raise MappingError(
                problem,
                where=where,
                hint="give a mapping of this layer: every dim's factors multiply to its "
                "extent, or its outermost loop runs ceil(extent / product of the others) times",
            )


def _dim_loops(
    sch: s_tir.Schedule, block: object, nest: LoopNest, dims_attr: str, where: str
) -> dict[str, object]:
    """Canonical dim -> its (unsplit) loop; a grouped conv's channel loop is split in two."""
    source = dict(pair.split("=", 1) for pair in dims_attr.split())
    realize = _realize(sch.get(block), sch.mod["main"])
    loop_of_var = {}
    for rv in sch.get_loops(block):
        loop_of_var[sch.get(rv).loop_var] = rv
    by_iter: dict[str, object] = {}
    for iv, value in zip(realize.block.iter_vars, realize.iter_values, strict=True):
        loop = loop_of_var.get(value)
        if loop is None:
            raise MappingError(
                f"iter var {iv.var.name} is bound to {value}, not to one loop",
                where=where,
                hint="run the pass right after LegalizeOps (before FuseOps / other schedules)",
            )
        by_iter[iv.var.name.removeprefix("v_")] = loop
    extents = dict(nest.dims)
    loops: dict[str, object] = {}
    halves: dict[str, dict[str, str]] = {}
    for dim, src in source.items():
        if src in ("", "-"):
            continue  # a synthesized dim (depthwise K = 1): no loop
        if src in by_iter:
            loops[dim] = by_iter[src]
        elif src[-2:] in ("_o", "_i") and src[:-2] in by_iter:
            halves.setdefault(src[:-2], {})[src[-1]] = dim
        else:
            raise MappingError(f"dim {dim} names iter var {src!r}, not in the block", where=where)
    for var, pair in halves.items():
        if set(pair) != {"o", "i"}:
            raise MappingError(f"iter var {var} is split but one half is missing", where=where)
        outer, inner = sch.split(by_iter[var], [extents[pair["o"]], extents[pair["i"]]])
        loops[pair["o"]], loops[pair["i"]] = outer, inner
    return loops


def _realize(block: s_tir.SBlock, func: tirx.PrimFunc) -> s_tir.SBlockRealize:
    found: list[s_tir.SBlockRealize] = []

    def visit(node: s_tir.SBlockRealize) -> None:
        if node.block.same_as(block):
            found.append(node)

    tvm_ffi.structural_walk(func.body, [(s_tir.SBlockRealize, visit)], order="pre")
    return found[0]
