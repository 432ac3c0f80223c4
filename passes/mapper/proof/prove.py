"""Prove a layer's optimum: branch and bound over spatial unrollings, exact enumeration inside.

CP-SAT finds good mappings quickly, but its own bound on these models is weak
and the energy bound (:mod:`joule.passes.mapper.bounds.spatial`) is not tight, so most real layers
end with a gap. Yet every point of the space has exactly one spatial
unrolling, and the bound gives each unrolling a lower bound of its own. So:
take unrollings cheapest bound first; stop when the next one's bound is no
better than the best energy known (nothing left can win: that energy is the
optimum); otherwise enumerate every point with that unrolling (temporal
factors of every dim, every loop order the space distinguishes) with the
vectorised model (:mod:`joule.passes.mapper.proof.vector_model`). Points are built one dim at a
time (:mod:`joule.passes.mapper.proof.partial_points`), and a partial point is dropped as soon as
its tiles overflow a buffer, its off-chip bound is too high, or its *floor*
reaches the best. The floor is exact but for the orders of the outermost
level(s), whose part is raised to the off-chip bound, and with the dims not
joined yet *relaxed*: no temporal loops, their whole extent in every tile. No
completion spends less (tests/test_vector_model.py). A floor call has a fixed
cost, so partial points are floored only in groups of 16 or more with enough
completions below them; full points are floored in batches. Every order is
scored only for full points whose floor beats the best.
When the budget runs out first, the bound proven is the smaller of the best
energy and the bound of the first unrolling not fully enumerated (every point
left lies in it or a later one).

The budget is counted in work units (a point scored or floored under one order, a
partial point built, and a fixed charge per floor call for numpy's overhead), not
seconds: same inputs, same result, on any load.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from joule.passes.mapper.bounds.offchip import offchip_table
from joule.passes.mapper.bounds.spatial import RankedUnrolling, energy_bound_pj, ranked_unrollings
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from joule.passes.mapper.proof.partial_points import Joiner, OffchipFloor
from joule.passes.mapper.proof.vector_model import Batch, Factors, Orders, VectorModel

BATCH = 1 << 16  # points scored per numpy batch
MAX_TAILS = 3  # floors per point: each costs about one scoring
IMPROVEMENT = 1e-12  # relative: a smaller improvement is rounding noise
WORK_PER_SECOND = 2_500_000  # work units per second of --time-limit (about a wall second)
FLOOR_CALL = 4_000  # work units a floor call costs whatever its size (numpy's overhead)
FLOOR_WORTH = 2 * FLOOR_CALL  # partial rows x their completions that repay a floor call
FLOOR_ROWS = 16  # fewer partial rows are left to later joins: one call would floor them all


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
        return search.proof(False, search.space_bound)
    try:
        for entry in ranked:
            if entry.bound >= search.best:
                search.flush()  # points still pending may lower the best
            if entry.bound >= search.best:
                break  # this unrolling and every later one cannot win
            joiner = Joiner(space, _candidates(space, search.model, entry.factors), search.offchip)
            search.expanding = entry.bound
            virtual = _virtual_rows(space, entry.factors)
            for leaf, outer in joiner.leaves(
                search.spend, functools.partial(search.promising, entry, virtual)
            ):
                search.add(entry, leaf, outer)
            search.expanding = math.inf
        search.flush()
    except _OutOfBudget:
        unfinished = min(search.pending_bound, search.expanding)
        return search.proof(False, min(search.best, max(search.space_bound, unfinished)))
    return search.proof(True, search.best)


class _OutOfBudget(Exception):
    pass


class _Search:
    """The incumbent, the work done, and points waiting to be scored in one batch."""

    def __init__(self, space: MapSpace, incumbent_pj: float, budget: int, cap: int | None):
        self.space = space
        self.model = VectorModel(space)
        self.combos = list(space.order_combos())
        # The floor ignores the orders of the `free` outermost levels: one combo per
        # orders of the rest. Enough levels are freed to leave at most MAX_TAILS of those.
        self.free = 1
        while len({combo[self.free :] for combo in self.combos}) > MAX_TAILS:
            self.free += 1
        self.tails = list({combo[self.free :]: combo for combo in self.combos}.values())
        self.best = incumbent_pj
        self.space_bound = min(incumbent_pj, energy_bound_pj(space))  # holds regardless
        self.found: tuple[dict, Orders] | None = None
        table = offchip_table(space)
        self.offchip = None if table is None else OffchipFloor(space, table)
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

    def promising(
        self,
        entry: RankedUnrolling,
        virtual: Factors,
        joined: Callable[[], Factors],
        outer: np.ndarray,
        descendants: int,
    ) -> np.ndarray:
        """Rows of partial points (``joined()``: the dims joined so far) that may still lead
        to a point beating the best: by the unrolling's on-chip bound plus the off-chip
        floor ``outer``, then, where enough points hang below them to repay a floor call
        (each row has up to ``descendants`` completions), by the floor with the other dims
        relaxed. Full points are floored later, in batches (:meth:`flush`)."""
        offchip = np.maximum(entry.offchip, outer)
        keep = entry.onchip + offchip < self.threshold
        rows = np.flatnonzero(keep)
        if descendants <= 1 or rows.size < FLOOR_ROWS or rows.size * descendants < FLOOR_WORTH:
            return keep
        self.spend(FLOOR_CALL + rows.size * len(self.tails))
        factors = joined()
        relaxed = frozenset(d for d in self.space.dims if d not in factors)
        full = {
            d: np.broadcast_to(virtual[d], (rows.size, virtual[d].size))
            if d in relaxed
            else factors[d][rows]
            for d in self.space.dims
        }
        lower = self._floor(Batch(self.model, full, relaxed), offchip[rows])
        keep[rows] = lower < self.threshold
        return keep

    def _floor(self, batch: Batch, offchip: np.ndarray) -> np.ndarray:
        """The least floor over the tails, its outermost part raised to ``offchip``."""
        lower = np.full(batch.n, np.inf)
        for combo in self.tails:
            outermost, rest = batch.floor(combo, self.free)
            lower = np.minimum(lower, rest + np.maximum(outermost, offchip))
        return lower

    def add(self, entry: RankedUnrolling, leaf: Factors, outer: np.ndarray) -> None:
        self.pending.append((leaf, np.maximum(entry.offchip, outer)))
        self.pending_size += len(outer)
        self.pending_bound = min(self.pending_bound, entry.bound)
        if self.pending_size >= BATCH:
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
        offchip = np.concatenate([floor for _, floor in self.pending])
        # Score every order only where the floor (any outermost order) can beat the best.
        self.spend(self.pending_size * len(self.tails))
        keep = self._floor(Batch(self.model, factors), offchip) < self.threshold
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


def _virtual_rows(space: MapSpace, unrolling: dict[Slot, int]) -> Factors:
    """Per dim, the factors a relaxed dim takes: the unrolling's spatial ones, 1 elsewhere
    (its span is then its whole extent in every tile: see ``Batch``'s ``relaxed``)."""
    return {
        d: np.array([unrolling.get(s, 1) if s.axis is not None else 1 for s in space.slots[d]])
        for d in space.dims
    }


def _candidates(
    space: MapSpace, model: VectorModel, unrolling: dict[Slot, int]
) -> list[tuple[str, np.ndarray]]:
    """Per dim, its factor tuples with this unrolling whose tiles fit on their own;
    fewest first, so partial products stay small."""
    out = []
    for d in space.dims:
        key = tuple(unrolling[s] for s in space.slots[d] if s.axis is not None)
        tuples = space.tuples_by_unrolling[d].get(key, [])
        array = np.array(tuples, dtype=np.int64).reshape(len(tuples), len(space.slots[d]))
        out.append((d, array[model.fits({d: array})] if len(array) else array))
    return sorted(out, key=lambda item: len(item[1]))
