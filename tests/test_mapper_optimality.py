"""CP-SAT finds the exhaustive optimum: on random small layers on every bundled target, its
mapping's energy (re-scored by the cost model) equals the best of every point in the
mapspace, with status OPTIMAL."""

from __future__ import annotations

import os
import random

import pytest
from joule.cost.model import lower_bound_pj
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds.spatial import energy_bound_pj
from joule.passes.mapper.cpsat.solve import solve_cpsat
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.mapper.search.exhaustive import solve_exhaustive
from joule.targets import bundled_targets, load_target

LAYERS_PER_TARGET = int(os.environ.get("JOULE_OPT_LAYERS", "30"))
MAX_POINTS = 4000  # keeps the exhaustive check fast; larger spaces are in the slow run


def random_layer(rng: random.Random, index: int) -> LoopNest:
    """A small conv, depthwise conv or (batched) matmul."""
    kind = index % 3
    if kind == 0:
        return conv2d(
            f"conv{index}",
            k=rng.choice([1, 2, 4]),
            c=rng.choice([1, 2, 3]),
            p=rng.choice([1, 2, 3, 4]),
            q=rng.choice([1, 2]),
            r=rng.choice([1, 2, 3]),
            s=rng.choice([1, 2]),
            stride=rng.choice([1, 2]),
            dilation=rng.choice([1, 2]),
        )
    if kind == 1:
        return conv2d(
            f"dw{index}",
            k=1,
            c=1,
            groups=rng.choice([2, 3, 4]),
            p=rng.choice([2, 4]),
            q=rng.choice([1, 2]),
            r=rng.choice([2, 3]),
            s=rng.choice([1, 2]),
        )
    return matmul(
        f"mm{index}",
        m=rng.choice([2, 3, 4]),
        n=rng.choice([2, 4]),
        k=rng.choice([2, 3, 4]),
        batch=rng.choice([(), (2,)]),
    )


def small_spaces(target_name: str) -> list[MapSpace]:
    rng = random.Random(f"optimality-{target_name}")
    target = load_target(target_name)
    spaces = []
    index = 0
    while len(spaces) < LAYERS_PER_TARGET:
        nest = drop_unit_dims(random_layer(rng, index))
        index += 1
        space = MapSpace(nest, target, space_constraints(nest, target))
        if space.size <= MAX_POINTS:
            spaces.append(space)
    return spaces


@pytest.mark.parametrize("target_name", bundled_targets())
def test_cpsat_energy_equals_exhaustive_optimum(target_name: str) -> None:
    kinds = set()
    stronger = 0
    for space in small_spaces(target_name):
        best = solve_exhaustive(space, SearchOptions())
        found = solve_cpsat(space, SearchOptions(time_limit_s=30))
        assert (best is None) == (found is None), space.nest.name
        if best is None:
            continue
        kinds.add(space.nest.op + ("-grouped" if "G" in space.nest.dim_names else ""))
        assert found.report.status == "OPTIMAL", space.nest.name
        ratio = found.cost.energy_pj / best.cost.energy_pj
        assert ratio <= 1.0001, (space.nest.name, ratio, found.mapping, best.mapping)
        # The solver's certified bound is a true lower bound of the optimum.
        assert found.report.bound <= best.cost.energy_pj * 1.0001
        # So is the spatial bound (passes/bound.py), never weaker than the compulsory one.
        bound = energy_bound_pj(space)
        assert lower_bound_pj(space.nest, space.target) <= bound, space.nest.name
        assert bound <= best.cost.energy_pj * (1 + 1e-12), space.nest.name
        stronger += bound > lower_bound_pj(space.nest, space.target) * (1 + 1e-9)
    assert {"Conv", "Conv-grouped", "MatMul"} <= kinds
    assert stronger > 0  # the unrolling decides a cost on some of these layers
