"""The exhaustive mapper: every point of the mapspace, scored by the cost model.

Only for small spaces; it is the check that CP-SAT's optimum is the optimum, and
with ``factors="imperfect"`` the optimum over every imperfect tuple of a small
layer (what the imperfect search is measured against).
"""

from __future__ import annotations

import itertools
import math
import time

from joule.errors import SolverError
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

MAX_POINTS = 5_000_000


def solve_exhaustive(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """The best point, or None when no point is valid."""
    tuples = _tuples(space, options)
    size = math.prod(len(t) for t in tuples.values()) * math.prod(
        len(o) for o in space.order_candidates
    )
    if size > MAX_POINTS:
        raise SolverError(
            f"the mapspace of @{space.nest.name} has {size} points, too many to enumerate",
            hint=f"use --mapper cpsat or random (exhaustive takes at most {MAX_POINTS})",
        )
    start = time.perf_counter()
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    dims = space.dims
    combos = list(space.order_combos())
    best = None
    evaluated = 0
    for choice in itertools.product(*(tuples[d] for d in dims)):
        factors = dict(zip(dims, choice, strict=True))
        if not space.spatial_fits(factors):
            continue
        for orders in combos:
            mapping = space.mapping(factors, orders)
            cost = score_point(space, mapping)
            if cost is None:
                break  # tiles do not depend on the order: no order of these factors fits
            evaluated += 1
            if not within_cap(cost, cap):
                continue
            if best is None or rank_key(cost, options.objective) < rank_key(
                best[1], options.objective
            ):
                best = (mapping, cost)
    if best is None:
        return None
    value = objective_value(best[1], options.objective)
    report = SolverReport(
        "exhaustive", "OPTIMAL", value, value, 0.0, time.perf_counter() - start, evaluated
    )
    return SearchResult(best[0], best[1], report)


def _tuples(space: MapSpace, options: SearchOptions) -> dict[str, list[tuple[int, ...]]]:
    if options.factors != "imperfect":
        return space.factor_tuples
    try:
        return {d: space.imperfect_tuples(d, MAX_POINTS) for d in space.dims}
    except ValueError as err:
        raise SolverError(
            f"@{space.nest.name}: {err}", hint="use --factors imperfect with --mapper cpsat"
        ) from None
