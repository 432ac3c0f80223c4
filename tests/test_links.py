"""Inter-PE links (Timeloop's link transfers): the model counts what the simulator counts.

Random small convolutions on link-capable targets (``eyeriss`` with Timeloop's
accounting; a 2-D array with links along X, every forwarded word charged to
both buffers, with and without multicast), random valid points of the mapspace
kept so that about half of them forward words: every level's reads, fills and
updates, the words the parent sends and the words forwarded equal the
loop-walking simulator's (tests/simulator.py), which applies Timeloop's
neighbour test step by step. Plus the worked example of
docs/timeloop-link-transfers.md with Timeloop's printed counters.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from joule.cost import evaluate
from joule.cost.model import ScalarBlocks, score
from joule.cost.nest import flatten
from joule.cost.terms import cost_terms
from joule.errors import TargetError
from joule.ir.builders import conv2d
from joule.ir.loopnest import LoopNest
from joule.mapping import LevelLoops, Loop, Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds.spatial import energy_bound_pj
from joule.passes.mapper.cpsat.solve import CpsatBlocks, build_model
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.mapper.proof.vector_model import Batch, VectorModel
from joule.targets import load_target
from joule.targets.spec import Links, Target
from ortools.sat.python import cp_model
from simulator import simulate

ARRAY_WITH_X_LINKS = """
name: links-x
description: "4x2 PE array, inputs forwarded between X neighbours"
word_bits: 8
clock_hz: 1.0e9
mac: {energy_pj: 1.0, source: test}
levels:
  - {name: DRAM, keeps: [input, weight, output], read_pj: 100, write_pj: 100, update_pj: 100,
     energy_source: test}
  - {name: buffer, keeps: [input, weight, output], capacity_words: 4096, read_pj: 6,
     write_pj: 6, update_pj: 6, energy_source: test}
  - {name: pe, keeps: [input, weight, output], capacity_words: 64, instances: 8,
     mesh_x: 4, mesh_y: 2, read_pj: 1, write_pj: 1.5, update_pj: 1.5, energy_source: test}
networks:
  DRAM: {multicast: true, spatial_reduction: false, hop_energy_pj: 0, source: test}
  buffer:
    multicast: MULTICAST
    spatial_reduction: true
    hop_energy_pj: 2
    links: {axis: X, energy_pj: 0.5}
    source: test
"""


def load_target_text(text: str) -> Target:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "target.yaml"
        path.write_text(text)
        return load_target(path)


def _targets() -> dict[str, Target]:
    return {
        "eyeriss": load_target("eyeriss"),
        "links-x": load_target_text(ARRAY_WITH_X_LINKS.replace("MULTICAST", "true")),
        "links-x-unicast": load_target_text(ARRAY_WITH_X_LINKS.replace("MULTICAST", "false")),
    }


def _random_conv(rng: random.Random, index: int) -> LoopNest:
    return conv2d(
        f"conv{index}",
        k=rng.choice([1, 2]),
        c=rng.choice([1, 2]),
        p=rng.choice([1, 2, 3]),
        q=rng.choice([2, 3, 4, 6]),
        r=rng.choice([1, 2]),
        s=rng.choice([2, 3, 4]),
        stride=rng.choice([1, 1, 2]),
        dilation=rng.choice([1, 1, 2]),
    )


def _points(target: Target, wanted: int, seed: str):  # noqa: ANN202
    """``wanted`` valid points with links and as many without, from random layers."""
    rng = random.Random(seed)
    with_links = without = 0
    for index in range(2000):
        nest = drop_unit_dims(_random_conv(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        if not all(space.factor_tuples[d] for d in space.dims):
            continue
        combos = list(space.order_combos())
        for _ in range(40):
            factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
            if not space.spatial_fits(factors):
                continue
            orders = rng.choice(combos)
            mapping = space.mapping(factors, orders)
            try:
                result = evaluate(nest, target, mapping)
            except Exception:  # noqa: BLE001 - over capacity: not a valid point
                continue
            linked = bool(result.link_words)
            if (with_links if linked else without) < wanted:
                with_links += linked
                without += not linked
                yield space, factors, orders, mapping, result
            if with_links >= wanted and without >= wanted:
                return
    raise AssertionError(f"only {with_links} linked and {without} other points found")


def _nonzero(words: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    kept = {lvl: {role: n for role, n in roles.items() if n} for lvl, roles in words.items()}
    return {lvl: roles for lvl, roles in kept.items() if roles}


@pytest.mark.parametrize("name", ["eyeriss", "links-x", "links-x-unicast"])
def test_model_equals_the_simulator_with_links(name: str) -> None:
    target = _targets()[name]
    for space, _, _, mapping, result in _points(target, 15, f"links-{name}"):
        nest = space.nest
        sim = simulate(nest, target, mapping)
        counts = {
            lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
            for lvl, roles in result.accesses.items()
        }
        where = (nest.name, mapping.loops_text())
        assert counts == sim.as_tuples(), where
        assert result.network_words == sim.network_words, where
        assert _nonzero(result.link_words) == _nonzero(sim.link_words), where


def test_no_links_without_the_network_option() -> None:
    target = _targets()["links-x"]
    levels = list(target.levels)
    levels[1] = dataclasses.replace(
        levels[1], network=dataclasses.replace(levels[1].network, links=None)
    )
    plain = dataclasses.replace(target, levels=tuple(levels))
    for space, _, _, mapping, result in _points(target, 3, "links-off"):
        nest = space.nest
        off = evaluate(nest, plain, mapping)
        assert not off.link_words
        sim = simulate(nest, plain, mapping)
        assert {
            lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
            for lvl, roles in off.accesses.items()
        } == sim.as_tuples()
        if result.link_words:
            # Links only move words from the parent's port to the neighbours.
            assert result.accesses["buffer"]["input"].reads < off.accesses["buffer"]["input"].reads


def _resnet18_layer1_conv1() -> tuple[LoopNest, Mapping]:
    """docs/timeloop-link-transfers.md §6: Joule's exported mapping of resnet18 layer1.0.conv1."""
    nest = drop_unit_dims(conv2d("layer1.0.conv1", k=64, c=64, p=56, q=56, r=3, s=3, pad=1))
    mapping = Mapping(
        (
            LevelLoops("DRAM", (Loop("Q", 4),)),
            LevelLoops(
                "shared_glb",
                (Loop("C", 2), Loop("P", 56), Loop("Q", 14)),
                (Loop("K", 4, "X"), Loop("C", 4, "Y"), Loop("S", 3, "Y")),
            ),
            LevelLoops("ifmap_spad"),
            LevelLoops("weights_spad", (Loop("C", 8), Loop("R", 3))),
            LevelLoops("psum_spad", (Loop("K", 16),)),
        )
    )
    return nest, mapping


def test_worked_example_reproduces_timeloops_counters() -> None:
    nest, mapping = _resnet18_layer1_conv1()
    result = evaluate(nest, load_target("eyeriss"), mapping)
    # Timeloop's timeloop-model.stats.txt (links on), totals over the 48 utilized PEs.
    assert result.accesses["shared_glb"]["input"].reads == 688_128
    assert result.accesses["ifmap_spad"]["input"].fills == 80_640 * 48
    assert result.accesses["ifmap_spad"]["input"].reads == 2_431_744 * 48
    assert result.link_words["shared_glb"]["input"] == 1_118_208 * 4  # 4 columns
    assert result.accesses["ifmap_spad"]["input"].reads == 116_723_712


def test_every_word_charge_pays_both_buffers_per_forwarded_word() -> None:
    nest, mapping = _resnet18_layer1_conv1()
    eyeriss = load_target("eyeriss")
    glb = eyeriss.levels[1]
    links = dataclasses.replace(glb.network.links, charge="every_word")
    levels = list(eyeriss.levels)
    levels[1] = dataclasses.replace(glb, network=dataclasses.replace(glb.network, links=links))
    target = dataclasses.replace(eyeriss, levels=tuple(levels))
    result = score(nest, target, flatten(mapping, tuple(lvl.name for lvl in target.levels)))
    linked = 1_118_208 * 4
    # Every PE still receives every word (from the GLB or a neighbour): fills as without
    # links; each forwarded word is one extra read in the sending PE.
    assert result.accesses["ifmap_spad"]["input"].fills == 150_528 * 48
    assert result.accesses["ifmap_spad"]["input"].reads == 2_408_448 * 48 + linked
    assert result.accesses["shared_glb"]["input"].reads == 688_128


def test_links_on_an_axis_without_fanout_is_a_target_error() -> None:
    text = ARRAY_WITH_X_LINKS.replace("MULTICAST", "true").replace(
        "mesh_x: 4, mesh_y: 2", "mesh_x: 1, mesh_y: 8"
    )
    with pytest.raises(TargetError, match="links.axis"):
        load_target_text(text)


def test_links_spec_defaults() -> None:
    assert Links(axis="Y") == Links(axis="Y", energy_pj=0.0, charge="every_word")


def test_a_tile_that_slides_by_less_than_itself_takes_nothing_from_its_neighbour() -> None:
    # Each step of Q moves a PE's input window (W extent 3) by 2 and the X neighbour's
    # window sits 2 further on: the 2 new columns are what the neighbour fetched one
    # step earlier. Timeloop compares only the sampled steps #0 and #1, where the
    # neighbour's delta is its whole first tile, and never links such partial deltas;
    # Joule's semantics follow it (docs/cost-model.md, "Inter-PE links").
    target = _targets()["links-x"]
    nest = drop_unit_dims(conv2d("slide", k=1, c=1, p=1, q=8, r=1, s=4))
    mapping = Mapping(
        (
            LevelLoops("DRAM"),
            LevelLoops("buffer", (Loop("Q", 4),), (Loop("S", 2, "X"),)),
            LevelLoops("pe", (Loop("S", 2), Loop("Q", 2))),
        )
    )
    result = evaluate(nest, target, mapping)
    assert result.tile_words["pe"]["input"] == 3
    assert not result.link_words
    sim = simulate(nest, target, mapping)
    assert not _nonzero(sim.link_words)
    assert sim.as_tuples() == {
        lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
        for lvl, roles in result.accesses.items()
    }


def test_a_whole_new_tile_is_taken_from_the_neighbour() -> None:
    # A window of 1 moving by 1: each step's whole tile is the word the X neighbour
    # fetched one step earlier; on 3 of 4 steps, for 1 of 2 PEs.
    target = _targets()["links-x"]
    nest = drop_unit_dims(conv2d("jump", k=1, c=1, p=1, q=4, r=1, s=2))
    mapping = Mapping(
        (
            LevelLoops("DRAM"),
            LevelLoops("buffer", (Loop("Q", 4),), (Loop("S", 2, "X"),)),
            LevelLoops("pe"),
        )
    )
    result = evaluate(nest, target, mapping)
    assert result.tile_words["pe"]["input"] == 1
    assert result.link_words == {"buffer": {"input": 3}}
    assert result.accesses["buffer"]["input"].reads == 2 * 4 - 3
    assert result.accesses["pe"]["input"].fills == 2 * 4  # every_word: all still filled
    assert result.accesses["pe"]["input"].reads == 8 + 3  # MACs + the forwarding reads


@pytest.mark.parametrize("name", ["eyeriss", "links-x", "links-x-unicast"])
def test_numpy_and_cpsat_backends_count_the_links_term_by_term(name: str) -> None:
    target = _targets()[name]
    terms_seen = 0
    for space, factors, orders, mapping, result in _points(target, 6, f"backends-{name}"):
        terms = cost_terms(space.nest, target)
        flat = flatten(mapping, space.level_names)
        scalar = [
            int(v) for _, v in terms.evaluate(ScalarBlocks(space.nest, flat, terms.keepers, target))
        ]
        rows = {d: np.array([f], dtype=np.int64) for d, f in factors.items()}
        batch = Batch(VectorModel(space), rows)
        assert [int(v[0]) for _, v in terms.evaluate(batch.blocks(orders))] == scalar
        energy, cycles = batch.evaluate(orders)
        assert energy[0] == pytest.approx(result.energy_pj, rel=1e-12)
        assert int(cycles[0]) == result.cycles
        built = build_model(space, SearchOptions(objective="energy"))
        built.fix(factors, orders)
        pairs = terms.evaluate(CpsatBlocks(built.form, orders))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert solver.Solve(built.form.model) == cp_model.OPTIMAL
        assert [solver.Value(v.expr) for _, v in pairs] == scalar, mapping.loops_text()
        terms_seen += sum(1 for t in terms.terms if t.kind == "link")
    assert terms_seen


@pytest.mark.parametrize("name", ["eyeriss", "links-x", "links-x-unicast"])
def test_bounds_stay_below_mappings_that_use_links(name: str) -> None:
    target = _targets()[name]
    for space, factors, orders, _, result in _points(target, 6, f"bounds-{name}"):
        assert energy_bound_pj(space) <= result.energy_pj * (1 + 1e-9)
        rows = {d: np.array([f], dtype=np.int64) for d, f in factors.items()}
        batch = Batch(VectorModel(space), rows)
        for free in range(1, space.levels):
            outer, rest = batch.floor(orders, free)
            assert outer[0] + rest[0] <= result.energy_pj * (1 + 1e-9)


def test_joule_evaluate_prints_the_forwarded_words(tmp_path, capsys) -> None:  # noqa: ANN001
    from joule.cli import main

    _, mapping = _resnet18_layer1_conv1()
    path = tmp_path / "mapping.json"
    path.write_text(mapping.to_json())
    spec = "conv:K=64,C=64,P=56,Q=56,R=3,S=3"
    assert main(["evaluate", "--target", "eyeriss", "--dims", spec, "--mapping", str(path)]) == 0
    out = capsys.readouterr().out
    assert "links        4,472,832 input words forwarded between PEs below shared_glb" in out
