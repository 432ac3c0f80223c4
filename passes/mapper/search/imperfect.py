"""Imperfect factors: improve a layer's best perfect mapping with loops that need not
divide their dim (docs/cost-model.md, "Imperfect factors").

A point keeps the mapspace's slots and orders; a dim's tuple may now be any
factors whose first slot runs ``ceil(extent / the others)`` times. Starting from
the perfect-space optimum (certified by CP-SAT and the proof), first-improvement
descent re-shares an array axis between two dims, re-sets one slot (or two of a
dim together) and re-orders levels, scored by the exact cost model; random kicks
restart it while the budget lasts. The best point is kept only if it ranks
better, so the result is never worse than the perfect optimum. The descent
certifies nothing itself: ``map_layer`` proves its result where CP-SAT over
residual tiles covers the layer or the energy meets the imperfect bound.

Only factors that change an iteration count are tried: for a temporal slot, with
the other slots fixed, the dim's outermost count is ``ceil(R / f)``; of the
factors giving one count the smallest is kept (smaller tiles, fewer idle points),
about ``2 sqrt(R)`` of them (``candidate_factors``). The budget is counted in
evaluations, not seconds: the same inputs give the same mapping on any machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from functools import lru_cache

from joule.passes.mapper.mapspace.space import MapSpace, canonical_tuple
from joule.passes.mapper.outcome import (
    SearchOptions,
    SearchResult,
    rank_key,
    score_point,
    within_cap,
)
from joule.passes.mapper.search.local_search import decode

EVALUATIONS_PER_SECOND = 1000  # of the per-layer time limit: about as long as the perfect solve
PAIR_WIDTH = 6  # second-slot values tried around the product-keeping one
MAX_KICKS = 50  # restarts of the descent from a random move of the best point
TEMPORAL_VALUES = 24  # values of a temporal slot tried per pass, nearest the current first

Factors = dict[str, tuple[int, ...]]
Orders = tuple[tuple[str, ...], ...]


@lru_cache(maxsize=4096)
def candidate_factors(remaining: int, limit: int) -> tuple[int, ...]:
    """Factors of one slot worth trying when the rest of the dim needs ``remaining``
    more iterations: the smallest factor per count ``ceil(remaining / f)``, up to
    ``limit`` (the fan-out of a spatial slot)."""
    out = set()
    root = math.isqrt(remaining)
    for f in range(1, min(limit, root + 1) + 1):
        out.add(f)
    for n in range(1, root + 2):
        f = -(-remaining // n)
        if f <= limit:
            out.add(f)
    return tuple(sorted(out))


def refine_imperfect(space: MapSpace, start: SearchResult, options: SearchOptions) -> SearchResult:
    """The best point an iterated descent over imperfect factors reaches from ``start``.

    A descent stops where no single move helps; some better points need two dims
    to move at once. So, while budget remains, a random move (seeded: the same
    inputs give the same result) kicks the best point and a new descent starts
    there; the best of all descents is kept."""
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    budget = Budget(max(200, round(EVALUATIONS_PER_SECOND * options.time_limit_s)))
    factors, orders = decode(space, start.mapping)
    best, factors, orders = _descend(space, start, factors, orders, options, cap, budget)
    rng = random.Random(options.seed)
    kicks = 0
    while budget.left() and kicks < MAX_KICKS:
        kicks += 1
        moves = [*_axis_moves(space, factors, orders), *_slot_moves(space, factors, orders)]
        if not moves:
            break
        f, o = rng.choice(moves)
        budget.spend()
        mapping = space.mapping(f, o)
        cost = score_point(space, mapping)
        if cost is None or not within_cap(cost, cap):
            continue
        found, f, o = _descend(
            space, SearchResult(mapping, cost, start.report), f, o, options, cap, budget
        )
        if rank_key(found.cost, options.objective) < rank_key(best.cost, options.objective):
            best, factors, orders = found, f, o
    return dataclasses.replace(best, report=start.report)


class Budget:
    """Evaluations left to the search (counted, not timed: results do not depend on load)."""

    def __init__(self, evaluations: int) -> None:
        self.remaining = evaluations

    def spend(self) -> None:
        self.remaining -= 1

    def left(self) -> bool:
        return self.remaining > 0


def _descend(
    space: MapSpace,
    point: SearchResult,
    factors: Factors,
    orders: Orders,
    options: SearchOptions,
    cap: int | None,
    budget: Budget,
) -> tuple[SearchResult, Factors, Orders]:
    """First-improvement descent over the move classes, cheap ones first (axis
    shares, one slot, orders, then the many two-slot moves), until a round of all
    classes improves nothing."""
    improved = True
    while improved and budget.left():
        improved = False
        for moves in (_axis_moves, _slot_moves, _order_moves, _pair_moves):
            # Scan a class from the current point; after an improvement, rescan that
            # class from the new point before going on to the next.
            again = True
            while again and budget.left():
                again = False
                for f, o in moves(space, factors, orders):
                    budget.spend()
                    mapping = space.mapping(f, o)
                    cost = score_point(space, mapping)
                    if cost is not None and within_cap(cost, cap):
                        if rank_key(cost, options.objective) < rank_key(
                            point.cost, options.objective
                        ):
                            point = SearchResult(mapping, cost, point.report)
                            factors, orders = f, o
                            improved = again = True
                            break
                    if not budget.left():
                        break
    return point, factors, orders


def _tuple(space: MapSpace, dim: str, factors: tuple[int, ...]) -> tuple[int, ...] | None:
    """``factors`` made canonical, or None when a slot's factor exceeds its limit."""
    tuple_ = canonical_tuple(space.extents[dim], factors)
    slots = space.slots[dim]
    if any(f > space.slot_limit(s) for f, s in zip(tuple_, slots, strict=True)):
        return None
    return tuple_


def _with(space: MapSpace, factors: Factors, dim: str, inner: tuple[int, ...]) -> Factors | None:
    """The point with ``dim``'s inner factors re-set, if it is a new valid one."""
    tuple_ = _tuple(space, dim, (1, *inner))
    if tuple_ is None or tuple_ == factors[dim]:
        return None
    moved = {**factors, dim: tuple_}
    return moved if space.spatial_fits(moved) else None


def _slot_moves(space: MapSpace, factors: Factors, orders: Orders):  # noqa: ANN202
    """Re-set one inner slot of one dim: spatial slots first (each value up to the
    fan-out, largest first: the array's share), then temporal ones, nearest values
    to the current factor first (a tile grows or shrinks a little)."""
    spatial, temporal = [], []
    for d in space.dims:
        for k, slot in enumerate(space.slots[d]):
            if k:
                (temporal if slot.axis is None else spatial).append((d, k))
    for d, k in spatial + temporal:
        slot = space.slots[d][k]
        inner = factors[d][1:]
        rest = math.prod(inner) // inner[k - 1]
        remaining = -(-space.extents[d] // rest)
        values = candidate_factors(remaining, space.slot_limit(slot))
        now = inner[k - 1]
        if slot.axis is None:
            ranked = sorted(values, key=lambda v: abs(math.log(v / now)))[:TEMPORAL_VALUES]
        else:
            ranked = sorted(values, reverse=True)
        for v in ranked:
            moved = _with(space, factors, d, (*inner[: k - 1], v, *inner[k:]))
            if moved is not None:
                yield moved, orders


def _pair_moves(space: MapSpace, factors: Factors, orders: Orders):  # noqa: ANN202
    """Re-set two inner slots of one dim at once, the second keeping their product
    (grow the array's share, shrink a buffer's): one slot alone often cannot, since
    a bigger tile overflows a buffer."""
    for d in space.dims:
        slots = space.slots[d]
        inner = factors[d][1:]
        n = len(inner)
        for a in range(n):
            for b in range(n):
                if a == b:
                    continue
                rest = math.prod(inner) // (inner[a] * inner[b])
                remaining = -(-space.extents[d] // rest)
                keep = inner[a] * inner[b]
                for va in candidate_factors(remaining, space.slot_limit(slots[a + 1])):
                    if va == inner[a]:
                        continue
                    centre = max(1, round(keep / va))
                    for vb in range(max(1, centre - PAIR_WIDTH // 2), centre + PAIR_WIDTH // 2 + 1):
                        if vb > space.slot_limit(slots[b + 1]):
                            break
                        new = list(inner)
                        new[a], new[b] = va, vb
                        moved = _with(space, factors, d, tuple(new))
                        if moved is not None:
                            yield moved, orders


def _axis_moves(space: MapSpace, factors: Factors, orders: Orders):  # noqa: ANN202
    """Share one array axis between two dims anew (``a x b`` filling it): the move
    that turns a 10-of-12 perfect split into 12 of 12 with residuals."""
    spatial: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for d in space.dims:
        for k, slot in enumerate(space.slots[d]):
            if slot.axis is not None:
                spatial.setdefault((slot.level, slot.axis), []).append((d, k))
    for (level, axis), members in spatial.items():
        fx, fy = space.fanout[level]
        size = fx if axis == "X" else fy
        for (d1, k1), (d2, k2) in itertools.combinations(members, 2):
            if d1 == d2:
                continue
            for a in range(1, size + 1):
                b = size // a
                for t1 in _rebalanced(space, factors, d1, k1, a):
                    one = {**factors, d1: t1}
                    for t2 in _rebalanced(space, one, d2, k2, b):
                        both = {**one, d2: t2}
                        if space.spatial_fits(both):
                            yield both, orders


def _rebalanced(space: MapSpace, factors: Factors, dim: str, k: int, value: int):  # noqa: ANN202
    """``dim``'s tuples with slot ``k`` set to ``value`` and one temporal slot scaled the
    other way, so the dim's tiles keep about their size (a buffer that was full stays
    within capacity)."""
    old = factors[dim]
    slots = space.slots[dim]
    base = list(old)
    base[k] = value
    seen = set()
    tries = [tuple(base)]
    for j, slot in enumerate(slots):
        if j == 0 or j == k or slot.axis is not None or old[j] == 1:
            continue
        centre = max(1, round(old[j] * old[k] / value))
        for w in (centre - 1, centre, centre + 1):
            if w >= 1:
                tries.append(tuple(w if i == j else f for i, f in enumerate(base)))
    for proposal in tries:
        tuple_ = _tuple(space, dim, proposal)
        if tuple_ is not None and tuple_ not in seen:
            seen.add(tuple_)
            yield tuple_


def _order_moves(space: MapSpace, factors: Factors, orders: Orders):  # noqa: ANN202
    for i, candidates in enumerate(space.order_candidates):
        for o in candidates:
            if o != orders[i]:
                yield factors, (*orders[:i], o, *orders[i + 1 :])
