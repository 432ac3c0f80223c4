"""Every backend of the one cost description counts what the simulator counts.

On random points (layer, mapping) of every bundled target: the scalar model
equals the loop-walking simulator (every level, tensor and access kind); the
numpy backend and the CP-SAT formulation, with every decision variable fixed to
the point, give exactly the scalar model's count for every term
(``joule.cost.terms``); CP-SAT's own objective value is exactly the energy of
those counts at its integer coefficients, and its latency objective is the
model's cycles; the numpy backend's energy and cycles are the model's.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from joule.cost.model import ScalarBlocks, score
from joule.cost.nest import flatten
from joule.cost.terms import cost_terms
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.cpsat.solve import CpsatBlocks, build_model
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.mapper.proof.vector_model import Batch, VectorModel
from joule.targets import bundled_targets, load_target
from ortools.sat.python import cp_model
from simulator import simulate
from test_mapper_optimality import random_layer

POINTS_PER_TARGET = 24


def random_points(target_name: str):  # noqa: ANN201
    """(space, factors, orders, mapping) for valid random points of random small layers."""
    rng = random.Random(f"backends-{target_name}")
    target = load_target(target_name)
    found = 0
    index = 0
    while found < POINTS_PER_TARGET:
        nest = drop_unit_dims(random_layer(rng, index))
        index += 1
        space = MapSpace(nest, target, space_constraints(nest, target))
        if not all(space.factor_tuples[d] for d in space.dims):
            continue
        for _ in range(20):
            factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
            orders = rng.choice(list(space.order_combos()))
            if not space.spatial_fits(factors):
                continue
            mapping = space.mapping(factors, orders)
            flat = flatten(mapping, space.level_names)
            if not Batch(VectorModel(space), _rows(factors)).fits()[0]:
                continue
            found += 1
            yield space, factors, orders, mapping, flat
            break


def _rows(factors: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    return {d: np.array([f], dtype=np.int64) for d, f in factors.items()}


def _scalar_counts(space: MapSpace, flat) -> list[int]:  # noqa: ANN001
    terms = cost_terms(space.nest, space.target)
    blocks = ScalarBlocks(space.nest, flat, terms.keepers, space.target)
    return [int(v) for _, v in terms.evaluate(blocks)]


@pytest.mark.parametrize("target_name", bundled_targets())
def test_model_equals_the_simulator(target_name: str) -> None:
    for space, _, _, mapping, flat in random_points(target_name):
        model = score(space.nest, space.target, flat)
        sim = simulate(space.nest, space.target, mapping)
        counts = {
            lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
            for lvl, roles in model.accesses.items()
        }
        assert counts == sim.as_tuples(), (space.nest.name, mapping.loops_text())


@pytest.mark.parametrize("target_name", bundled_targets())
def test_numpy_backend_equals_the_model_term_by_term(target_name: str) -> None:
    for space, factors, orders, _, flat in random_points(target_name):
        batch = Batch(VectorModel(space), _rows(factors))
        terms = cost_terms(space.nest, space.target)
        numpy_counts = [int(v[0]) for _, v in terms.evaluate(batch.blocks(orders))]
        assert numpy_counts == _scalar_counts(space, flat), space.nest.name
        energy, cycles = batch.evaluate(orders)
        model = score(space.nest, space.target, flat)
        assert energy[0] == pytest.approx(model.energy_pj, rel=1e-12)
        assert int(cycles[0]) == model.cycles


@pytest.mark.parametrize("target_name", bundled_targets())
def test_cpsat_fixed_to_a_point_gives_the_models_counts_energy_and_cycles(
    target_name: str,
) -> None:
    for space, factors, orders, _, flat in random_points(target_name):
        model = score(space.nest, space.target, flat)
        expected = _scalar_counts(space, flat)
        terms = cost_terms(space.nest, space.target)
        for objective in ("energy", "latency"):
            built = build_model(space, SearchOptions(objective=objective))
            built.fix(factors, orders)
            pairs = terms.evaluate(CpsatBlocks(built.form, orders))
            solver = cp_model.CpSolver()
            solver.parameters.num_workers = 1
            assert solver.Solve(built.form.model) == cp_model.OPTIMAL, space.nest.name
            assert [solver.Value(v.expr) for _, v in pairs] == expected, space.nest.name
            if objective == "energy":
                scale = built.form.scale
                scaled = sum(
                    round(t.energy_pj * scale) * n
                    for t, n in zip(terms.terms, expected, strict=True)
                )
                assert solver.ObjectiveValue() == scaled, space.nest.name
                macs = space.nest.macs * space.target.mac_energy_pj
                assert solver.ObjectiveValue() / scale + macs == pytest.approx(
                    model.energy_pj, rel=1e-5
                )
            else:
                assert solver.ObjectiveValue() == model.cycles, space.nest.name
