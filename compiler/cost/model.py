"""The analytical energy/latency model: exact access counts for one mapped loop nest.

Semantics (Timeloop v0.4's, written down in docs/cost-model.md): tiles are
boxes, fills are consecutive-tile deltas per instance (stationarity and halo
reuse both fall out), multicast reads serve children that need identical data once,
outputs are read-modify-written with the first write of each word free, and
spatial reduction merges partial sums in the network. The reference simulator
in the tests walks the loops and must agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from joule.cost.nest import FlatNest, axis_terms, box_extents, fills_per_instance, flatten
from joule.cost.result import AccessCounts, CostResult
from joule.cost.validate import check_structure, check_tiles
from joule.errors import TargetError
from joule.ir.loopnest import LoopNest, Tensor
from joule.mapping import Mapping
from joule.targets.spec import Target


def evaluate(nest: LoopNest, target: Target, mapping: Mapping) -> CostResult:
    """Score ``mapping`` of ``nest`` on ``target``; raises MappingError if it is invalid."""
    check_structure(nest, target, mapping)
    return score(nest, target, flatten(mapping, tuple(lvl.name for lvl in target.levels)))


def score(nest: LoopNest, target: Target, flat: FlatNest, check: bool = True) -> CostResult:
    """Counts, energy and cycles of a flattened mapping (whose structure is valid).

    With ``check``, tiles that overflow a buffer raise MappingError first.
    """
    macs = nest.macs
    plan = _plan(target)
    extents: dict[tuple[int, str], list[int]] = {}
    tiles: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
    for tensor in nest.tensors:
        terms = axis_terms(tensor)
        for i in plan.keepers.get(tensor.role, ()):
            box = box_extents(terms, flat.inside_reach[i])
            extents[(i, tensor.role)] = box
            tiles[target.levels[i].name][tensor.role] = math.prod(box)
    if check:
        check_tiles(nest, target, tiles)
    accesses: dict[str, dict[str, AccessCounts]] = {lvl.name: {} for lvl in target.levels}
    network: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
    for tensor in nest.tensors:
        _count_tensor(nest, target, plan, flat, tensor, extents, accesses, network)

    breakdown: dict[str, dict[str, float]] = {}
    energy = 0.0
    for lvl in target.levels:
        per_role: dict[str, float] = {}
        for role, counts in accesses[lvl.name].items():
            pj = counts.reads * lvl.read_pj + counts.fills * lvl.write_pj
            pj += counts.updates * lvl.update_pj
            pj += network[lvl.name].get(role, 0) * lvl.network.hop_energy_pj
            per_role[role] = pj
            energy += pj
        breakdown[lvl.name] = per_role
    mac_energy = macs * target.mac_energy_pj
    energy += mac_energy

    compute = math.prod(lp.factor for lp in flat.loops if not lp.spatial)
    cycles, bottleneck = compute, "compute"
    for index, lvl in enumerate(target.levels):
        if lvl.bandwidth_words_per_cycle is None:
            continue
        # Read and write ports are separate (as in Timeloop): the busier one limits.
        counts = accesses[lvl.name].values()
        reads = sum(c.reads for c in counts)
        writes = sum(c.fills + c.updates for c in counts)
        per_instance = max(reads, writes) / flat.instances_above(index)
        level_cycles = math.ceil(per_instance / lvl.bandwidth_words_per_cycle)
        if level_cycles > cycles:
            cycles, bottleneck = level_cycles, lvl.name
    return CostResult(
        macs=macs,
        energy_pj=energy,
        mac_energy_pj=mac_energy,
        energy_breakdown_pj=breakdown,
        accesses=accesses,
        network_words=network,
        cycles=cycles,
        compute_cycles=compute,
        utilization=macs / (cycles * target.pes),
        lower_bound_pj=lower_bound_pj(nest, target),
        pes=target.pes,
        bottleneck=bottleneck,
        tile_words=tiles,
    )


@dataclass(frozen=True)
class _Plan:
    """What the model needs of a target, derived once per target object."""

    keepers: dict[str, tuple[int, ...]]  # role -> levels keeping it, outermost first
    multicast: dict[tuple[int, int], bool]  # (parent, child) -> every fan-out between can
    reduction: dict[tuple[int, int], bool]


_PLANS: dict[int, tuple[Target, _Plan]] = {}


def _plan(target: Target) -> _Plan:
    hit = _PLANS.get(id(target))
    if hit is not None and hit[0] is target:
        return hit[1]
    keepers = {
        role: tuple(i for i, lvl in enumerate(target.levels) if role in lvl.keeps)
        for role in ("input", "weight", "output")
    }
    for role, levels in keepers.items():
        if not levels or levels[0] != 0:
            raise TargetError(
                f"the outermost level of target {target.name!r} does not keep the {role}",
                where=target.source_file or target.name,
                hint="the outermost level (DRAM) must keep every tensor",
            )
    n = len(target.levels)
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    plan = _Plan(
        keepers,
        {p: networks_support(target, *p, "multicast") for p in pairs},
        {p: networks_support(target, *p, "spatial_reduction") for p in pairs},
    )
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[id(target)] = (target, plan)
    return plan


def _count_tensor(
    nest: LoopNest,
    target: Target,
    plan: _Plan,
    flat: FlatNest,
    tensor: Tensor,
    extents: dict[tuple[int, str], list[int]],
    accesses: dict[str, dict[str, AccessCounts]],
    network: dict[str, dict[str, int]],
) -> None:
    terms = axis_terms(tensor)
    keepers = plan.keepers[tensor.role]
    fills_inst = {
        i: fills_per_instance(terms, extents[(i, tensor.role)], flat.outer[i]) for i in keepers
    }
    relevant = {d for axis in terms for d, _ in axis}
    for k, i in enumerate(keepers):
        child = keepers[k + 1] if k + 1 < len(keepers) else None
        inst = flat.instances_above(i)
        name = target.levels[i].name
        if tensor.role == "output":
            first = _distinct_per_instance(flat, i, relevant) * inst
            fills = 0 if k == 0 else fills_inst[i] * inst - first
            if child is None:
                updates = nest.macs
            else:
                drained = fills_inst[child] * flat.instances_above(child)
                reduce = plan.reduction[(i, child)]
                merged = math.prod(
                    lp.factor for lp in flat.spatial_between(i, child) if lp.dim not in relevant
                )
                updates = drained // merged if reduce else drained
                child_fills = fills_inst[child] * flat.instances_above(child)
                network[name][tensor.role] = (
                    drained + child_fills - _first_child(flat, child, relevant)
                )
            accesses[name][tensor.role] = AccessCounts(updates - first, fills, updates)
        else:
            fills = 0 if k == 0 else fills_inst[i] * inst
            if child is None:
                reads = nest.macs
            else:
                child_fills = fills_inst[child] * flat.instances_above(child)
                if plan.multicast[(i, child)]:
                    # Timeloop multicasts identical data only: children that differ
                    # in dims irrelevant to the tensor; overlapping windows are not merged.
                    shared = math.prod(
                        lp.factor for lp in flat.spatial_between(i, child) if lp.dim not in relevant
                    )
                    reads = child_fills // shared
                else:
                    reads = child_fills
                network[name][tensor.role] = child_fills
            accesses[name][tensor.role] = AccessCounts(reads, fills, 0)


def networks_support(target: Target, outer: int, inner: int, feature: str) -> bool:
    """Whether every fan-out between two levels supports ``feature``."""
    return all(
        getattr(target.levels[j].network, feature)
        for j in range(outer, inner)
        if target.fanout(j) != (1, 1)
    )


def _distinct_per_instance(flat: FlatNest, level: int, relevant: set[str]) -> int:
    """Distinct words of a tensor one instance of ``level`` ever touches.

    Every loop counts except the spatial ones above the level (they pick the
    instance); output projections are injective, so this is a product of counts.
    """
    above = flat.boundary[level]
    count = 1
    for pos, lp in enumerate(flat.loops):
        if lp.dim in relevant and not (lp.spatial and pos < above):
            count *= lp.factor
    return count


def _first_child(flat: FlatNest, child: int, relevant: set[str]) -> int:
    return _distinct_per_instance(flat, child, relevant) * flat.instances_above(child)


ENUMERATE_LIMIT = 2**20
_BOUNDS: dict[tuple[int, int], tuple[LoopNest, Target, float]] = {}


def lower_bound_pj(nest: LoopNest, target: Target) -> float:
    """The compulsory bound, memoised by object identity (hashing a nest costs more than
    scoring a mapping; searches score thousands of mappings of one nest)."""
    key = (id(nest), id(target))
    hit = _BOUNDS.get(key)
    if hit is not None and hit[0] is nest and hit[1] is target:
        return hit[2]
    if len(_BOUNDS) > 4096:
        _BOUNDS.clear()
    value = _lower_bound_pj(nest, target)
    _BOUNDS[key] = (nest, target, value)
    return value


def _lower_bound_pj(nest: LoopNest, target: Target) -> float:
    """Compulsory energy: what every mapping pays, whatever its tiling and order.

    Every distinct word of a tensor passes through every level that keeps it:
    it is filled into each keeper below DRAM and read out of each keeper that
    has a keeper below it, at least once (outputs: updated in each keeper above
    the innermost at least once). Every MAC reads its operands from the
    innermost keeper and updates its output there; all but the first update of
    each word an instance holds also read it, and an instance holds at most all
    the output words, so at least ``MACs - words x instances`` reads remain.
    Plus the MACs themselves.
    """
    macs = nest.macs
    energy = macs * target.mac_energy_pj
    for tensor in nest.tensors:
        keepers = [i for i, lvl in enumerate(target.levels) if tensor.role in lvl.keeps]
        words = distinct_words(nest, tensor)
        inner = target.levels[keepers[-1]]
        if tensor.role == "output":
            energy += macs * inner.update_pj
            energy += max(0, macs - words * inner.instances) * inner.read_pj
            energy += sum(words * target.levels[i].update_pj for i in keepers[:-1])
        else:
            energy += macs * inner.read_pj
            energy += sum(words * target.levels[i].read_pj for i in keepers[:-1])
            energy += sum(words * target.levels[i].write_pj for i in keepers if i > 0)
    return energy


def distinct_words(nest: LoopNest, tensor: Tensor) -> int:
    """Distinct elements the loop nest touches, or fewer: it feeds a lower bound.

    Exact when no dim spans two axes and each multi-dim axis has at most 2^20
    index combinations to enumerate; otherwise an axis counts its largest
    single-dim range, which never over-counts.
    """
    extents = nest.extents
    counts = []
    for axis in tensor.projection:
        ranges = [extents[d] for d, _ in axis.terms]
        if len(ranges) <= 1:
            counts.append(ranges[0] if ranges else 1)
        elif math.prod(ranges) <= ENUMERATE_LIMIT:
            values = {0}
            for d, c in axis.terms:
                values = {v + c * i for v in values for i in range(extents[d])}
            counts.append(len(values))
        else:
            counts.append(max(ranges))
    dims_per_axis = [set(axis.dims) for axis in tensor.projection]
    if sum(len(s) for s in dims_per_axis) == len(set().union(*dims_per_axis)):
        return math.prod(counts)
    return max(counts)
