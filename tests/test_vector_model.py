"""The vectorised cost model agrees with ``score`` exactly: same energy and cycles on random
points (any factors, any of the space's loop orders) of small and full-size layers on every
bundled target, and the same verdict on which points fit the buffers."""

from __future__ import annotations

import random

import numpy as np
import pytest
from joule.cost.model import score
from joule.cost.nest import flatten
from joule.errors import MappingError
from joule.ir.builders import conv2d, matmul
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.proof.vector_model import Batch, VectorModel
from joule.targets import bundled_targets, load_target

from tests.test_mapper_optimality import random_layer

FULL_SIZE = [
    conv2d("conv3x3", k=64, c=64, p=56, q=56, r=3, s=3),
    conv2d("strided1x1", k=128, c=64, p=28, q=28, r=1, s=1, stride=2),
    conv2d("depthwise", k=1, c=1, groups=96, p=56, q=56, r=3, s=3, stride=2),
    conv2d("conv7x7", k=64, c=3, p=112, q=112, r=7, s=7, stride=2),
    matmul("gemm", m=1, n=1000, k=512),
]


def _spaces(target_name: str) -> list[MapSpace]:
    rng = random.Random(f"vector-{target_name}")
    target = load_target(target_name)
    nests = [drop_unit_dims(random_layer(rng, i)) for i in range(12)]
    nests += [drop_unit_dims(n) for n in FULL_SIZE]
    return [MapSpace(n, target, space_constraints(n, target)) for n in nests]


def _random_points(space: MapSpace, rng: random.Random, count: int):  # noqa: ANN202
    """Random points of the space that fit its fan-outs, as dicts and as one Batch, and
    which of them fit its buffers; None when none of ``count`` draws fit the fan-outs."""
    points = [{d: rng.choice(space.factor_tuples[d]) for d in space.dims} for _ in range(count)]
    points = [p for p in points if space.spatial_fits(p)]
    if not points:
        return None
    model = VectorModel(space)
    factors = {d: np.array([p[d] for p in points], dtype=np.int64) for d in space.dims}
    return points, Batch(model, factors), model.fits(factors)


@pytest.mark.parametrize("target_name", bundled_targets())
def test_vector_model_equals_score(target_name: str) -> None:
    rng = random.Random(target_name)
    checked = overflow = 0
    for space in _spaces(target_name):
        drawn = _random_points(space, rng, 200)
        if drawn is None:
            continue
        points, batch, fits = drawn
        for orders in list(space.order_combos())[:4]:
            energy, cycles = batch.evaluate(orders)
            for k, point in enumerate(points):
                flat = flatten(space.mapping(point, orders), space.level_names)
                try:
                    cost = score(space.nest, space.target, flat)
                except MappingError:
                    assert not fits[k], (space.nest.name, point)
                    overflow += 1
                    continue
                assert fits[k], (space.nest.name, point)
                assert energy[k] == pytest.approx(cost.energy_pj, rel=1e-12), (point, orders)
                assert cycles[k] == cost.cycles, (point, orders)
                checked += 1
    assert checked > 500 and overflow > 50  # both verdicts are exercised


@pytest.mark.parametrize("target_name", bundled_targets())
def test_floor_is_below_every_outermost_order(target_name: str) -> None:
    """The prover's floor ignores the loop orders of the ``free`` outermost levels: under
    every order of those levels (the rest fixed), its outermost part and the rest are at
    or below the exact ones, and it is not vacuous (it reaches the exact energy at some
    points)."""
    rng = random.Random(f"floor-{target_name}")
    tight = 0
    for space in _spaces(target_name):
        drawn = _random_points(space, rng, 300)
        if drawn is None:
            continue
        _, batch, fits = drawn
        tight += _floors_below_exact(space, batch, batch, fits)
    assert tight > 100


def _floors_below_exact(space: MapSpace, floored: Batch, exact: Batch, fits: np.ndarray) -> int:
    """Asserts that ``floored``'s floor (outermost part and rest) is at or below ``exact``'s
    energy at every point that fits, for every free level count and every order; returns
    how many (point, order) pairs it reaches exactly."""
    tight = 0
    for free in range(1, space.levels):
        tails = {orders[free:]: orders for orders in space.order_combos()}
        for orders in space.order_combos():
            # Any orders of the free levels give the same floor: take the tail's first.
            outer, rest = floored.floor(tails[orders[free:]], free)
            exact_outer, exact_rest, _, _ = exact._energy(exact.blocks(orders))
            assert np.all(outer[fits] <= exact_outer[fits] * (1 + 1e-12)), (free, orders)
            assert np.all(rest[fits] <= exact_rest[fits] * (1 + 1e-12)), (free, orders)
            tight += int(np.sum(np.isclose(outer + rest, exact_outer + exact_rest)[fits]))
    return tight


@pytest.mark.parametrize("target_name", bundled_targets())
def test_relaxed_floor_is_below_every_completion(target_name: str) -> None:
    """The proof prunes a partial point by its floor with the dims not joined yet
    *relaxed* (their temporal factors 1, their whole extent in every tile): that floor is
    at or below the exact energy of every point completing it, under every order. Strided
    windows make this delicate (a whole-dim box counts the gaps between windows); the
    check covers random points, random sets of relaxed dims and every free level."""
    rng = random.Random(f"relaxed-{target_name}")
    tight = 0
    for space in _spaces(target_name):
        drawn = _random_points(space, rng, 200)
        if drawn is None:
            continue
        _, batch, fits = drawn
        for _ in range(3):
            relaxed = frozenset(rng.sample(space.dims, rng.randint(1, len(space.dims))))
            virtual = {}
            for d in space.dims:
                array = batch.factors[d].copy()
                if d in relaxed:
                    array[:, [k for k, s in enumerate(space.slots[d]) if s.axis is None]] = 1
                virtual[d] = array
            loose = Batch(batch.model, virtual, relaxed)
            tight += _floors_below_exact(space, loose, batch, fits)
    assert tight > 100
