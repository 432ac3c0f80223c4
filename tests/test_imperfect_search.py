"""``--factors imperfect``: residual tiles found from the perfect optimum, never worse.

The search starts at the perfect-space optimum and keeps only moves the exact
model ranks better, so on every layer the result is at most the perfect one; on
a layer whose extents do not divide the array it fills the array; it tries only
factors that change an iteration count; and its report says what is certified.
"""

from __future__ import annotations

import math
import random

import pytest
from joule.cost import evaluate
from joule.errors import JouleError
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import ROLES
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import canonical_tuple as canonical
from joule.passes.mapper.outcome import SearchOptions, rank_key
from joule.passes.mapper.search.imperfect import candidate_factors
from joule.targets import load_target
from joule.targets.spec import Network, StorageLevel, Target
from test_residual_tiles import awkward_layer


def _both(nest, target, objective: str, limit: float = 0.5):  # noqa: ANN001, ANN202
    nest = drop_unit_dims(nest)
    constraints = space_constraints(nest, target)
    results = []
    for factors in ("perfect", "imperfect"):
        options = SearchOptions(objective=objective, time_limit_s=limit, factors=factors)
        results.append(map_layer(nest, target, constraints, options=options))
    return nest, results


@pytest.mark.parametrize("objective", ["energy", "edp", "latency"])
def test_never_worse_than_the_perfect_optimum(objective: str) -> None:
    target = load_target("eyeriss-isca16")
    rng = random.Random(objective)
    for index in range(4):
        nest, (perfect, imperfect) = _both(awkward_layer(rng, index), target, objective, 0.2)
        assert rank_key(imperfect.cost, objective) <= rank_key(perfect.cost, objective)
        assert imperfect.cost == evaluate(nest, target, imperfect.mapping)
        report = imperfect.report
        assert report.perfect_objective == pytest.approx(perfect.report.objective)
        assert report.perfect_status == perfect.report.status
        # Proven (gap 0) by CP-SAT over every imperfect tuple or, for energy, by meeting the
        # imperfect space's bound (test_cpsat_residual, test_imperfect_bound); else a gap.
        assert report.status == ("OPTIMAL" if report.gap == 0.0 else "FEASIBLE")
        # Latency and EDP have a floor too: every PE busy every cycle (test_imperfect_bound).
        assert 0 < report.bound <= report.objective


def test_fills_the_array_where_perfect_factors_cannot() -> None:
    """A Llama projection's N = K = 4096 on eyeriss's 14 x 12 array: perfect factors
    use at most 8 x 8 PEs (38 %)."""
    target = load_target("eyeriss")
    nest, (perfect, imperfect) = _both(matmul("mm", m=16, n=4096, k=4096), target, "latency")
    assert perfect.cost.utilization <= 64 / 168 + 1e-9
    assert imperfect.cost.utilization > 0.9
    # Its gap is to the cycles of every PE busy every cycle: about 1 - utilisation.
    assert imperfect.report.gap == pytest.approx(1 - imperfect.cost.utilization, abs=1e-5)
    assert imperfect.cost.macs == nest.macs  # no padded computes
    bound = imperfect.report.energy_bound_pj  # the imperfect space's: above the compulsory one
    assert imperfect.cost.lower_bound_pj < bound <= imperfect.cost.energy_pj


def test_energy_objective_keeps_the_proven_perfect_optimum_as_its_start() -> None:
    target = load_target("eyeriss")
    nest, (perfect, imperfect) = _both(conv2d("c", k=13, c=7, p=7, q=7, r=3, s=3), target, "energy")
    assert perfect.report.status == "OPTIMAL"
    assert imperfect.report.perfect_status == "OPTIMAL"
    assert imperfect.cost.energy_pj <= perfect.cost.energy_pj


@pytest.mark.parametrize("extent", [11008, 32000, 50257])
def test_candidate_factors_are_one_per_iteration_count(extent: int) -> None:
    values = candidate_factors(extent, extent)
    counts = [-(-extent // f) for f in values]
    assert len(set(counts)) == len(counts)  # no two give the same count
    assert set(counts) == {-(-extent // f) for f in range(1, extent + 1)}  # every count
    assert all(f == -(-extent // n) for f, n in zip(values, counts, strict=True))  # smallest
    assert len(values) <= 2 * math.isqrt(extent) + 2


def test_canonical_tuples_put_the_ceiling_first() -> None:
    assert canonical(4096, (1, 14, 3)) == (98, 14, 3)
    assert canonical(12, (7, 3, 4)) == (1, 3, 4)  # perfect: nothing left to cover
    assert canonical(100, (1, 1, 6, 17)) == (1, 1, 6, 17)  # the outermost loop of K is 6
    assert canonical(100, (1, 7, 6, 17)) == (1, 1, 6, 17)  # 7 would run past the residual
    assert canonical(10, (1, 11, 12)) == (1, 1, 10)  # 11 alone overshoots: 12 carries


def test_unknown_factor_space_is_a_clear_error() -> None:
    target = load_target("eyeriss")
    nest = drop_unit_dims(matmul("mm", m=4, n=4, k=4))
    with pytest.raises(JouleError, match="unknown factor space"):
        map_layer(
            nest, target, space_constraints(nest, target), options=SearchOptions(factors="ragged")
        )


def _grid_target() -> Target:
    """DRAM multicasting to a 4 x 3 array whose PEs keep every tensor."""
    return Target(
        "grid",
        "DRAM to 4 x 3 PEs",
        (
            StorageLevel(
                "DRAM",
                frozenset(ROLES),
                network=Network(multicast=True, spatial_reduction=True),
                read_pj=200.0,
                write_pj=200.0,
                update_pj=200.0,
            ),
            StorageLevel(
                "PE",
                frozenset(ROLES),
                instances=12,
                mesh_x=4,
                mesh_y=3,
                capacity_words=24,
                read_pj=1.0,
                write_pj=1.0,
                update_pj=1.0,
            ),
        ),
        mac_energy_pj=1.0,
    )


SMALL = [matmul("mm13", m=2, n=13, k=5), matmul("mm7", m=3, n=7, k=5)]


@pytest.mark.parametrize("objective", ["energy", "latency", "edp"])
def test_exhaustive_imperfect_optimum_bounds_the_search(objective: str) -> None:
    """Over every imperfect tuple of small layers the exhaustive optimum is OPTIMAL and
    never above the search's result nor the perfect optimum; on N = 13 over 4 PEs it
    is strictly below the perfect optimum."""
    target = _grid_target()
    matched = 0
    for nest in SMALL:
        nest = drop_unit_dims(nest)
        constraints = space_constraints(nest, target)
        runs = {}
        for mapper, factors in (
            ("cpsat", "perfect"),
            ("cpsat", "imperfect"),
            ("exhaustive", "imperfect"),
        ):
            options = SearchOptions(objective=objective, time_limit_s=0.5, factors=factors)
            runs[(mapper, factors)] = map_layer(
                nest, target, constraints, mapper=mapper, options=options
            )
        best = runs[("exhaustive", "imperfect")]
        assert best.report.status == "OPTIMAL"
        found = runs[("cpsat", "imperfect")]
        key = lambda r: rank_key(r.cost, objective)  # noqa: E731
        assert key(best) <= key(found) <= key(runs[("cpsat", "perfect")])
        matched += key(best) == key(found)
        if nest.name == "mm13":
            assert key(best) < key(runs[("cpsat", "perfect")])
    assert matched >= 1  # benchmarks: the search finds it on 8 of 9 small cases
