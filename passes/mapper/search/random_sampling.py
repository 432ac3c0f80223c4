"""The random mapper: Timeloop-like uniform sampling, the baseline CP-SAT must beat.

Like Timeloop's random search it draws a factorisation of every dim and an
arbitrary permutation of the loops at every level (not only the stationarity
orders the exact mappers enumerate, which dominate them).
"""

from __future__ import annotations

import random
import time

from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import (
    SearchOptions,
    SearchResult,
    SolverReport,
    objective_value,
    rank_key,
    score_point,
    within_cap,
)


def solve_random(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """Best of ``options.samples`` valid random points (seeded: same inputs, same answer).

    Invalid draws (tiles that do not fit, fan-outs exceeded) do not count as
    samples; sampling stops after ``20 x samples`` draws in all.
    """
    rng = random.Random(options.seed)
    start = time.perf_counter()
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    tuples = [space.factor_tuples[d] for d in space.dims]
    if not all(tuples):  # some dim cannot be factored over its slots: nothing to sample
        return None
    free = [len(c) > 1 for c in space.order_candidates]
    best = None
    valid = draws = 0
    while valid < options.samples and draws < 20 * options.samples:
        draws += 1
        factors = {d: rng.choice(t) for d, t in zip(space.dims, tuples, strict=True)}
        if not space.spatial_fits(factors):
            continue
        orders = tuple(
            tuple(rng.sample(c[0], len(c[0]))) if shuffle else c[0]
            for c, shuffle in zip(space.order_candidates, free, strict=True)
        )
        mapping = space.mapping(factors, orders)
        cost = score_point(space, mapping)
        if cost is None:
            continue
        valid += 1
        if within_cap(cost, cap) and (
            best is None or rank_key(cost, options.objective) < rank_key(best[1], options.objective)
        ):
            best = (mapping, cost)
    if best is None:
        return None
    value = objective_value(best[1], options.objective)
    # Sampling proves nothing; map_layer adds the space's energy bound.
    report = SolverReport(
        "random",
        "FEASIBLE",
        value,
        0.0,
        1.0,
        time.perf_counter() - start,
        valid,
    )
    return SearchResult(best[0], best[1], report)
