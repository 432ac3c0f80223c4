"""The proof search (passes/prove.py) is exact: from a poor starting point it reaches the
exhaustive optimum and says so, with or without a cycle cap; out of budget it claims only
a bound at or below the optimum; and on a full-size layer where CP-SAT's and the energy
bound's gap is about 9 %, the CP-SAT mapper ends OPTIMAL."""

from __future__ import annotations

import numpy as np
import pytest
from joule.ir.builders import conv2d
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.cpsat.solve import solve_cpsat
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions, score_point
from joule.passes.mapper.proof.prove import prove
from joule.passes.mapper.search.exhaustive import solve_exhaustive
from joule.targets import bundled_targets, load_target

from tests.test_mapper_optimality import small_spaces


def _worst_valid(space: MapSpace) -> float:
    """The energy of a poor but valid point: the worst of the first hundred that fit."""
    worst = 0.0
    for k, orders in enumerate(space.order_combos()):
        for index in range(100):
            factors = {d: t[(index * 7 + k) % len(t)] for d, t in space.factor_tuples.items()}
            if not space.spatial_fits(factors):
                continue
            cost = score_point(space, space.mapping(factors, orders))
            if cost is not None:
                worst = max(worst, cost.energy_pj)
    return worst


@pytest.mark.parametrize("target_name", bundled_targets())
def test_proof_reaches_the_exhaustive_optimum(target_name: str) -> None:
    improved = 0
    for space in small_spaces(target_name)[:12]:
        best = solve_exhaustive(space, SearchOptions())
        start = _worst_valid(space)
        if best is None or start == 0.0:
            continue
        proof = prove(space, start, budget=10**8)
        assert proof.complete, space.nest.name
        assert proof.energy_pj == pytest.approx(best.cost.energy_pj, rel=1e-9), space.nest.name
        assert proof.bound_pj == proof.energy_pj
        if proof.factors is not None:
            improved += 1
            cost = score_point(space, space.mapping(proof.factors, proof.orders))
            assert cost is not None
            assert cost.energy_pj == pytest.approx(proof.energy_pj, rel=1e-9)
    assert improved > 0  # the starting points were beaten, not just confirmed


@pytest.mark.parametrize("target_name", bundled_targets())
def test_floors_of_partial_points_keep_the_optimum(target_name: str, monkeypatch) -> None:  # noqa: ANN001
    """With every group of partial points floored (relaxed dims), not only the large
    ones, the proof still reaches the exhaustive optimum, and those floors do prune."""
    import joule.passes.mapper.proof.prove as prove_module

    monkeypatch.setattr(prove_module, "FLOOR_ROWS", 1)
    monkeypatch.setattr(prove_module, "FLOOR_WORTH", 0)
    pruned = 0
    promising = prove_module._Search.promising

    def counted(self, entry, virtual, factors, outer, descendants):  # noqa: ANN001, ANN202
        nonlocal pruned
        cheap = entry.onchip + np.maximum(entry.offchip, outer) < self.threshold
        keep = promising(self, entry, virtual, factors, outer, descendants)
        pruned += int((cheap & ~keep).sum())
        return keep

    monkeypatch.setattr(prove_module._Search, "promising", counted)
    for space in small_spaces(target_name)[:12]:
        best = solve_exhaustive(space, SearchOptions())
        start = _worst_valid(space)
        if best is None or start == 0.0:
            continue
        # From a poor start, and from just above the optimum (where floors prune most).
        for incumbent in (start, best.cost.energy_pj * 1.001):
            proof = prove(space, incumbent, budget=10**8)
            assert proof.complete, space.nest.name
            optimum = best.cost.energy_pj
            assert proof.energy_pj == pytest.approx(optimum, rel=1e-9), space.nest.name
    assert pruned > 0


def test_proof_respects_a_cycle_cap() -> None:
    """Under a latency cap the proof finds the cheapest mapping that meets it."""
    checked = 0
    for space in small_spaces("eyeriss")[:10]:
        free = solve_exhaustive(space, SearchOptions())
        if free is None or free.cost.cycles <= 1:
            continue
        options = SearchOptions(max_cycles=free.cost.cycles - 1)  # the free optimum is too slow
        capped = solve_exhaustive(space, options)
        if capped is None:
            continue
        proof = prove(space, _worst_valid(space) * 10, budget=10**8, cap=options.max_cycles)
        assert proof.complete
        assert proof.energy_pj == pytest.approx(capped.cost.energy_pj, rel=1e-9)
        cost = score_point(space, space.mapping(proof.factors, proof.orders))
        assert cost is not None and cost.cycles <= options.max_cycles
        checked += 1
    assert checked > 0


def test_out_of_budget_bound_stays_below_the_optimum() -> None:
    checked = 0
    for space in small_spaces("eyeriss-isca16")[:12]:
        best = solve_exhaustive(space, SearchOptions())
        start = _worst_valid(space)
        if best is None or start == 0.0:
            continue
        proof = prove(space, start, budget=50)
        if proof.complete:
            continue
        checked += 1
        assert proof.bound_pj <= best.cost.energy_pj * (1 + 1e-12), space.nest.name
        assert proof.energy_pj <= start
    assert checked > 0


def test_cpsat_mapper_proves_a_full_size_strided_layer_optimal() -> None:
    # ResNet-50's layer2.0 downsample: the energy bound alone leaves a gap of about 9 %.
    nest = drop_unit_dims(conv2d("downsample", k=512, c=256, p=28, q=28, r=1, s=1, stride=2))
    target = load_target("eyeriss")
    space = MapSpace(nest, target, space_constraints(nest, target))
    found = solve_cpsat(space, SearchOptions(time_limit_s=4))
    assert found is not None
    assert found.report.status == "OPTIMAL"
    assert found.report.proof_work > 0  # proven by the proof search, not by CP-SAT
    assert found.report.gap == 0.0
    assert found.report.bound == pytest.approx(found.cost.energy_pj, rel=1e-12)


def test_a_layer_the_warm_start_proves_never_builds_the_cpsat_model(monkeypatch) -> None:  # noqa: ANN001
    # The proof goes first from the warm start's point; CP-SAT (whose presolve alone can
    # take seconds) runs only where that proof does not complete.
    import joule.passes.mapper.cpsat.solve as solve

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("CP-SAT built for a layer the proof completes")

    nest = drop_unit_dims(conv2d("downsample", k=512, c=256, p=28, q=28, r=1, s=1, stride=2))
    target = load_target("eyeriss")
    space = MapSpace(nest, target, space_constraints(nest, target))
    monkeypatch.setattr(solve, "build_model", refuse)
    found = solve_cpsat(space, SearchOptions(time_limit_s=4))
    assert found is not None and found.report.status == "OPTIMAL"
    monkeypatch.undo()
    # Out of proof budget, CP-SAT runs and the layer still gets a bound below its energy.
    short = solve_cpsat(space, SearchOptions(time_limit_s=0.01))
    assert short is not None and short.report.status == "FEASIBLE"
    assert 0 < short.report.bound <= short.cost.energy_pj
