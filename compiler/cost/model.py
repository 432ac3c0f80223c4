"""The analytical energy/latency model: exact access counts for one mapped loop nest.

Semantics (Timeloop v0.4's, written down in docs/cost-model.md): tiles are
boxes, fills are consecutive-tile deltas per instance (stationarity and halo
reuse both fall out), multicast reads serve the union of the children's tiles,
outputs are read-modify-written with the first write of each word free, and
spatial reduction merges partial sums in the network. The reference simulator
in the tests walks the loops and must agree exactly.
"""

from __future__ import annotations

import functools
import math

from compiler.cost.nest import FlatNest, axis_terms, box_extents, fills_per_instance, flatten
from compiler.cost.result import AccessCounts, CostResult
from compiler.cost.validate import check_capacity, check_structure
from compiler.errors import TargetError
from compiler.ir.loopnest import LoopNest, Tensor
from compiler.mapping import Mapping
from targets.spec import Target


def evaluate(nest: LoopNest, target: Target, mapping: Mapping) -> CostResult:
    """Score ``mapping`` of ``nest`` on ``target``; raises MappingError if it is invalid."""
    check_structure(nest, target, mapping)
    flat = flatten(mapping, tuple(lvl.name for lvl in target.levels))
    tiles = check_capacity(nest, target, flat)
    return score(nest, target, flat, tiles)


def score(
    nest: LoopNest, target: Target, flat: FlatNest, tiles: dict[str, dict[str, int]]
) -> CostResult:
    """Counts, energy and cycles of an already validated, flattened mapping."""
    macs = nest.macs
    accesses: dict[str, dict[str, AccessCounts]] = {lvl.name: {} for lvl in target.levels}
    network: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
    for tensor in nest.tensors:
        _count_tensor(nest, target, flat, tensor, accesses, network)

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


def _count_tensor(
    nest: LoopNest,
    target: Target,
    flat: FlatNest,
    tensor: Tensor,
    accesses: dict[str, dict[str, AccessCounts]],
    network: dict[str, dict[str, int]],
) -> None:
    terms = axis_terms(tensor)
    keepers = [i for i, lvl in enumerate(target.levels) if tensor.role in lvl.keeps]
    if not keepers or keepers[0] != 0:
        raise TargetError(
            f"the outermost level of target {target.name!r} does not keep the {tensor.role}",
            where=target.source_file or target.name,
            hint="the outermost level (DRAM) must keep every tensor",
        )
    fills_inst = {}
    for i in keepers:
        extents = box_extents(terms, flat.reach(flat.inside(i)))
        fills_inst[i] = fills_per_instance(terms, extents, flat.outer_temporal(i))
    relevant = tensor.relevant_dims
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
                reduce = _networks(target, i, child, "spatial_reduction")
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
                if _networks(target, i, child, "multicast"):
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


def _networks(target: Target, outer: int, inner: int, feature: str) -> bool:
    """Whether every fan-out between two levels supports ``feature``."""
    return all(
        getattr(target.levels[j].network, feature)
        for j in range(outer, inner)
        if target.fanout(j) != (1, 1)
    )


def _distinct_per_instance(flat: FlatNest, level: int, relevant: frozenset[str]) -> int:
    """Distinct words of a tensor one instance of ``level`` ever touches.

    Every loop counts except the spatial ones above the level (they pick the
    instance); output projections are injective, so this is a product of counts.
    """
    above = flat.boundary[level]
    return math.prod(
        lp.factor
        for pos, lp in enumerate(flat.loops)
        if lp.dim in relevant and not (lp.spatial and pos < above)
    )


def _first_child(flat: FlatNest, child: int, relevant: frozenset[str]) -> int:
    return _distinct_per_instance(flat, child, relevant) * flat.instances_above(child)


@functools.lru_cache(maxsize=1024)
def lower_bound_pj(nest: LoopNest, target: Target) -> float:
    """Compulsory energy: each tensor word crosses DRAM once, each MAC touches the innermost level.

    Inputs and weights are read from DRAM once per distinct word touched and
    outputs updated once; every MAC reads its operands from, and updates its
    output in, the innermost level that keeps each; plus the MACs themselves.
    """
    dram = target.levels[0]
    energy = nest.macs * target.mac_energy_pj
    for tensor in nest.tensors:
        innermost = max(i for i, lvl in enumerate(target.levels) if tensor.role in lvl.keeps)
        inner = target.levels[innermost]
        per_mac = inner.update_pj if tensor.role == "output" else inner.read_pj
        energy += nest.macs * per_mac
        if innermost != 0:
            per_word = dram.update_pj if tensor.role == "output" else dram.read_pj
            energy += _distinct_words(nest, tensor) * per_word
    return energy


def _distinct_words(nest: LoopNest, tensor: Tensor) -> int:
    """Distinct elements the loop nest touches (exact when no dim spans two axes)."""
    extents = nest.extents
    counts = []
    for axis in tensor.projection:
        values = {0}
        for d, c in axis.terms:
            values = {v + c * i for v in values for i in range(extents[d])}
        counts.append(len(values))
    dims_per_axis = [set(axis.dims) for axis in tensor.projection]
    if sum(len(s) for s in dims_per_axis) == len(set().union(*dims_per_axis)):
        return math.prod(counts)
    return max(counts)
