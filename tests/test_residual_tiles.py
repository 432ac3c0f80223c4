"""Imperfect factors: the model counts residual tiles exactly as the simulator walks them.

A dim's outermost loop runs ceil(extent / the others) times and points past the
extent do not run (docs/cost-model.md, "Imperfect factors"). The simulator
(tests/simulator.py) walks every point and skips those; ``joule.cost.residual``
counts per dim. On awkward small layers (prime extents, 2^k x prime, extents
just above a multiple of the array) of every kind -- strided and dilated
convolution, depthwise, batched matmul -- with random imperfect mappings on
every bundled target and on random hypothesis targets, every level's reads,
fills and updates, the network words, the MACs and the compute cycles must be
equal. Plus the worked example of the doc, and the perfect case: the residual
counts equal the closed forms there.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joule.cost import evaluate
from joule.cost.model import ScalarBlocks
from joule.cost.nest import axis_terms, flatten
from joule.cost.residual import ResidualNest, ragged
from joule.cost.terms import keepers_of
from joule.errors import MappingError
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import ROLES, LoopNest
from joule.mapping import LevelLoops, Loop, Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.mapspace.space import MapSpace
from joule.targets import load_target
from joule.targets.spec import Network, StorageLevel, Target
from simulator import simulate
from test_cost_vs_simulator import assert_model_matches_simulator, layers, targets
from test_links import _targets as _link_targets

BUNDLED = ("eyeriss", "eyeriss-isca16", "shidiannao-os", "tpu-ws")
LAYERS_PER_TARGET = 80  # 4 targets x 80 = 320 awkward layers
MAX_POINTS = 6000  # padded iteration space the simulator walks


def awkward_layer(rng: random.Random, index: int) -> LoopNest:
    """A small layer whose extents factor badly: primes, 2^k x prime, 13 or 15 (just
    above an array of 12 or 14)."""
    odd = [5, 7, 11, 13, 15, 6, 10, 14, 3]
    kind = index % 5
    if kind == 0:
        return conv2d(
            f"conv{index}",
            k=rng.choice(odd),
            c=rng.choice([1, 3, 5]),
            p=rng.choice([3, 5, 7]),
            q=rng.choice([1, 3]),
            r=3,
            s=rng.choice([1, 3]),
        )
    if kind == 1:
        return conv2d(
            f"strided{index}",
            k=rng.choice([5, 7, 13]),
            c=rng.choice([2, 3]),
            p=rng.choice([3, 5]),
            q=rng.choice([2, 3]),
            r=3,
            s=3,
            stride=2,
        )
    if kind == 2:
        return conv2d(
            f"dilated{index}",
            k=rng.choice([3, 5, 7]),
            c=rng.choice([1, 3]),
            p=rng.choice([5, 7]),
            q=rng.choice([1, 2]),
            r=3,
            s=rng.choice([1, 3]),
            dilation=2,
        )
    if kind == 3:
        return conv2d(
            f"dw{index}",
            k=1,
            c=1,
            groups=rng.choice([5, 7, 13, 15]),
            p=rng.choice([3, 5, 7]),
            q=rng.choice([1, 3]),
            r=3,
            s=rng.choice([1, 3]),
        )
    return matmul(
        f"bmm{index}",
        m=rng.choice([5, 7, 13]),
        n=rng.choice([3, 11, 15]),
        k=rng.choice([5, 7, 6]),
        batch=(rng.choice([1, 3]),),
    )


def imperfect_mapping(rng: random.Random, nest: LoopNest, target: Target) -> Mapping:
    """Each dim gets 1-3 loops at random slots with random inner factors (spatial ones
    up to the room left on the axis); the outermost runs ceil(extent / the others)."""
    nlev = len(target.levels)
    room = {(i, ax): f for i in range(nlev) for ax, f in zip("XY", target.fanout(i), strict=True)}
    temporal: list[list[Loop]] = [[] for _ in range(nlev)]
    spatial: list[list[Loop]] = [[] for _ in range(nlev)]
    for dim, extent in nest.dims:
        if extent == 1:
            continue
        slots = []
        for _ in range(rng.randint(1, 3)):
            level = rng.randrange(nlev)
            axis = rng.choice(["T", "T", "X", "Y"])
            if axis != "T" and room[(level, axis)] < 2:
                axis = "T"
            slots.append((level, axis != "T", axis))
        slots.sort()  # nest order: level by level, temporal before spatial
        factors = []
        inner = 1
        for level, is_spatial, axis in slots[1:]:
            top = room[(level, axis)] if is_spatial else 4
            f = rng.randint(1, max(1, top))
            if inner * f >= extent:
                f = 1
            if is_spatial:
                room[(level, axis)] //= f
            inner *= f
            factors.append(f)
        level, is_spatial, axis = slots[0]
        outer = -(-extent // inner)
        if is_spatial and room[(level, axis)] < outer:
            is_spatial = False
        elif is_spatial:
            room[(level, axis)] //= outer
        slots[0] = (level, is_spatial, axis)
        for (level, is_spatial, axis), f in zip(slots, [outer, *factors], strict=True):
            (spatial if is_spatial else temporal)[level].append(
                Loop(dim, f, axis if is_spatial else None)
            )
    levels = []
    for i in range(nlev):
        levels.append(
            LevelLoops(
                target.levels[i].name,
                _shuffled(rng, temporal[i]),
                _shuffled(rng, spatial[i]),
            )
        )
    return Mapping(tuple(levels))


def _shuffled(rng: random.Random, loops: list[Loop]) -> tuple[Loop, ...]:
    """A random order of dims that keeps each dim's own loops in their order (the first
    one is its outermost, the one running ceil(extent / the others))."""
    dims = [lp.dim for lp in loops]
    rng.shuffle(dims)
    queues: dict[str, list[Loop]] = {}
    for lp in loops:
        queues.setdefault(lp.dim, []).append(lp)
    return tuple(queues[d].pop(0) for d in dims)


def _padded(mapping: Mapping) -> int:
    return math.prod(lp.factor for lvl in mapping.levels for lp in (*lvl.temporal, *lvl.spatial))


def awkward_cases(target_name: str):  # noqa: ANN201
    """(nest, target, mapping) with residual tiles that fit the target's buffers."""
    rng = random.Random(f"residual-{target_name}")
    target = load_target(target_name)
    found = index = 0
    while found < LAYERS_PER_TARGET:
        nest = awkward_layer(rng, index)
        index += 1
        for _ in range(40):
            mapping = imperfect_mapping(rng, nest, target)
            flat = flatten(mapping, tuple(lvl.name for lvl in target.levels))
            if _padded(mapping) > MAX_POINTS or not ragged(flat, nest.extents):
                continue
            try:
                evaluate(nest, target, mapping)
            except MappingError:
                continue  # a tile overflows a buffer, or links the model refuses to guess
            found += 1
            yield nest, target, mapping
            break


@pytest.mark.parametrize("target_name", BUNDLED)
def test_model_equals_simulator_on_awkward_layers(target_name: str) -> None:
    cases = list(awkward_cases(target_name))
    assert len(cases) == LAYERS_PER_TARGET
    kinds = {nest.name.rstrip("0123456789") for nest, _, _ in cases}
    assert kinds == {"conv", "strided", "dilated", "dw", "bmm"}
    for nest, target, mapping in cases:
        assert_model_matches_simulator(nest, target, mapping)


@st.composite
def imperfect_triples(draw: st.DrawFn) -> tuple[LoopNest, Target, Mapping]:
    nest = draw(layers().filter(lambda n: n.macs <= 1500))
    target = draw(targets())
    rng = random.Random(draw(st.integers(0, 2**32)))
    return nest, target, imperfect_mapping(rng, nest, target)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(imperfect_triples())
def test_model_equals_simulator_on_random_targets(
    triple: tuple[LoopNest, Target, Mapping],
) -> None:
    nest, target, mapping = triple
    if _padded(mapping) <= MAX_POINTS:
        assert_model_matches_simulator(nest, target, mapping)


@pytest.mark.parametrize("target_name", BUNDLED)
def test_residual_counts_equal_the_closed_forms_on_perfect_mappings(target_name: str) -> None:
    """Forced onto a perfect mapping, the per-dim counting gives the closed forms."""
    target = load_target(target_name)
    rng = random.Random(f"perfect-{target_name}")
    checked = 0
    for index in range(40):
        nest = conv2d(f"c{index}", k=4, c=2, p=4, q=2, r=3, s=1, stride=rng.choice([1, 2]))
        mapping = imperfect_mapping(rng, nest, target)
        flat = flatten(mapping, tuple(lvl.name for lvl in target.levels))
        if ragged(flat, nest.extents):
            continue
        blocks = ScalarBlocks(nest, flat, keepers_of(target), target)
        residual = ResidualNest(flat, nest.extents)
        for tensor in nest.tensors:
            for level in keepers_of(target)[tensor.role]:
                counted = residual.fills(
                    axis_terms(tensor), tensor.relevant_dims, level, frozenset()
                )
                assert counted == blocks.fills(tensor, level)
            if tensor.role == "output":
                for level in keepers_of(target)[tensor.role]:
                    assert residual.first(tensor.relevant_dims, level) == blocks.first(
                        tensor, level
                    )
        compute = math.prod(lp.factor for lp in flat.loops if not lp.spatial)
        assert residual.compute_cycles() == compute
        checked += 1
    assert checked >= 10


def _four_pe_target() -> Target:
    return Target(
        "four-pe",
        "DRAM multicasting to 4 PEs along X, each keeping every tensor",
        (
            StorageLevel(
                "DRAM", frozenset(ROLES), network=Network(multicast=True, spatial_reduction=True)
            ),
            StorageLevel("PE", frozenset(ROLES), instances=4, mesh_x=4, mesh_y=1),
        ),
        mac_energy_pj=1.0,
    )


WORKED = Mapping(
    (
        LevelLoops("DRAM", (Loop("N", 4), Loop("K", 2)), (Loop("N", 4, "X"),)),
        LevelLoops("PE", (Loop("K", 3), Loop("M", 2))),
    )
)


def test_worked_example_of_the_doc() -> None:
    """docs/cost-model.md, "Imperfect factors": O[m,n] += A[m,k] B[k,n] with M=2,
    N=13 (prime) over 4 PEs, K=5 in tiles of 3 then 2."""
    nest = matmul("mm", m=2, n=13, k=5)
    target = _four_pe_target()
    cost = evaluate(nest, target, WORKED)
    assert cost.macs == 130
    assert cost.compute_cycles == 4 * 5 * 2  # N steps x (K points that run) x M
    assert cost.utilization == pytest.approx(130 / (40 * 4))
    pe, dram = cost.accesses["PE"], cost.accesses["DRAM"]
    assert pe["weight"].fills == 13 * 5  # every B word once: 4+3+3+3 N steps x (3+2) K
    assert pe["input"].fills == 13 * 2 * 5  # refetched on each of a PE's N steps
    assert dram["input"].reads == 4 * 2 * 5  # one multicast per N step that runs
    assert dram["output"].updates == 26 and dram["output"].reads == 0
    assert_model_matches_simulator(nest, target, WORKED)


def test_misplaced_residual_is_refused_with_the_factor_to_use() -> None:
    nest = matmul("mm", m=2, n=13, k=5)
    bad = Mapping((WORKED.levels[0], LevelLoops("PE", (Loop("K", 2), Loop("M", 2)))))
    with pytest.raises(MappingError, match=r"ceil\(5/2\) = 3"):
        evaluate(nest, _four_pe_target(), bad)


def _shrunk_linked_points(target: Target, wanted: int, seed: str):  # noqa: ANN202
    """Mappings that forward tiles over links, made imperfect: take a linked point of a
    random conv and shrink dims (keeping the loops) so their last tiles are residuals."""
    rng = random.Random(seed)
    found = 0
    for index in range(3000):
        params = {
            "k": rng.choice([1, 2]),
            "c": rng.choice([1, 2]),
            "p": rng.choice([2, 3, 4]),
            "q": rng.choice([3, 4, 6]),
            "r": rng.choice([1, 2]),
            "s": rng.choice([2, 3, 4]),
            "stride": rng.choice([1, 1, 2]),
            "dilation": rng.choice([1, 1, 2]),
        }
        nest = drop_unit_dims(conv2d(f"conv{index}", **params))
        space = MapSpace(nest, target, space_constraints(nest, target))
        if not all(space.factor_tuples[d] for d in space.dims):
            continue
        factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
        if not space.spatial_fits(factors):
            continue
        mapping = space.mapping(factors, rng.choice(list(space.order_combos())))
        try:
            if not evaluate(nest, target, mapping).link_words:
                continue
        except MappingError:
            continue
        shrunk = dict(params)
        for dim in ("K", "C", "P", "Q"):
            loops = [f for f in mapping.factors(dim) if f > 1]
            if len(loops) < 2:
                continue
            inner = math.prod(loops[1:])
            shrunk[dim.lower()] = rng.randint((loops[0] - 1) * inner + 1, loops[0] * inner)
        small = drop_unit_dims(conv2d(f"shrunk{index}", **shrunk))
        if small.extents == nest.extents or set(small.dim_names) != set(nest.dim_names):
            continue
        try:
            evaluate(small, target, mapping)
        except MappingError:
            continue
        found += 1
        yield small, mapping
        if found == wanted:
            return
    raise AssertionError(f"only {found} shrunk linked points")


@pytest.mark.parametrize("name", ["eyeriss", "links-x", "links-x-unicast"])
def test_links_with_residual_tiles_equal_the_simulator(name: str) -> None:
    """The neighbour rule over residual tiles: the model's forwarded words and every
    count they change equal the simulator's, which applies Timeloop's test step by step."""
    target = _link_targets()[name]
    linked = 0
    for nest, mapping in _shrunk_linked_points(target, 25, f"residual-links-{name}"):
        assert_model_matches_simulator(nest, target, mapping)
        result, sim = evaluate(nest, target, mapping), simulate(nest, target, mapping)
        assert {k: v for k, v in result.link_words.items() if v} == {
            k: {r: w for r, w in v.items() if w}
            for k, v in sim.link_words.items()
            if any(v.values())
        }
        linked += bool(result.link_words)
    assert linked >= 5
