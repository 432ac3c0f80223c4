"""The warm start's moves: what coordinate descent alone cannot reach, it still finds."""

from __future__ import annotations

import random

from joule.ir.builders import conv2d
from joule.mapping import LevelLoops, Loop, Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds.spatial import ranked_unrollings
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions, SearchResult, score_point
from joule.passes.mapper.search.local_search import _sample_unrolling, decode, descend
from joule.targets import load_target


def _downsample_space() -> MapSpace:
    # ResNet-18 layer3.0 downsample: 1x1, stride 2.
    nest = drop_unit_dims(conv2d("ds", k=256, c=128, p=14, q=14, r=1, s=1, stride=2))
    target = load_target("eyeriss")
    return MapSpace(nest, target, space_constraints(nest, target))


def _stuck_point(space: MapSpace) -> SearchResult:
    """P and Q inside the buffer: the input box keeps the stride's unused rows and columns."""
    mapping = Mapping(
        (
            LevelLoops("DRAM", (Loop("K", 2),), ()),
            LevelLoops(
                "shared_glb", (Loop("P", 14), Loop("Q", 14)), (Loop("K", 8, "X"), Loop("C", 8, "Y"))
            ),
            LevelLoops("ifmap_spad", (), ()),
            LevelLoops("weights_spad", (Loop("C", 16),), ()),
            LevelLoops("psum_spad", (Loop("K", 16),), ()),
        )
    )
    cost = score_point(space, mapping)
    assert cost is not None
    return SearchResult(mapping, cost, None)  # type: ignore[arg-type]


def test_moving_two_dims_out_together_escapes_a_single_dim_local_optimum() -> None:
    space = _downsample_space()
    stuck = _stuck_point(space)
    factors, orders = decode(space, stuck.mapping)
    # No single dim's re-tiling helps: P or Q alone out to DRAM re-reads more words.
    for d in space.dims:
        for t in space.factor_tuples[d]:
            if not space.spatial_fits({**factors, d: t}):
                continue
            cost = score_point(space, space.mapping({**factors, d: t}, orders))
            assert cost is None or cost.energy_pj >= stuck.cost.energy_pj
    found = descend(space, stuck, SearchOptions(), None)
    # Both out to DRAM at once: only the rows and columns the stride reads are fetched.
    assert found.cost.energy_pj < 0.95 * stuck.cost.energy_pj


def test_unrolling_starts_keep_the_unrolling_they_were_drawn_for() -> None:
    space = _downsample_space()
    ranked = ranked_unrollings(space)
    assert ranked
    for entry in ranked[:5]:
        unrolling = entry.factors
        point = _sample_unrolling(space, unrolling, random.Random(0), None, SearchOptions())
        assert point is not None
        factors, _ = decode(space, point.mapping)
        for d in space.dims:
            for slot, f in zip(space.slots[d], factors[d], strict=True):
                if slot.axis is not None:
                    assert f == unrolling[slot]


def test_a_descent_stops_at_full_effort_even_mid_sweep(monkeypatch) -> None:  # noqa: ANN001
    """A depthwise layer's group dim has tens of thousands of tilings on eyeriss (G may
    loop at every level and unroll on both axes): one sweep over them must stop at the
    full effort, at any time limit (MobileNetV2's depthwise layers once took 10x their
    --time-limit)."""
    import joule.passes.mapper.search.local_search as local_search

    nest = drop_unit_dims(conv2d("dw", k=1, c=1, groups=960, p=7, q=7, r=3, s=3))
    target = load_target("eyeriss")
    space = MapSpace(nest, target, space_constraints(nest, target))
    assert max(len(t) for t in space.factor_tuples.values()) > 10 * 2500
    start = local_search._sample_unrolling(
        space, ranked_unrollings(space)[0].factors, random.Random(0), None, SearchOptions()
    )
    assert start is not None
    calls = 0
    score = local_search._score

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal calls
        calls += 1
        return score(*args, **kwargs)

    monkeypatch.setattr(local_search, "_score", counted)
    for objective in ("energy", "latency"):
        for time_limit in (0.1, 10.0):
            calls = 0
            options = SearchOptions(objective, time_limit_s=time_limit)
            descend(space, start, options, None)
            assert calls == local_search.effort(options).evaluations_per_start


def test_points_asked_again_are_scored_once_and_the_memory_stays_bounded(monkeypatch) -> None:  # noqa: ANN001
    import joule.passes.mapper.outcome as outcome

    space = _downsample_space()
    scored = []
    model = outcome.score
    monkeypatch.setattr(outcome, "score", lambda *a: scored.append(1) or model(*a))
    monkeypatch.setattr(outcome, "REMEMBERED_SCORES", 2)
    rng = random.Random(0)
    points = []
    while len(points) < 3:
        factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
        orders = tuple(rng.choice(c) for c in space.order_candidates)
        if space.spatial_fits(factors):
            points.append(space.mapping(factors, orders))
    first = score_point(space, points[0])
    assert score_point(space, points[0]) is first and len(scored) == 1
    score_point(space, points[1])
    score_point(space, points[2])  # the third forgets the least recent, points[0]
    assert len(scored) == 3
    assert score_point(space, points[0]) == first and len(scored) == 4


def test_energy_ties_go_to_fewer_cycles() -> None:
    # MobileNetV2's features.5 depthwise layer: its groups at DRAM or on the array cost
    # the same energy; the array runs it 15x faster (30,240 against 451,584 cycles).
    nest = drop_unit_dims(conv2d("dw", k=1, c=1, groups=192, p=28, q=28, r=3, s=3))
    target = load_target("eyeriss")
    found = map_layer(nest, target, space_constraints(nest, target), options=SearchOptions())
    assert found.report.status == "OPTIMAL"
    assert found.cost.cycles < 100_000
