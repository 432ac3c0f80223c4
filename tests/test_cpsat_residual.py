"""CP-SAT over residual tiles (``joule.passes.mapper.cpsat.residual``).

Fixed to a random imperfect point, the formulation's every count equals the scalar
model's, which equals the loop-walking simulator on that same point, and so do its
energy and latency objectives; solved, it reaches the exhaustive optimum over
every imperfect tuple of small layers, status OPTIMAL; layers it cannot model say
why.
"""

from __future__ import annotations

import math
import random

import pytest
from joule.cost.model import ScalarBlocks, score
from joule.cost.nest import flatten
from joule.cost.terms import cost_terms
from joule.driver import compile_model
from joule.errors import JouleError, MappingError
from joule.ir.builders import conv2d, matmul
from joule.models.graph import GraphBuilder
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.cpsat import residual
from joule.passes.mapper.cpsat.solve import build_model
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions, objective_value
from joule.passes.mapper.search.local_search import decode
from joule.targets import load_target
from ortools.sat.python import cp_model
from test_cost_vs_simulator import assert_model_matches_simulator
from test_imperfect_bound import _imperfect_size, _random_point
from test_imperfect_search import _grid_target
from test_residual_tiles import BUNDLED


def _small_layer(rng: random.Random, index: int, tiny: bool = False):  # noqa: ANN202
    """Matmuls and convolutions (strided too; 1x1 or sliding windows), awkward extents;
    ``tiny`` ones for the exhaustive search to enumerate."""
    if index % 2:
        return matmul(f"mm{index}", m=rng.randint(1, 3), n=rng.randint(2, 13), k=rng.randint(2, 7))
    return conv2d(
        f"pw{index}",
        k=rng.randint(2, 4 if tiny else 7),
        c=rng.randint(1, 2 if tiny else 5),
        p=rng.randint(1, 3 if tiny else 5),
        q=rng.randint(2, 5 if tiny else 7),
        r=rng.choice([1, 1, 2, 3]),
        s=rng.choice([1, 2, 3]),
        stride=rng.choice([1, 2]),
    )


def _points(target_name: str, wanted: int):  # noqa: ANN202
    rng = random.Random(f"cpsat-residual-{target_name}")
    target = _grid_target() if target_name == "grid" else load_target(target_name)
    found = index = 0
    while found < wanted:
        nest = drop_unit_dims(_small_layer(rng, index))
        index += 1
        space = MapSpace(nest, target, space_constraints(nest, target))
        if residual.refusal(space) is not None:
            continue
        for _ in range(20):
            mapping = _random_point(rng, space)
            if mapping is None:
                continue
            try:
                score(nest, target, flatten(mapping, space.level_names))
            except MappingError:
                continue
            found += 1
            yield space, mapping
            break


@pytest.mark.parametrize("target_name", ["grid", *BUNDLED])
def test_fixed_to_a_point_it_gives_the_models_counts_energy_and_cycles(target_name: str) -> None:
    ragged = windows = 0
    for space, mapping in _points(target_name, 12):
        nest, target = space.nest, space.target
        assert_model_matches_simulator(nest, target, mapping)  # the chain ends at the walk
        flat = flatten(mapping, space.level_names)
        model = score(nest, target, flat)
        terms = cost_terms(nest, target)
        expected = [
            int(v) for _, v in terms.evaluate(ScalarBlocks(nest, flat, terms.keepers, target))
        ]
        factors, orders = decode(space, mapping)
        ragged += any(math.prod(factors[d]) != space.extents[d] for d in space.dims)
        windows += any(len(axis.dims) > 1 for t in nest.tensors for axis in t.projection)
        for objective in ("energy", "latency"):
            built = build_model(
                space, SearchOptions(objective=objective), residual.imperfect_tuples(space)
            )
            built.fix(factors, orders)
            pairs = terms.evaluate(residual.ResidualBlocks(built.form, orders))
            solver = cp_model.CpSolver()
            solver.parameters.num_workers = 1
            assert solver.Solve(built.form.model) == cp_model.OPTIMAL, nest.name
            assert [solver.Value(v.expr) for _, v in pairs] == expected, nest.name
            if objective == "energy":
                scale = built.form.scale
                scaled = sum(
                    round(t.energy_pj * scale) * n
                    for t, n in zip(terms.terms, expected, strict=True)
                )
                assert solver.ObjectiveValue() == scaled, nest.name
            else:
                assert solver.ObjectiveValue() == model.cycles, nest.name
    assert ragged >= 6
    # Sliding windows too, where no inter-PE link may forward them (eyeriss links them).
    assert windows >= (0 if target_name == "eyeriss" else 3)


@pytest.mark.parametrize("target_name", ["grid", "eyeriss", "tpu-ws"])
def test_solved_it_equals_the_exhaustive_imperfect_optimum(target_name: str) -> None:
    """``--factors imperfect`` with the default mapper on small layers whose every
    imperfect tuple CP-SAT tabulates: OPTIMAL over the imperfect space, at the
    exhaustive optimum, for each objective."""
    rng = random.Random(f"cpsat-exhaustive-{target_name}")
    target = _grid_target() if target_name == "grid" else load_target(target_name)
    cases = windows = 0
    for index in range(80):
        nest = drop_unit_dims(_small_layer(rng, index, tiny=True))
        constraints = space_constraints(nest, target)
        space = MapSpace(nest, target, constraints)
        windowed = any(len(a.dims) > 1 for t in nest.tensors for a in t.projection)
        if residual.refusal(space) is not None or _imperfect_size(space) > 2_000:
            continue
        if cases >= 2 and not windowed and target_name != "eyeriss":
            continue  # enough without windows: find one with
        for objective in ("energy", "latency", "edp"):
            options = SearchOptions(objective=objective, time_limit_s=5.0, factors="imperfect")
            try:
                best = map_layer(nest, target, constraints, mapper="exhaustive", options=options)
            except JouleError:
                continue  # nothing fits
            found = map_layer(nest, target, constraints, options=options)
            assert found.report.status == "OPTIMAL", (nest.name, objective)
            value = objective_value(found.cost, objective)  # ties: any of them
            assert value == pytest.approx(objective_value(best.cost, objective), rel=1e-9)
            cases += 1
            windows += windowed
        if cases >= 3 and (windows or target_name == "eyeriss"):
            break
    assert cases >= 3 and (windows or target_name == "eyeriss")


def test_layers_it_cannot_model_say_why_and_keep_the_search() -> None:
    target = load_target("eyeriss")
    conv = drop_unit_dims(conv2d("c", k=5, c=3, p=7, q=7, r=3, s=3))
    space = MapSpace(conv, target, space_constraints(conv, target))
    assert "inter-PE links" in residual.refusal(space)  # eyeriss may forward its windows
    big = drop_unit_dims(matmul("mm", m=16, n=4096, k=4096))
    space = MapSpace(big, target, space_constraints(big, target))
    assert "imperfect tuples" in residual.refusal(space)
    result = map_layer(
        big,
        target,
        space.constraints,
        options=SearchOptions(factors="imperfect", time_limit_s=0.3),
    )
    assert result.report.status == "FEASIBLE" and result.report.gap > 0


def test_compile_counts_the_layers_proven_over_residual_tiles() -> None:
    """A one-layer network whose dims CP-SAT tabulates: proven over every imperfect
    tuple, and ``joule compile``'s warning counts it."""
    graph = GraphBuilder("tiny")
    graph.output(graph.gemm(graph.input("x", [1, 7]), "fc", "fc", fin=7, fout=13))
    schedule = compile_model(
        graph.model(), "eyeriss", factors="imperfect", time_limit=2, workers=1, cache=False
    )
    (layer,) = schedule.layers
    assert layer.solver["status"] == "OPTIMAL" and layer.solver["gap"] == 0.0
    assert any("over residual tiles too: 1 " in w for w in schedule.warnings)
