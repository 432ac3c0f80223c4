"""Prove a layer's optimum: branch and bound over spatial unrollings, exact enumeration inside.

CP-SAT finds good mappings quickly, but its own bound on these models is weak
and the energy bound (:mod:`passes.bound`) is not tight, so most real layers
end with a gap. Yet every point of the space has exactly one spatial
unrolling, and the bound gives each unrolling a lower bound of its own. So:
take unrollings cheapest bound first; stop when the next one's bound is no
better than the best energy known (nothing left can win: that energy is the
optimum); otherwise enumerate every point with that unrolling (temporal
factors of every dim, every loop order the space distinguishes) with the
vectorised model (:mod:`passes.vector_model`), dropping partial points whose
tiles already overflow a buffer or whose off-chip bound is too high, and
scoring every order only for points whose floor (exact but for the outermost
level's order, whose part is raised to the off-chip bound) beats the best.
When the budget runs out first, the bound proven is the smaller of the best
energy and the bound of the first unrolling not fully enumerated (every point
left lies in it or a later one).

The budget is counted in work units (a point scored under one loop order, or
a partial point built), not seconds: same inputs, same result, on any load.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from passes.bound import RankedUnrolling, energy_bound_pj, ranked_unrollings
from passes.mapspace import MapSpace, Slot
from passes.offchip_bound import OffchipTable, offchip_table
from passes.vector_model import Batch, Factors, Orders, VectorModel

CHUNK = 1 << 16  # points scored per numpy batch
IMPROVEMENT = 1e-12  # relative: a smaller improvement is rounding noise
WORK_PER_SECOND = 1_500_000  # work units per second of --time-limit (about a wall second)


@dataclass(frozen=True)
class Proof:
    """What the enumeration established about a space, given an incumbent energy."""

    factors: dict[str, tuple[int, ...]] | None  # a point cheaper than the incumbent, if found
    orders: Orders | None
    energy_pj: float  # the best energy known (the incumbent's unless a point beat it)
    bound_pj: float  # no point of the space spends less
    complete: bool  # the bound is the best energy: it is the optimum
    work: int


def budget_for(time_limit_s: float) -> int:
    return math.ceil(WORK_PER_SECOND * time_limit_s)


def prove(space: MapSpace, incumbent_pj: float, budget: int, cap: int | None = None) -> Proof:
    """Look for points cheaper than ``incumbent_pj`` (a valid point's energy) within
    ``budget`` work units, unrollings pruned by their bounds; ``cap``: cycles."""
    search = _Search(space, incumbent_pj, budget, cap)
    ranked = ranked_unrollings(space)
    if ranked is None:
        return search.proof(False, search.floor)
    try:
        for entry in ranked:
            if entry.bound >= search.best:
                search.flush()  # points still pending may lower the best
            if entry.bound >= search.best:
                break  # this unrolling and every later one cannot win
            candidates = _candidates(space, search.model, entry.factors)
            search.expanding = entry.bound
            for leaf in _leaves(search, entry, candidates):
                search.add(entry, leaf)
            search.expanding = math.inf
        search.flush()
    except _OutOfBudget:
        unfinished = min(search.pending_bound, search.expanding)
        return search.proof(False, min(search.best, max(search.floor, unfinished)))
    return search.proof(True, search.best)


class _OutOfBudget(Exception):
    pass


class _Search:
    """The incumbent, the work done, and points waiting to be scored in one batch."""

    def __init__(self, space: MapSpace, incumbent_pj: float, budget: int, cap: int | None):
        self.space = space
        self.model = VectorModel(space)
        self.combos = list(space.order_combos())
        # The floor ignores the outermost level's order: one combo per order of the rest.
        self.tails = list({combo[1:]: combo for combo in self.combos}.values())
        self.best = incumbent_pj
        self.floor = min(incumbent_pj, energy_bound_pj(space))
        self.found: tuple[dict, Orders] | None = None
        table = offchip_table(space)
        self.offchip = None if table is None else _OffchipFloor(space, table)
        self.budget = budget
        self.cap = cap
        self.work = 0
        self.pending: list[tuple[Factors, np.ndarray]] = []  # points, off-chip floor
        self.pending_size = 0
        self.pending_bound = math.inf  # the lowest unrolling bound among pending points
        self.expanding = math.inf  # the bound of the unrolling being enumerated, if any

    @property
    def threshold(self) -> float:
        """Below this a point beats the best (smaller gains are rounding noise)."""
        return self.best * (1 - IMPROVEMENT)

    def spend(self, units: int) -> None:
        if self.work + units > self.budget:
            raise _OutOfBudget
        self.work += units

    def add(self, entry: RankedUnrolling, leaf: Factors) -> None:
        outside = np.full(len(next(iter(leaf.values()))), entry.offchip)
        if self.offchip is not None:
            outside = np.maximum(outside, self.offchip.floor(leaf))
        self.pending.append((leaf, outside))
        self.pending_size += len(next(iter(leaf.values())))
        self.pending_bound = min(self.pending_bound, entry.bound)
        if self.pending_size >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        parts = [leaf for leaf, _ in self.pending]
        factors = (
            parts[0]
            if len(parts) == 1
            else {d: np.concatenate([p[d] for p in parts]) for d in parts[0]}
        )
        outside = np.concatenate([floor for _, floor in self.pending])
        # Score every order only where the order-free floor can still beat the best.
        self.spend(self.pending_size * len(self.tails))
        lower = np.full(self.pending_size, np.inf)
        everything = Batch(self.model, factors)
        for combo in self.tails:
            outer, rest = everything.floor(combo)
            lower = np.minimum(lower, rest + np.maximum(outer, outside))
        keep = lower < self.threshold
        factors = {d: v[keep] for d, v in factors.items()}
        self.spend(int(keep.sum()) * len(self.combos))
        batch = Batch(self.model, factors)
        for orders in self.combos if keep.any() else ():
            energy, cycles = batch.evaluate(orders)
            if self.cap is not None:
                energy = np.where(cycles <= self.cap, energy, np.inf)
            k = int(np.argmin(energy))
            if energy[k] < self.threshold:
                self.best = float(energy[k])
                point = {d: tuple(int(f) for f in factors[d][k]) for d in self.space.dims}
                self.found = (point, orders)
        # Only now is every pending point scored: until here their bound still holds.
        self.pending, self.pending_size, self.pending_bound = [], 0, math.inf

    def proof(self, complete: bool, bound: float) -> Proof:
        factors, orders = self.found or (None, None)
        return Proof(factors, orders, self.best, bound, complete, self.work)


def _candidates(
    space: MapSpace, model: VectorModel, unrolling: dict[Slot, int]
) -> list[tuple[str, np.ndarray]]:
    """Per dim, its factor tuples with this unrolling whose tiles fit on their own;
    fewest first, so partial products stay small."""
    out = []
    for d in space.dims:
        key = tuple(unrolling[s] for s in space.slots[d] if s.axis is not None)
        tuples = _by_spatial(space, d).get(key, [])
        array = np.array(tuples, dtype=np.int64).reshape(len(tuples), len(space.slots[d]))
        out.append((d, array[model.fits({d: array})] if len(array) else array))
    return sorted(out, key=lambda item: len(item[1]))


@functools.lru_cache(maxsize=16)
def _by_spatial(space: MapSpace, dim: str) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    spatial = [k for k, s in enumerate(space.slots[dim]) if s.axis is not None]
    groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for factors in space.factor_tuples[dim]:
        groups.setdefault(tuple(factors[k] for k in spatial), []).append(factors)
    return groups


def _leaves(
    search: _Search, entry: RankedUnrolling, candidates: list[tuple[str, np.ndarray]]
) -> Iterator[Factors]:
    """Every combination of the candidates whose tiles fit and that could still beat the
    best, in pieces. Dims join one at a time; a partial point is dropped when its tiles
    already overflow (tiles only grow as dims join) or when the unrolling's on-chip bound
    plus the off-chip bound of its outer factors (least over the dims not yet joined)
    reaches the best. Each partial point built costs a work unit."""
    if any(len(array) == 0 for _, array in candidates):
        return
    yield from _expand(search, entry, {}, candidates, 0)


def _expand(
    search: _Search,
    entry: RankedUnrolling,
    partial: Factors,
    candidates: list[tuple[str, np.ndarray]],
    depth: int,
) -> Iterator[Factors]:
    if depth == len(candidates):
        yield partial
        return
    dim, array = candidates[depth]
    rows = len(next(iter(partial.values()))) if partial else 1
    step = max(1, CHUNK // len(array))
    for start in range(0, rows, step):
        count = min(step, rows - start)
        search.spend(count * len(array))
        grown = {
            d: np.repeat(v[start : start + count], len(array), axis=0) for d, v in partial.items()
        }
        grown[dim] = np.tile(array, (count, 1))
        keep = search.model.fits(grown)
        if search.offchip is not None:
            outer = search.offchip.floor(grown)
            keep &= entry.onchip + np.maximum(entry.offchip, outer) < search.threshold
        if keep.any():
            kept = {d: v[keep] for d, v in grown.items()}
            yield from _expand(search, entry, kept, candidates, depth + 1)


class _OffchipFloor:
    """The off-chip bound of a (partial) point's outer factors: the table of
    :mod:`passes.offchip_bound`, minimised over the dims the point does not fix yet."""

    def __init__(self, space: MapSpace, table: OffchipTable) -> None:
        self.table = table
        self.columns = {d: _outer_column(space, d) for d in table.dims}
        self.choices = {d: np.array(c) for d, c in zip(table.dims, table.choices, strict=True)}
        self.reduced: dict[tuple[str, ...], np.ndarray] = {}

    def _reduced(self, known: tuple[str, ...]) -> np.ndarray:
        if known not in self.reduced:
            free = tuple(a for a, d in enumerate(self.table.dims) if d not in known)
            self.reduced[known] = self.table.energy.min(axis=free) if free else self.table.energy
        return self.reduced[known]

    def floor(self, factors: Factors) -> np.ndarray:
        known = tuple(d for d in self.table.dims if d in factors)
        reduced = self._reduced(known)
        if not known:
            return np.full(len(next(iter(factors.values()))), float(reduced))
        index = tuple(
            np.searchsorted(self.choices[d], factors[d][:, self.columns[d]]) for d in known
        )
        return reduced[index]


def _outer_column(space: MapSpace, dim: str) -> int:
    return next(k for k, s in enumerate(space.slots[dim]) if s.level == 0 and s.axis is None)
