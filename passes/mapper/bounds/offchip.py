"""The off-chip bound: what the outermost level (DRAM) must serve, given its own loops.

How often an on-chip copy of a tensor is reloaded depends on the loops at the
outermost level: once per iteration of every loop the tensor does not depend
on, except the innermost run of such loops (its stationarity). Whatever the
order, the innermost looping dim is relevant to some tensors, and those get no
run at all: they are reloaded once per iteration of *every* irrelevant outer
loop. And the tiles the level below holds are boxes of everything inside the
outer loops, which must fit its capacity: a strided layer that keeps whole
rows on chip pays for the rows the stride skips. So, over every factorisation
of the dims at the outermost level, every choice of the innermost looping dim
``d`` and subject to the capacity of the level below::

    reads_t   >= words_t x R_t        (tiles that slide or sit deeper: distinct words)
    reads_t   =  box_t x P_t x R_t    (the next level keeps t in one instance and
                                       t's axes each follow one dim)
    updates_o >= words_o x R_o        (outputs: one drain per reload of partial sums)

with ``R_t`` the product of ``t``-irrelevant outer factors when ``d`` is relevant
to ``t``, else 1, and ``P_t`` the product of its relevant outer factors. A run
over an outer loop keeps every word one outer iteration uses on chip, in the
first level below that keeps the tensor: when they cannot fit there (in all
its instances), ``R_t`` is the full product whatever ``d``. This
holds for any loop order (the random mapper's permutations included). The
minimum is a certified bound on the outermost level's energy
(docs/cost-model.md, "Lower bounds").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from joule.cost.model import distinct_words
from joule.cost.terms import cost_terms, keepers_of
from joule.ir.loopnest import Tensor
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.proof.vector_model import within_capacity

MAX_TILINGS = 400_000  # outer factorisations enumerated at once (numpy, a few MB)


def offchip_bound_pj(space: MapSpace, imperfect: bool = False) -> float | None:
    """The least energy the outermost level can spend serving the levels below; None
    when the space is too large to enumerate (the caller keeps its other bounds)."""
    table = offchip_table(space, imperfect)
    return None if table is None else float(table.energy.min(initial=math.inf))


@dataclass(frozen=True)
class OffchipTable:
    """Per factorisation of the outermost level's loops, the least energy it can spend."""

    dims: list[str]  # the dims with a loop at the outermost level
    choices: list[list[int]]  # per dim, its possible outer factors (ascending)
    energy: np.ndarray  # indexed by each dim's position in its choices (inf: infeasible)


@functools.lru_cache(maxsize=8)  # the energy bound, the proof and the mapper's report share it
def offchip_table(space: MapSpace, imperfect: bool = False) -> OffchipTable | None:
    """The bound per outer factorisation; None when there are too many to enumerate, or
    when instances fed by the outermost level forward words to each other (inter-PE
    links), which this table does not bound.

    ``imperfect``: over residual tiles too (then only its minimum is used). An outer
    loop runs ``N = ceil(e / T)`` times over tiles of ``T >= e / N``, and every count
    below holds with the inner extent ``e / N``: reloads are the outer iterations; a
    dim's tiles sum to ``e``, so the exact box total is the same linear sum; the first,
    full tiles are at least that large. The table takes every count some tile gives,
    grouped into ranges ``[lo, hi]`` when there are too many: an entry bounds every
    count in its range (reloads at ``lo``; tiles, capacities and box totals at ``hi``,
    where they are least), looser but still a bound."""
    nest = space.nest
    if any(t.kind == "link" and t.level == 0 for t in cost_terms(nest, space.target).terms):
        return None
    dims = [d for d in space.dims if any(s.level == 0 and s.axis is None for s in space.slots[d])]
    if imperfect:
        ranges = _count_ranges([_residual_counts(space.extents[d]) for d in dims])
    else:
        outer = [sorted({t[_outer_slot(space, d)] for t in space.factor_tuples[d]}) for d in dims]
        ranges = [[(f, f) for f in c] for c in outer]
    if ranges is None or math.prod(len(r) for r in ranges) > MAX_TILINGS:
        return None
    size = math.prod(len(r) for r in ranges)
    ones = np.ones(size)
    lo, hi = ({}, {})
    for end, grid in ((0, lo), (1, hi)):
        axes = [np.array([r[end] for r in rs], dtype=np.float64) for rs in ranges]
        grids = np.meshgrid(*axes, indexing="ij")
        grid.update({d: g.ravel() for d, g in zip(dims, grids, strict=True)})
    inner = {d: nest.extents[d] / hi.get(d, ones) for d in nest.dim_names}
    feasible = _fits_below(space, inner, size)
    looping_none = np.ones(size, dtype=bool)
    for d in dims:
        looping_none &= lo[d] == 1
    # Nothing loops outside: every tensor is loaded once.
    full = {t.role: _irrelevant_product(t, dims, lo, ones) for t in nest.tensors}
    resident = {t.role: _stays_on_chip(space, t, inner, size) for t in nest.tensors}
    cases = [(None, looping_none)] + [(d, hi[d] > 1) for d in dims]
    best = np.full(size, np.inf)
    for innermost, where in cases:
        energy = np.zeros(size)
        for tensor in nest.tensors:
            reloads = full[tensor.role]
            if innermost is None or innermost not in tensor.relevant_dims:
                reloads = np.where(resident[tensor.role], 1.0, reloads)
            energy += _tensor_energy(space, tensor, reloads, hi, inner, ones)
        best = np.minimum(best, np.where(where & feasible, energy, np.inf))
    shape = tuple(len(r) for r in ranges)
    choices = [[r[0] for r in rs] for rs in ranges]
    return OffchipTable(dims, choices, best.reshape(shape))


def _irrelevant_product(
    tensor: Tensor, dims: list[str], f0: dict[str, np.ndarray], ones: np.ndarray
) -> np.ndarray:
    product = np.ones_like(ones)
    for d in dims:
        if d not in tensor.relevant_dims:
            product = product * f0[d]
    return product


def _stays_on_chip(
    space: MapSpace, tensor: Tensor, inner: dict[str, np.ndarray], size: int
) -> np.ndarray:
    """Whether the words of ``tensor`` one outer iteration uses can fit in the first level
    below that keeps it (all its instances): counted low, so only a sure overflow says no."""
    keepers = keepers_of(space.target)[tensor.role]
    if len(keepers) < 2:
        return np.ones(size, dtype=bool)
    level = space.target.levels[keepers[1]]
    cap_bits = level.capacity_bits_for(tensor.role) or level.capacity_bits()
    if cap_bits is None:
        return np.ones(size, dtype=bool)
    cap = cap_bits / level.bits_of(tensor.role)
    counts = [
        np.maximum.reduce([inner[d] for d in axis.dims]) if axis.dims else np.ones(size)
        for axis in tensor.projection
    ]
    dims_per_axis = [set(axis.dims) for axis in tensor.projection]
    disjoint = sum(len(a) for a in dims_per_axis) == len(set().union(*dims_per_axis))
    words = np.prod(counts, axis=0) if disjoint else np.maximum.reduce(counts)
    return words <= cap * level.instances


def _residual_counts(extent: int) -> list[int]:
    """Every count ``ceil(extent / T)`` a tile ``T`` gives: about ``2 sqrt(extent)``."""
    return sorted({-(-extent // tile) for tile in range(1, extent + 1)})


def _count_ranges(counts: list[list[int]]) -> list[list[tuple[int, int]]] | None:
    """Each dim's counts as ranges ``(lo, hi)``, neighbours merged pairwise (the dim with
    the most ranges first) until the grid has at most MAX_TILINGS entries; the count 1
    (no outer loop) stays alone. None if that cannot get there."""
    ranges = [[(c, c) for c in cs] for cs in counts]
    while math.prod(len(r) for r in ranges) > MAX_TILINGS:
        k = max(range(len(ranges)), key=lambda i: len(ranges[i]))
        r = ranges[k]
        if len(r) <= 2:
            return None
        ranges[k] = [r[0]] + [(r[i][0], r[min(i + 1, len(r) - 1)][1]) for i in range(1, len(r), 2)]
    return ranges


def _outer_slot(space: MapSpace, dim: str) -> int:
    return next(k for k, s in enumerate(space.slots[dim]) if s.level == 0 and s.axis is None)


def _tensor_energy(
    space: MapSpace,
    tensor: Tensor,
    reloads: np.ndarray,
    f0: dict[str, np.ndarray],
    inner: dict[str, np.ndarray],
    ones: np.ndarray,
) -> np.ndarray:
    """The outermost level's energy serving ``tensor``, at least (0 if nothing keeps it below)."""
    target = space.target
    keepers = keepers_of(target)[tensor.role]
    if len(keepers) < 2:
        return np.zeros_like(ones)  # read per MAC from the outermost level: in the constant
    outer = target.levels[0]
    relevant = tensor.relevant_dims
    if tensor.role == "output":
        words = math.prod(space.nest.extents[d] for d in relevant)
        updates = words * reloads
        hop = outer.network.hop_energy_pj * updates
        role = tensor.role
        return updates * outer.update_pj_of(role) + (updates - words) * outer.read_pj_of(role) + hop
    if _exact_box(space, tensor, keepers[1]):
        reads = reloads * _box(tensor, inner, len(ones))
        for d in relevant:
            reads = reads * f0.get(d, ones)
    else:
        reads = distinct_words(space.nest, tensor) * reloads
    return reads * (outer.read_pj_of(tensor.role) + outer.network.hop_energy_pj)


def _box(tensor: Tensor, inner: dict[str, np.ndarray], size: int) -> np.ndarray:
    box = np.ones(size)
    for axis in tensor.projection:
        box = box * (sum(abs(c) * (inner[d] - 1) for d, c in axis.terms) + 1)
    return box


def _exact_box(space: MapSpace, tensor: Tensor, child: int) -> bool:
    """Reads are exactly box x tiles x refetches: one instance below, no sliding windows."""
    dims = [d for axis in tensor.projection for d, _ in axis.terms]
    return (
        child == 1
        and space.fanout[0] == (1, 1)
        and all(len(axis.terms) <= 1 for axis in tensor.projection)
        and len(dims) == len(set(dims))  # a dim on one axis: tile sums stay linear in it
    )


def _fits_below(space: MapSpace, inner: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Outer factorisations whose tiles fit the level below (when it is a single instance)."""
    ok = np.ones(size, dtype=bool)
    if len(space.target.levels) < 2 or space.fanout[0] != (1, 1):
        return ok
    level = space.target.levels[1]
    tiles = {t.role: _box(t, inner, size) for t in space.nest.tensors if t.role in level.keeps}
    return within_capacity(level, tiles, size)
