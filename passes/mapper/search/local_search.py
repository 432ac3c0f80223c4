"""A quick warm start for the proof search and CP-SAT: good points from random samples
and from the most promising spatial unrollings, each improved one dim at a time.

CP-SAT's first solutions on a large mapspace can be poor; a hint that is
already good lets its time go into improving and bounding. Coordinate descent
over the mapspace (re-tile one dim, or re-order one level, keep the best) is
cheap with the analytical model and deterministic for a seed. It cannot trade
one unrolled dim for another when the array is full (two dims must change at
once), so further starts fix each of the unrollings with the lowest spatial
bound (:mod:`joule.passes.mapper.bounds.spatial`) and sample only the temporal factors; unrollings
whose bound is no better than the best point found are skipped. How hard it searches
depends on what goes on from its point (:class:`Effort`).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

from joule.mapping import Mapping
from joule.passes.mapper.bounds.spatial import ranked_unrollings
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from joule.passes.mapper.outcome import (
    SearchOptions,
    SearchResult,
    SolverReport,
    rank_key,
    score_point,
    within_cap,
)

START_SAMPLES = 300
FULL_EFFORT_S = 0.5  # below this time limit descents are shortened in proportion
SAMPLES_PER_UNROLLING = 60
SMALL_SPACE = 20_000


@dataclass(frozen=True)
class Effort:
    """How hard the warm start searches: what goes on from its point decides."""

    starts: int  # descents from the best random samples
    evaluations_per_start: int  # at time limits of FULL_EFFORT_S and more
    unrolling_starts_per_second: float  # of the solver time limit: more time, more starts


# Energy: the proof search goes on from the warm start's point and finds the optimum
# from a poor one too, so a quick one is enough. Side by side on the 87 distinct layers
# of the five shared networks (eyeriss, 2 s), this effort and the full one give the same
# energy on every layer and prove 82 and 81 of them, in 54 s and 99 s of compile time.
FOR_PROOF = Effort(starts=1, evaluations_per_start=500, unrolling_starts_per_second=0.5)
# Latency and EDP: CP-SAT alone goes on from the warm start's point.
FOR_CPSAT = Effort(starts=3, evaluations_per_start=2500, unrolling_starts_per_second=2)


def effort(options: SearchOptions) -> Effort:
    return FOR_PROOF if options.objective == "energy" else FOR_CPSAT


def warm_start(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """A good point to start the proof search and CP-SAT from, or None (none found, or
    the space is so small that CP-SAT does better alone)."""
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
    ranked = sorted(starts.values(), key=lambda point: rank_key(point.cost, options.objective))
    best = None
    for result in ranked[: effort(options).starts]:
        best = _better(best, descend(space, result, options, cap), options)
    count = max(1, round(effort(options).unrolling_starts_per_second * options.time_limit_s))
    for entry in (ranked_unrollings(space) or [])[:count]:
        energy = best.cost.energy_pj if best is not None else None
        if options.objective == "energy" and energy is not None and entry.bound >= energy:
            break  # no point with this unrolling (or a later one) can do better
        start = _sample_unrolling(space, entry.factors, rng, cap, options)
        if start is not None:
            best = _better(best, descend(space, start, options, cap), options)
    return best


def _better(best: SearchResult | None, found: SearchResult, options: SearchOptions) -> SearchResult:
    if best is None or rank_key(found.cost, options.objective) < rank_key(
        best.cost, options.objective
    ):
        return found
    return best


def _sample_unrolling(
    space: MapSpace,
    unrolling: dict[Slot, int],
    rng: random.Random,
    cap: int | None,
    options: SearchOptions,
) -> SearchResult | None:
    """The best of some random points whose spatial factors are ``unrolling``'s."""
    choices = {}
    for d in space.dims:
        want = tuple(unrolling[s] for s in space.slots[d] if s.axis is not None)
        choices[d] = space.tuples_by_unrolling[d][want]
    best = None
    for _ in range(SAMPLES_PER_UNROLLING):
        factors = {d: rng.choice(choices[d]) for d in space.dims}
        orders = tuple(rng.choice(c) for c in space.order_candidates)
        point = _score(space, factors, orders, cap)
        if point is not None:
            best = _better(best, point, options)
    return best


def descend(
    space: MapSpace, start: SearchResult, options: SearchOptions, cap: int | None
) -> SearchResult:
    """Coordinate descent: re-tile one dim (or re-order one level) at a time, keep the best.
    Sweeps go on while they improve and fewer than ``limit`` evaluations (less at small
    time limits) are spent; one sweep always finishes unless it reaches the full effort."""
    factors, orders = decode(space, start.mapping)
    best = start
    evaluations = 0
    improved = True
    full = effort(options).evaluations_per_start
    limit = full * min(1.0, options.time_limit_s / FULL_EFFORT_S)
    while improved and evaluations < limit:
        improved = False
        moves = (
            [("dim", d) for d in space.dims]
            + [("order", i) for i, c in enumerate(space.order_candidates) if len(c) > 1]
            + [("pair", pair) for pair in itertools.combinations(space.dims, 2)]
        )
        for kind, what in moves:
            if kind == "dim":
                near = _nearest_first(space.factor_tuples[what], factors[what])
                options_ = [({**factors, what: t}, orders) for t in near]
            elif kind == "pair":
                options_ = [
                    ({**factors, **moved}, orders) for moved in _joint_shifts(space, factors, what)
                ]
            else:
                options_ = [
                    (factors, (*orders[:what], o, *orders[what + 1 :]))
                    for o in space.order_candidates[what]
                ]
            for f, o in options_:
                if evaluations >= full:
                    return best  # a dim with tens of thousands of tilings would overrun
                point = _score(space, f, o, cap)
                evaluations += 1
                if point is not None and rank_key(point.cost, options.objective) < rank_key(
                    best.cost, options.objective
                ):
                    best, factors, orders, improved = point, f, o, True
    return best


def _nearest_first(tuples: list[tuple[int, ...]], current: tuple[int, ...]) -> list:
    """``tuples`` fewest changed slots first: a dim with tens of thousands of tilings is
    cut at the effort's evaluations, and the nearest are the moves a descent is for
    (a depthwise layer's 18 groups at DRAM move onto the array 6 x 3 in two steps)."""
    return sorted(tuples, key=lambda t: sum(a != b for a, b in zip(t, current, strict=True)))


def _joint_shifts(
    space: MapSpace, factors: dict[str, tuple[int, ...]], pair: tuple[str, str]
) -> list[dict[str, tuple[int, ...]]]:
    """Both dims' loops moved between the same two levels at once (a whole factor or one
    prime of it each): e.g. P and Q out to DRAM together, where each alone costs more."""
    shifts = [_shifts(space, d, factors[d]) for d in pair]
    return [
        {pair[0]: a, pair[1]: b}
        for key, moved in shifts[0].items()
        for a in moved
        for b in shifts[1].get(key, ())
    ]


def _shifts(space: MapSpace, dim: str, tuple_: tuple[int, ...]) -> dict[tuple[int, int], list]:
    """Per (from level, to level): the tuples with part of one temporal factor moved."""
    temporal = [k for k, s in enumerate(space.slots[dim]) if s.axis is None]
    out: dict[tuple[int, int], list] = defaultdict(list)
    for src in temporal:
        f = tuple_[src]
        if f == 1:
            continue
        parts = {f} | {p for p in range(2, f) if f % p == 0 and all(p % q for q in range(2, p))}
        for dst in temporal:
            if dst == src:
                continue
            for part in sorted(parts):
                moved = list(tuple_)
                moved[src] //= part
                moved[dst] *= part
                key = (space.slots[dim][src].level, space.slots[dim][dst].level)
                out[key].append(tuple(moved))
    return out


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
