"""The energy bound (spatial + off-chip): below every mapping of the space (also checked
against the exhaustive optimum in test_mapper_optimality), and stronger than the
compulsory bound where the unrolling or the buffers decide a cost."""

from __future__ import annotations

import random

import pytest
from joule.cost.model import lower_bound_pj
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import ROLES, LoopNest
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds.spatial import _per_unrolling, energy_bound_pj
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions, score_point
from joule.passes.mapper.search.exhaustive import solve_exhaustive
from joule.passes.mapper.search.local_search import warm_start
from joule.targets import bundled_targets, load_target
from joule.targets.spec import LevelConstraints, Network, StorageLevel, Target
from test_mapper_optimality import random_layer


@pytest.mark.parametrize("target_name", bundled_targets())
def test_no_random_point_of_a_larger_space_beats_the_bound(target_name: str) -> None:
    rng = random.Random(f"bound-{target_name}")
    target = load_target(target_name)
    for index in range(12):
        nest = drop_unit_dims(_larger_layer(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        bound = energy_bound_pj(space)
        for _ in range(200):
            factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
            # Any permutation, as the random mapper draws (not only the space's orders).
            orders = tuple(tuple(rng.sample(c[0], len(c[0]))) for c in space.order_candidates)
            if not space.spatial_fits(factors):
                continue
            cost = score_point(space, space.mapping(factors, orders))
            if cost is not None:
                assert cost.energy_pj >= bound * (1 - 1e-12), nest.name


def _larger_layer(rng: random.Random, index: int) -> LoopNest:
    """Layers with more factors than the exhaustive check can afford."""
    if index % 2:
        return matmul(
            f"mm{index}", m=rng.choice([4, 12, 32]), n=rng.choice([8, 16]), k=rng.choice([6, 64])
        )
    return conv2d(
        f"conv{index}",
        k=rng.choice([8, 16, 24]),
        c=rng.choice([3, 8, 16]),
        p=rng.choice([4, 7, 14]),
        q=rng.choice([4, 14]),
        r=rng.choice([1, 3]),
        s=rng.choice([1, 3]),
        stride=rng.choice([1, 2]),
        groups=rng.choice([1, 1, 2]),
    )


REAL_LAYERS = {
    "strided 1x1": dict(k=512, c=256, p=28, q=28, r=1, s=1, stride=2),
    "3x3": dict(k=128, c=128, p=28, q=28, r=3, s=3),
    "7x7 stride 2": dict(k=64, c=3, p=112, q=112, r=7, s=7, stride=2),
    "depthwise": dict(k=1, c=1, groups=96, p=56, q=56, r=3, s=3, stride=2),
}


@pytest.mark.parametrize("shape", REAL_LAYERS)
def test_real_layers_searched_well_stay_above_the_bound(shape: str) -> None:
    # Good mappings (the warm start's) are where a bound that is too strong would show.
    target = load_target("eyeriss")
    nest = drop_unit_dims(conv2d(shape, **REAL_LAYERS[shape]))
    space = MapSpace(nest, target, space_constraints(nest, target))
    found = warm_start(space, SearchOptions(time_limit_s=0.5))
    assert found is not None
    bound = energy_bound_pj(space)
    assert lower_bound_pj(nest, target) <= bound <= found.cost.energy_pj


def _tight_target() -> Target:
    """A small buffer under DRAM, then 2 PEs whose weight buffers hold 4 words each."""
    return Target(
        "tight",
        "buffers small enough that small layers overflow them",
        (
            StorageLevel("DRAM", frozenset(ROLES), read_pj=50.0, write_pj=50.0, update_pj=50.0),
            StorageLevel(
                "buffer",
                frozenset({"input", "output"}),
                capacity_words=12,
                read_pj=3.0,
                write_pj=3.0,
                update_pj=3.0,
                network=Network(multicast=True, spatial_reduction=True),
            ),
            StorageLevel(
                "PE",
                frozenset({"weight"}),
                instances=2,
                mesh_y=2,
                capacity_words=4,
                read_pj=1.0,
                write_pj=1.0,
                update_pj=1.0,
            ),
        ),
        mac_energy_pj=0.5,
    )


def test_bound_holds_when_tiles_overflow_the_buffers() -> None:
    # Exhaustively: the off-chip part charges reloads forced by the small buffers
    # (it must raise the bound on some layers) and never passes the optimum.
    rng = random.Random("tight")
    target = _tight_target()
    raised = checked = 0
    for index in range(60):
        nest = drop_unit_dims(random_layer(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        if space.size > 20_000:
            continue
        best = solve_exhaustive(space, SearchOptions())
        if best is None:
            continue
        checked += 1
        bound = energy_bound_pj(space)
        assert bound <= best.cost.energy_pj * (1 + 1e-12), (nest.name, bound, best.cost.energy_pj)
        const, parts = _per_unrolling(space)
        raised += bound > (const + min(a + b for a, b, _ in parts)) * (1 + 1e-9)
    assert checked >= 20 and raised > 0


def _array_target(spatial: str) -> Target:
    """DRAM over 4 PEs on the Y axis; only ``spatial`` may be unrolled across them."""
    return Target(
        "four-pe",
        "DRAM feeding 4 PEs that keep every tensor",
        (
            StorageLevel(
                "DRAM",
                frozenset(ROLES),
                read_pj=10.0,
                write_pj=10.0,
                update_pj=10.0,
                network=Network(multicast=True, spatial_reduction=True),
                constraints=LevelConstraints(spatial_y=frozenset({spatial})),
            ),
            StorageLevel(
                "PE",
                frozenset(ROLES),
                instances=4,
                mesh_y=4,
                read_pj=1.0,
                write_pj=1.0,
                update_pj=1.0,
            ),
        ),
        mac_energy_pj=0.0,
    )


def test_partial_sums_pay_reads_the_array_cannot_share() -> None:
    # out[M] += a[M, K] * b[K] with only M allowed across the 4 PEs: no two PEs share
    # an output word, so every PE reads back all but the first of its K updates:
    # M * (K - 1) = 2 * 7 = 14 reads. The compulsory bound assumes the 4 PEs could
    # share each reduction (16 - 2 x 4 = 8 reads).
    nest = drop_unit_dims(matmul(m=2, n=1, k=8))
    target = _array_target("Q")  # matmul M plays the convolution's Q
    space = MapSpace(nest, target, space_constraints(nest, target))
    best = solve_exhaustive(space, SearchOptions())
    assert best is not None
    compulsory = lower_bound_pj(nest, target)
    assert energy_bound_pj(space) - compulsory == pytest.approx(14 - 8)
    # With unbounded PE buffers nothing else is lost: the bound is the optimum.
    assert energy_bound_pj(space) == pytest.approx(best.cost.energy_pj)


def test_overlapping_windows_of_pes_are_each_filled() -> None:
    # A 1-D convolution out[q] += in[q + s] * w[s], q = 4, s = 2, with s only
    # unrollable (across 2 PEs that keep the input): PE s needs in[s .. s + 3], so
    # 2 x 4 = 8 words are read from DRAM and filled into the PEs, though the input
    # has only 5 distinct words (multicast serves identical data only).
    nest = drop_unit_dims(conv2d("1d", k=1, c=1, p=1, q=4, r=1, s=2))
    pes = StorageLevel(
        "PE",
        frozenset({"input"}),
        instances=2,
        mesh_y=2,
        read_pj=1.0,
        write_pj=2.0,
        constraints=LevelConstraints(temporal_dims=frozenset({"Q"})),
    )
    dram = StorageLevel(
        "DRAM",
        frozenset(ROLES),
        read_pj=10.0,
        write_pj=10.0,
        update_pj=10.0,
        constraints=LevelConstraints(temporal_dims=frozenset({"Q"}), spatial_y=frozenset({"S"})),
    )
    target = Target("windows", "2 PEs splitting a window", (dram, pes), mac_energy_pj=0.0)
    space = MapSpace(nest, target, space_constraints(nest, target))
    best = solve_exhaustive(space, SearchOptions())
    assert best is not None
    assert best.cost.accesses["PE"]["input"].fills == 8
    bound = energy_bound_pj(space)
    assert bound == pytest.approx(best.cost.energy_pj)
    # Counting distinct words only (5) would leave 3 x (10 + 2) pJ out.
    assert bound - lower_bound_pj(nest, target) == pytest.approx(3 * (10.0 + 2.0))
