"""A quick warm start for CP-SAT: the best few of some random points, each improved one dim
at a time.

CP-SAT's first solutions on a large mapspace can be poor; a hint that is
already good lets its time go into improving and bounding. Coordinate descent
over the mapspace (re-tile one dim, or re-order one level, keep the best) is
cheap with the analytical model and deterministic for a seed.
"""

from __future__ import annotations

import random

from compiler.mapping import Mapping
from passes.mapspace import MapSpace, Slot
from passes.search import (
    SearchOptions,
    SearchResult,
    SolverReport,
    rank_key,
    score_point,
    within_cap,
)

START_SAMPLES = 300
STARTS = 3
EVALUATIONS_PER_START = 2500
SMALL_SPACE = 20_000


def warm_start(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """A good point to hint CP-SAT with, or None (none found, or the space is so small
    that CP-SAT does better alone)."""
    if space.size <= SMALL_SPACE:
        return None
    rng = random.Random(options.seed)
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    starts: dict[tuple, SearchResult] = {}
    for _ in range(START_SAMPLES):
        factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
        orders = tuple(rng.choice(c) for c in space.order_candidates)
        point = _score(space, factors, orders, cap)
        if point is not None:
            starts[_key(factors, orders)] = point
    ranked = sorted(starts.items(), key=lambda kv: rank_key(kv[1].cost, options.objective))
    best = None
    for _, result in ranked[:STARTS]:
        found = _descend(space, result, options, cap)
        if best is None or rank_key(found.cost, options.objective) < rank_key(
            best.cost, options.objective
        ):
            best = found
    return best


def _descend(
    space: MapSpace, start: SearchResult, options: SearchOptions, cap: int | None
) -> SearchResult:
    """Coordinate descent: re-tile one dim (or re-order one level) at a time, keep the best."""
    factors, orders = decode(space, start.mapping)
    best = start
    evaluations = 0
    improved = True
    while improved and evaluations < EVALUATIONS_PER_START:
        improved = False
        moves = [("dim", d) for d in space.dims] + [
            ("order", i) for i, c in enumerate(space.order_candidates) if len(c) > 1
        ]
        for kind, what in moves:
            if kind == "dim":
                options_ = [({**factors, what: t}, orders) for t in space.factor_tuples[what]]
            else:
                options_ = [
                    (factors, (*orders[:what], o, *orders[what + 1 :]))
                    for o in space.order_candidates[what]
                ]
            for f, o in options_:
                point = _score(space, f, o, cap)
                evaluations += 1
                if point is not None and rank_key(point.cost, options.objective) < rank_key(
                    best.cost, options.objective
                ):
                    best, factors, orders, improved = point, f, o, True
    return best


def _score(space: MapSpace, factors: dict, orders: tuple, cap: int | None) -> SearchResult | None:
    if not space.spatial_fits(factors):
        return None
    mapping = space.mapping(factors, orders)
    cost = score_point(space, mapping)
    if cost is None or not within_cap(cost, cap):
        return None
    return SearchResult(mapping, cost, _REPORT)


def _key(factors: dict, orders: tuple) -> tuple:
    return (tuple(sorted(factors.items())), orders)


_REPORT = SolverReport("warm-start", "FEASIBLE", 0.0, 0.0, 1.0, 0.0)


def decode(space: MapSpace, mapping: Mapping) -> tuple[dict, tuple]:
    """The mapspace point of a mapping (factors per slot, order per level)."""
    at: dict[Slot, int] = {}
    orders = []
    for i, lvl in enumerate(mapping.levels):
        for lp in lvl.temporal:
            at[Slot(lp.dim, i, None)] = lp.factor
        for lp in lvl.spatial:
            at[Slot(lp.dim, i, lp.axis)] = lp.factor
        placed = [lp.dim for lp in lvl.temporal]
        candidates = space.order_candidates[i]
        # Random points may use any permutation; start from the closest candidate.
        orders.append(
            next((c for c in candidates if [d for d in c if d in placed] == placed), candidates[0])
        )
    factors = {d: tuple(at.get(s, 1) for s in space.slots[d]) for d in space.dims}
    return factors, tuple(orders)
