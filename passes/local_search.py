"""A quick warm start for CP-SAT: the best of a few random points, improved one dim at a time.

CP-SAT's first solutions on a large mapspace can be poor; a hint that is
already good lets its time go into improving and bounding. Coordinate descent
over the mapspace (re-tile one dim, or re-order one level, keep the best) is
cheap with the analytical model and deterministic for a seed.
"""

from __future__ import annotations

from compiler.mapping import Mapping
from passes.mapspace import MapSpace, Slot
from passes.random_search import solve_random
from passes.search import SearchOptions, SearchResult, rank_key, score_point, within_cap

START_SAMPLES = 200
MAX_EVALUATIONS = 4000
SMALL_SPACE = 20_000


def warm_start(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """A good point to hint CP-SAT with, or None (none found, or the space is so small
    that CP-SAT does better alone)."""
    if space.size <= SMALL_SPACE:
        return None
    start = solve_random(space, SearchOptions(
        options.objective, options.max_cycles, options.min_utilization,
        samples=START_SAMPLES, seed=options.seed))
    if start is None:
        return None
    factors, orders = decode(space, start.mapping)
    mapping = space.mapping(factors, orders)
    cost = score_point(space, mapping)
    best = start if cost is None else SearchResult(mapping, cost, start.report)
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    evaluations = 0
    improved = True
    while improved and evaluations < MAX_EVALUATIONS:
        improved = False
        candidates = [
            ({**factors, d: t}, orders) for d in space.dims for t in space.factor_tuples[d]
        ] + [
            (factors, (*orders[:i], o, *orders[i + 1:]))
            for i, choices in enumerate(space.order_candidates) for o in choices
        ]
        for f, o in candidates:
            if evaluations >= MAX_EVALUATIONS:
                break
            if not space.spatial_fits(f):
                continue
            mapping = space.mapping(f, o)
            cost = score_point(space, mapping)
            evaluations += 1
            if cost is None or not within_cap(cost, cap):
                continue
            if rank_key(cost, options.objective) < rank_key(best.cost, options.objective):
                best = SearchResult(mapping, cost, best.report)
                factors, orders = f, o
                improved = True
    return best


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
        orders.append(next((c for c in candidates if [d for d in c if d in placed] == placed),
                           candidates[0]))
    factors = {d: tuple(at.get(s, 1) for s in space.slots[d]) for d in space.dims}
    return factors, tuple(orders)
