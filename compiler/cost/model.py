"""The analytical energy/latency model: exact access counts for one mapped loop nest.

Semantics (Timeloop v0.4's, written down in docs/cost-model.md): tiles are
boxes, fills are consecutive-tile deltas per instance (stationarity and halo
reuse both fall out), multicast reads serve children that need identical data once,
outputs are read-modify-written with the first write of each word free, and
spatial reduction merges partial sums in the network. The reference simulator
in the tests walks the loops and must agree exactly.
"""

from __future__ import annotations

import copy
import math

from joule.cost.identity_memo import by_identity
from joule.cost.nest import (
    FlatNest,
    axis_terms,
    box_extents,
    fills_per_instance,
    flatten,
    link_lines,
    linked_words,
)
from joule.cost.residual import ResidualNest, ragged
from joule.cost.result import AccessCounts, CostResult
from joule.cost.terms import cost_terms, keepers_of
from joule.cost.validate import check_structure, check_tiles
from joule.ir.loopnest import LoopNest, Tensor
from joule.mapping import Mapping
from joule.targets.spec import Target


def evaluate(nest: LoopNest, target: Target, mapping: Mapping) -> CostResult:
    """Score ``mapping`` of ``nest`` on ``target``; raises MappingError if it is invalid."""
    check_structure(nest, target, mapping)
    return score(nest, target, flatten(mapping, tuple(lvl.name for lvl in target.levels)))


_COLUMN = {"read": 0, "fill": 1, "update": 2, "network": 3, "link": 4}


def score(nest: LoopNest, target: Target, flat: FlatNest, check: bool = True) -> CostResult:
    """Counts, energy and cycles of a flattened mapping (whose structure is valid).

    With ``check``, tiles that overflow a buffer raise MappingError first.
    """
    macs = nest.macs
    terms = cost_terms(nest, target)
    blocks = ScalarBlocks(nest, flat, terms.keepers, target)
    if check:
        check_tiles(nest, target, blocks.tiles)
    # Per level and role: reads, fills, updates, network words, link words (None: no
    # such term), pJ.
    rows: list[dict[str, list]] = [{} for _ in target.levels]
    for term, count in terms.evaluate(blocks):
        row = rows[term.level].get(term.tensor.role)
        if row is None:
            row = rows[term.level][term.tensor.role] = [0, 0, 0, None, None, 0.0]
        row[_COLUMN[term.kind]] = count
        row[5] += count * term.energy_pj
    accesses: dict[str, dict[str, AccessCounts]] = {}
    network: dict[str, dict[str, int]] = {}
    links: dict[str, dict[str, int]] = {}
    breakdown: dict[str, dict[str, float]] = {}
    energy = 0.0
    for lvl, by_role in zip(target.levels, rows, strict=True):
        accesses[lvl.name] = {role: AccessCounts(r[0], r[1], r[2]) for role, r in by_role.items()}
        network[lvl.name] = {role: r[3] for role, r in by_role.items() if r[3] is not None}
        links[lvl.name] = {role: r[4] for role, r in by_role.items() if r[4]}
        breakdown[lvl.name] = {role: r[5] for role, r in by_role.items()}
        for r in by_role.values():
            energy += r[5]
    mac_energy = macs * target.mac_energy_pj
    energy += mac_energy

    if blocks.residual is None:
        compute = math.prod(lp.factor for lp in flat.loops if not lp.spatial)
    else:
        compute = blocks.residual.compute_cycles()
    cycles, bottleneck = compute, "compute"
    for index, lvl in enumerate(target.levels):
        if lvl.bandwidth_words_per_cycle is None:
            continue
        # Read and write ports are separate (as in Timeloop): the busier one limits.
        level_counts = accesses[lvl.name].values()
        reads = sum(c.reads for c in level_counts)
        writes = sum(c.fills + c.updates for c in level_counts)
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
        link_words={name: roles for name, roles in links.items() if roles},
        cycles=cycles,
        compute_cycles=compute,
        utilization=macs / (cycles * target.pes),
        lower_bound_pj=lower_bound_pj(nest, target),
        pes=target.pes,
        bottleneck=bottleneck,
        tile_words=blocks.tiles,
    )


class ScalarBlocks:
    """The building blocks of ``joule.cost.terms`` for one mapping, as plain integers.

    Perfect factors use the closed forms of ``joule.cost.nest``; a mapping with
    residual tiles counts them with ``joule.cost.residual``."""

    def __init__(
        self, nest: LoopNest, flat: FlatNest, keepers: dict[str, tuple[int, ...]], target: Target
    ) -> None:
        self.nest = nest
        self.flat = flat
        self.target = target
        extents = nest.extents
        self.residual = ResidualNest(flat, extents) if ragged(flat, extents) else None
        self.collapsed: frozenset[int] = frozenset()
        self.extents: dict[tuple[int, str], list[int]] = {}
        self.tiles: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
        self._fills: dict[tuple[str, int], int] = {}
        self._first: dict[tuple[str, int], int] = {}
        for tensor in nest.tensors:
            terms = axis_terms(tensor)
            for i in keepers[tensor.role]:
                reach = (
                    flat.inside_reach[i] if self.residual is None else self.residual.held_reach(i)
                )
                box = box_extents(terms, reach)
                self.extents[(i, tensor.role)] = box
                self.tiles[target.levels[i].name][tensor.role] = math.prod(box)

    def macs(self) -> int:
        return self.nest.macs

    def fills(self, tensor: Tensor, level: int) -> int:
        key = (tensor.role, level)
        hit = self._fills.get(key)
        if hit is None:
            if self.residual is not None:
                hit = self.residual.fills(
                    axis_terms(tensor), tensor.relevant_dims, level, self.collapsed
                )
            else:
                per_instance = fills_per_instance(
                    axis_terms(tensor), self.extents[(level, tensor.role)], self.flat.outer[level]
                )
                hit = per_instance * self.flat.instances_above(level)
            self._fills[key] = hit
        return hit

    def first(self, tensor: Tensor, level: int) -> int:
        """Every loop counts but the spatial ones above the level (they pick the
        instance); output projections are injective, so this is a product of counts."""
        key = (tensor.role, level)
        if key not in self._first:
            if self.residual is not None:
                self._first[key] = self.residual.first(tensor.relevant_dims, level)
                return self._first[key]
            relevant = tensor.relevant_dims
            above = self.flat.boundary[level]
            count = 1
            for pos, lp in enumerate(self.flat.loops):
                if lp.dim in relevant and not (lp.spatial and pos < above):
                    count *= lp.factor
            self._first[key] = count * self.flat.instances_above(level)
        return self._first[key]

    def shared(self, tensor: Tensor, outer: int, inner: int) -> int:
        relevant = tensor.relevant_dims
        return math.prod(
            lp.factor
            for lp in self.flat.loops
            if lp.spatial and outer <= lp.level < inner and lp.dim not in relevant
        )

    def grouped(self, tensor: Tensor, outer: int, inner: int) -> ScalarBlocks | None:
        """With residual tiles: these blocks with the group's children counted once."""
        if self.residual is None:
            return None
        relevant = tensor.relevant_dims
        view = copy.copy(self)
        view.collapsed = frozenset(
            pos
            for pos, lp in enumerate(self.flat.loops)
            if lp.spatial and outer <= lp.level < inner and lp.dim not in relevant
        )
        view._fills = {}
        return view

    def links(self, tensor: Tensor, level: int) -> int:
        links = self.target.levels[level - 1].network.links
        assert links is not None  # the terms ask only where the fan-out links
        if self.residual is not None:
            return self.residual.linked(axis_terms(tensor), level, links.axis, self.collapsed)
        extents = self.extents[(level, tensor.role)]
        return linked_words(axis_terms(tensor), extents, self.flat, level, links.axis)

    def lines(self, tensor: Tensor, level: int) -> int:
        links = self.target.levels[level - 1].network.links
        assert links is not None
        if self.residual is not None:
            return self.residual.lines(level, links.axis)
        return link_lines(self.flat, level, links.axis)

    def plus(self, a: int, b: int) -> int:
        return a + b

    def minus(self, a: int, b: int) -> int:
        return a - b

    def divide(self, a: int, b: int) -> int:
        return a // b

    def times(self, k: int, a: int) -> int:
        return k * a


ENUMERATE_LIMIT = 2**20


@by_identity(maxsize=4096)
def lower_bound_pj(nest: LoopNest, target: Target) -> float:
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
        keepers = keepers_of(target)[tensor.role]
        words = distinct_words(nest, tensor)
        inner = target.levels[keepers[-1]]
        if tensor.role == "output":
            role = tensor.role
            energy += macs * inner.update_pj_of(role)
            energy += max(0, macs - words * inner.instances) * inner.read_pj_of(role)
            energy += sum(words * target.levels[i].update_pj_of(role) for i in keepers[:-1])
        else:
            role = tensor.role
            energy += macs * inner.read_pj_of(role)
            energy += sum(words * target.levels[i].read_pj_of(role) for i in keepers[:-1])
            energy += sum(words * target.levels[i].write_pj_of(role) for i in keepers if i > 0)
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
