"""The energy bound over residual tiles (``imperfect_energy_bound_pj``).

The perfect space's bound does not hold once loops may leave a residual tile:
N = 13 over 4 PEs spends less than it. The imperfect bound takes any spatial
factors and counts only the instance combinations that surely run; no point of
the imperfect space spends less (random points and the exhaustive optimum of
small layers, on every bundled target and the linked ones), and where the
residual search meets it the report says OPTIMAL over residual tiles. Latency's and
EDP's floors (every PE busy every cycle) hold on the same points.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from joule.cost import evaluate
from joule.errors import MappingError, TargetError
from joule.ir.builders import matmul
from joule.mapping import Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds import offchip
from joule.passes.mapper.bounds.offchip import offchip_bound_pj
from joule.passes.mapper.bounds.spatial import (
    _per_unrolling,
    _Running,
    energy_bound_pj,
    imperfect_energy_bound_pj,
)
from joule.passes.mapper.map_layer import map_layer, objective_floor
from joule.passes.mapper.mapspace.space import MapSpace, canonical_tuple
from joule.passes.mapper.outcome import SearchOptions
from joule.targets import load_target
from test_bound import _tight_target
from test_imperfect_search import SMALL, _grid_target
from test_links import _targets as _link_targets
from test_mapper_optimality import random_layer
from test_residual_tiles import BUNDLED, awkward_layer


def _random_point(rng: random.Random, space: MapSpace) -> Mapping | None:
    """A point of the imperfect space: random inner factors per dim (often 1), the
    outermost left running ceil(extent / the others); None if it leaves the space."""
    factors = {}
    for d in space.dims:
        slots = space.slots[d]
        extent = space.extents[d]
        inner = [
            rng.choice([1, rng.randint(1, min(space.slot_limit(s), extent))]) for s in slots[1:]
        ]
        factors[d] = canonical_tuple(extent, (1, *inner))
        if factors[d][0] > space.slot_limit(slots[0]):
            return None
    if not space.spatial_fits(factors):
        return None
    return space.mapping(factors, rng.choice(list(space.order_combos())))


def test_perfect_bound_fails_over_residual_tiles_and_this_one_holds_tight() -> None:
    """On a 4 x 3 grid, N = 13, 7 and 11 spread over 4 PEs only with a residual: the
    exhaustive imperfect optimum is below the perfect space's bound, and equals the
    imperfect bound."""
    target = _grid_target()
    below = 0
    for nest in [*SMALL, matmul("mm11", m=1, n=11, k=7)]:
        nest = drop_unit_dims(nest)
        constraints = space_constraints(nest, target)
        space = MapSpace(nest, target, constraints)
        options = SearchOptions(factors="imperfect")
        best = map_layer(nest, target, constraints, mapper="exhaustive", options=options)
        assert best.report.status == "OPTIMAL"
        bound = imperfect_energy_bound_pj(space)
        assert bound == pytest.approx(best.cost.energy_pj, rel=1e-12)
        below += best.cost.energy_pj < energy_bound_pj(space) * (1 - 1e-9)
    assert below == 3


def test_the_residual_search_is_optimal_where_it_meets_the_bound() -> None:
    """The default mapper on N = 13: residual tiles reach the bound, so the report is
    OPTIMAL over the imperfect space with no gap, the perfect status kept beside it."""
    target = _grid_target()
    nest = drop_unit_dims(matmul("mm13", m=2, n=13, k=5))
    constraints = space_constraints(nest, target)
    result = map_layer(
        nest, target, constraints, options=SearchOptions(factors="imperfect", time_limit_s=0.5)
    )
    report = result.report
    assert report.status == "OPTIMAL" and report.gap == 0.0
    assert report.energy_bound_pj == pytest.approx(result.cost.energy_pj)
    assert report.perfect_status == "OPTIMAL"
    assert report.perfect_objective > report.objective


def test_a_layer_the_bound_does_not_meet_reports_its_gap() -> None:
    target = load_target("eyeriss")
    nest = drop_unit_dims(matmul("mm", m=13, n=29, k=31))
    constraints = space_constraints(nest, target)
    result = map_layer(
        nest, target, constraints, options=SearchOptions(factors="imperfect", time_limit_s=0.3)
    )
    report, energy = result.report, result.cost.energy_pj
    bound = imperfect_energy_bound_pj(MapSpace(nest, target, constraints))
    assert bound < energy * (1 - 1e-6)
    assert report.status == "FEASIBLE"
    assert report.bound == pytest.approx(bound)
    assert report.gap == pytest.approx((energy - bound) / energy)
    assert report.energy_bound_pj == pytest.approx(bound)


def _all_targets() -> dict:
    return {name: load_target(name) for name in BUNDLED} | _link_targets()


@pytest.mark.parametrize("name", [*BUNDLED, "links-x", "links-x-unicast"])
def test_no_random_residual_point_spends_less(name: str) -> None:
    target = _all_targets()[name]
    rng = random.Random(f"imperfect-bound-{name}")
    checked = ragged = 0
    for index in range(20):
        nest = drop_unit_dims(awkward_layer(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        bound = imperfect_energy_bound_pj(space)
        floors = {o: objective_floor(space, SearchOptions(o), bound) for o in ("latency", "edp")}
        for _ in range(80):
            mapping = _random_point(rng, space)
            if mapping is None:
                continue
            try:
                cost = evaluate(nest, target, mapping)
            except MappingError:
                continue  # a tile overflows its buffer
            checked += 1
            ragged += any(
                math.prod(mapping.factors(d)) != e for d, e in nest.extents.items() if e > 1
            )
            assert cost.energy_pj >= bound * (1 - 1e-9), (nest.name, mapping)
            assert cost.cycles >= floors["latency"], (nest.name, mapping)
            assert cost.energy_pj * cost.cycles >= floors["edp"] * (1 - 1e-9), nest.name
    assert checked >= 600 and ragged >= checked // 2


@pytest.mark.parametrize("name", ["eyeriss", "eyeriss-isca16", "links-x"])
def test_no_small_layer_has_an_imperfect_optimum_below_the_bound(name: str) -> None:
    """Against the exhaustive optimum over every imperfect tuple of small layers."""
    target = _all_targets()[name]
    rng = random.Random(f"imperfect-exhaustive-{name}")
    for index in range(3):
        nest = drop_unit_dims(matmul(f"mm{index}", m=1, n=rng.randint(5, 13), k=rng.randint(2, 4)))
        constraints = space_constraints(nest, target)
        options = SearchOptions(factors="imperfect")
        best = map_layer(nest, target, constraints, mapper="exhaustive", options=options)
        bound = imperfect_energy_bound_pj(MapSpace(nest, target, constraints))
        assert best.cost.energy_pj >= bound * (1 - 1e-9), nest.name


def test_fewest_running_combinations_never_overcount() -> None:
    """``_Running.least`` against every index of a dim: two or three spatial slots (with
    temporal loops between them) whose combinations run when some index is below the
    extent."""
    rng = random.Random(7)
    exact = 0
    for _ in range(400):
        factors = [rng.randint(1, 5) for _ in range(rng.randint(3, 5))]
        spatial = sorted(rng.sample(range(len(factors)), rng.randint(2, 3)))
        inner = math.prod(factors[1:])
        extent = rng.randint(max(1, (factors[0] - 1) * inner + 1), factors[0] * inner)
        if math.prod(factors[1:]) >= extent:
            continue  # not canonical: the outermost would not run
        steps = [math.prod(factors[k + 1 :]) for k in range(len(factors))]
        runs = {
            tuple(digits[k] for k in spatial)
            for digits in itertools.product(*(range(f) for f in factors))
            if sum(x * s for x, s in zip(digits, steps, strict=True)) < extent
        }
        slot_factors = tuple(factors[k] for k in spatial)
        running = _Running(("d",) * len(spatial), imperfect=True)
        least = running.least(tuple(range(len(spatial))), slot_factors)
        assert least <= len(runs)
        exact += least == len(runs)
    assert exact >= 50  # the count is often exact, not just below


def _imperfect_size(space: MapSpace) -> int:
    return math.prod(len(space.imperfect_tuples(d, 10**6)) for d in space.dims) * math.prod(
        len(o) for o in space.order_candidates
    )


def test_offchip_part_holds_and_raises_the_bound_when_tiles_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buffers small layers overflow (test_bound's tight target): over every imperfect
    tuple the optimum stays above the bound, whose off-chip part (every outer count,
    the inner extent e / N) raises it on some layers; with the counts grouped into
    ranges (a grid too large to enumerate) it stays a bound, never above the exact one."""
    rng = random.Random("tight-imperfect")
    target = _tight_target()
    raised = checked = coarser = 0
    for index in range(40):
        nest = drop_unit_dims(random_layer(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        if _imperfect_size(space) > 14_000:
            continue
        options = SearchOptions(factors="imperfect")
        try:
            best = map_layer(nest, target, space.constraints, mapper="exhaustive", options=options)
        except TargetError:
            continue
        checked += 1
        bound = imperfect_energy_bound_pj(space)
        assert bound <= best.cost.energy_pj * (1 + 1e-12), nest.name
        const, parts = _per_unrolling(space, imperfect=True)
        raised += bound > (const + min(a + b for a, b, _ in parts)) * (1 + 1e-9)
        exact = offchip_bound_pj(space, imperfect=True)
        exact_table = offchip.offchip_table(space, imperfect=True)
        monkeypatch.setattr(offchip, "MAX_TILINGS", 8)
        grouped = offchip.offchip_table.__wrapped__(space, imperfect=True)
        monkeypatch.undo()
        if grouped is not None and exact is not None:
            assert float(grouped.energy.min()) <= exact * (1 + 1e-12)
            coarser += grouped.energy.size < math.prod(len(c) for c in exact_table.choices)
    assert checked >= 10 and raised > 0 and coarser > 0
