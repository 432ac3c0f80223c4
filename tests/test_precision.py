"""Bits per tensor: energies per block, capacities in bits, the MAC by operand widths.

The simulator counts accesses, which a precision does not change; the energy
of each access is checked here against the block rule written out again
(an access moves ``block_bits``; ``block // bits`` values per access), on random
points of random small layers at several widths. Capacity packing: a tile that
overflows a buffer at 8 bits fits at 4 bits, in the model, the numpy backend and
the CP-SAT formulation alike.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from joule.cost import evaluate
from joule.cost.model import ScalarBlocks
from joule.cost.nest import flatten
from joule.cost.terms import cost_terms
from joule.driver import compile_model
from joule.errors import MappingError, OptionError
from joule.hardware.components import MAC_ADD_16B_PJ
from joule.ir.builders import conv2d
from joule.ir.network import Network
from joule.mapping import LevelLoops, Loop, Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.cpsat.solve import CpsatBlocks, build_model
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.mapper.proof.vector_model import Batch, VectorModel
from joule.passes.mapper.search.local_search import decode
from joule.targets import bundled_targets, load_target
from joule.targets.precision import Precision, PrecisionPlan, with_precision
from ortools.sat.python import cp_model
from simulator import simulate
from test_mapper_optimality import random_layer

WIDTHS = ("w4a8", "w2a4", "w8a8p24", "w16a16", "w3a5o6")


def _per_value_pj(energy_per_word: float, word: int, block: int | None, bits: int) -> float:
    """The block rule, written out: a block access costs ``energy x block / word``."""
    block = block or word
    per_block = energy_per_word * (block // word)
    if bits <= block:
        return per_block / (block // bits)
    return per_block * math.ceil(bits / block)


def _points(target, count: int, seed: str):  # noqa: ANN001, ANN202
    rng = random.Random(seed)
    found = 0
    for index in range(500):
        nest = drop_unit_dims(random_layer(rng, index))
        space = MapSpace(nest, target, space_constraints(nest, target))
        if not all(space.factor_tuples[d] for d in space.dims):
            continue
        for _ in range(20):
            factors = {d: rng.choice(space.factor_tuples[d]) for d in space.dims}
            if not space.spatial_fits(factors):
                continue
            orders = rng.choice(list(space.order_combos()))
            mapping = space.mapping(factors, orders)
            try:
                result = evaluate(nest, target, mapping)
            except MappingError:
                continue
            yield space, factors, orders, mapping, result
            found += 1
            if found == count:
                return
            break


@pytest.mark.parametrize("spec", WIDTHS)
def test_energy_is_the_simulators_counts_at_the_block_rule(spec: str) -> None:
    base = load_target("eyeriss")
    precision = Precision.parse(spec)
    target = with_precision(base, precision)
    output = precision.output or precision.input
    bits = {"weight": precision.weight, "input": precision.input}
    for space, _, _, mapping, result in _points(target, 8, f"precision-{spec}"):
        sim = simulate(space.nest, target, mapping)
        expected = result.mac_energy_pj
        for lvl in base.levels:
            for role, counts in sim.accesses[lvl.name].items():
                if role == "output":  # eyeriss: 16-bit partial sums in psum_spad
                    b = (precision.psum or 16) if lvl.name == "psum_spad" else output
                else:
                    b = bits[role]
                read = _per_value_pj(lvl.read_pj, lvl.word_bits, lvl.block_bits, b)
                write = _per_value_pj(lvl.write_pj, lvl.word_bits, lvl.block_bits, b)
                update = _per_value_pj(lvl.update_pj, lvl.word_bits, lvl.block_bits, b)
                expected += counts.reads * read + counts.fills * write + counts.updates * update
        assert result.energy_pj == pytest.approx(expected, rel=1e-12), mapping.loops_text()


def test_mac_energy_follows_the_operand_widths() -> None:
    eyeriss = load_target("eyeriss")
    mac = {s: with_precision(eyeriss, Precision.parse(s)).mac_energy_pj for s in WIDTHS}
    # The 16-bit adder's share of eyeriss's 1.40883 pJ MAC (Aladdin: 0.21 pJ per 32-bit
    # adder at 40 nm, scaled to 65 nm); the rest is the 8x8 multiplier.
    adder = MAC_ADD_16B_PJ
    multiplier = eyeriss.mac_energy_pj - adder
    assert 0.1 < adder / eyeriss.mac_energy_pj < 0.2  # Horowitz 45 nm: 0.03-0.1 vs 0.2 pJ
    assert mac["w16a16"] == pytest.approx(multiplier * 4 + adder)
    assert mac["w2a4"] == pytest.approx(multiplier * 8 / 64 + adder)
    assert mac["w8a8p24"] == pytest.approx(multiplier + adder * 24 / 16)


@pytest.mark.parametrize("name", bundled_targets())
def test_the_targets_own_widths_change_nothing(name: str) -> None:
    target = load_target(name)
    psum = max(lvl.word_bits for lvl in target.levels if "output" in lvl.keeps)
    native = Precision(target.word_bits, target.word_bits, psum=psum)
    assert with_precision(target, native) is target
    for space, _, _, mapping, result in _points(target, 4, f"native-{name}"):
        again = evaluate(space.nest, with_precision(target, native, rename=False), mapping)
        assert again == result


@pytest.mark.parametrize("spec", ["w4a8", "w2a4"])
def test_backends_agree_at_other_widths(spec: str) -> None:
    target = with_precision(load_target("eyeriss"), Precision.parse(spec))
    for space, factors, orders, mapping, result in _points(target, 4, f"backends-{spec}"):
        terms = cost_terms(space.nest, target)
        flat = flatten(mapping, space.level_names)
        blocks = ScalarBlocks(space.nest, flat, terms.keepers, target)
        scalar = [int(v) for _, v in terms.evaluate(blocks)]
        rows = {d: np.array([f], dtype=np.int64) for d, f in factors.items()}
        batch = Batch(VectorModel(space), rows)
        energy, _ = batch.evaluate(orders)
        assert energy[0] == pytest.approx(result.energy_pj, rel=1e-12)
        built = build_model(space, SearchOptions())
        built.fix(factors, orders)
        pairs = terms.evaluate(CpsatBlocks(built.form, orders))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert solver.Solve(built.form.model) == cp_model.OPTIMAL
        assert [solver.Value(v.expr) for _, v in pairs] == scalar


def _whole_layer_in_the_glb() -> tuple:  # noqa: ANN202
    """Every loop at the global buffer: 131,072 inputs and 4096 outputs, 8-bit words in a
    131,072-word buffer; at 4-bit activations they take half of it."""
    nest = drop_unit_dims(conv2d("wide", k=1, c=32, p=64, q=64, r=1, s=1))
    mapping = Mapping(
        (
            LevelLoops("DRAM"),
            LevelLoops("shared_glb", (Loop("C", 32), Loop("P", 64), Loop("Q", 64))),
            LevelLoops("ifmap_spad"),
            LevelLoops("weights_spad"),
            LevelLoops("psum_spad"),
        )
    )
    return nest, mapping


def test_narrow_activations_pack_into_the_same_buffer() -> None:
    eyeriss = load_target("eyeriss")
    nest, mapping = _whole_layer_in_the_glb()
    with pytest.raises(MappingError, match="shared_glb"):
        evaluate(nest, eyeriss, mapping)
    narrow = with_precision(eyeriss, Precision.parse("w8a4"))
    result = evaluate(nest, narrow, mapping)
    assert result.tile_words["shared_glb"] == {"input": 131_072, "output": 4096}
    # The numpy backend and CP-SAT draw the same line.
    for target, fits in ((eyeriss, False), (narrow, True)):
        space = MapSpace(nest, target, space_constraints(nest, target))
        factors, orders = decode(space, mapping)
        rows = {d: np.array([f], dtype=np.int64) for d, f in factors.items()}
        assert bool(Batch(VectorModel(space), rows).fits()[0]) is fits
        built = build_model(space, SearchOptions())
        built.fix(factors, orders)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert (solver.Solve(built.form.model) == cp_model.OPTIMAL) is fits


def test_precision_specs_and_files(tmp_path) -> None:  # noqa: ANN001
    assert Precision.parse("W4A8") == Precision(4, 8)
    assert Precision.parse("w4a4o8p24").label == "w4a4o8p24"
    for bad in ("w8", "a8w8", "w0a8", "w8a8x"):
        with pytest.raises(OptionError):
            Precision.parse(bad)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("default: w8a8\nlayers:\n  first: w4a8\n")
    plan = PrecisionPlan.parse(plan_file)
    assert plan.for_layer("first") == Precision(4, 8)
    assert plan.for_layer("other") == Precision(8, 8)


def test_compile_applies_a_precision_per_layer(tmp_path) -> None:  # noqa: ANN001
    first = conv2d("first", k=8, c=4, p=4, q=4, r=3, s=3)
    second = conv2d("second", k=8, c=8, p=4, q=4, r=3, s=3)
    network = Network(model="two", loopnests=[first, second], unmapped_ops=[])
    plan = tmp_path / "plan.yaml"
    plan.write_text("layers:\n  second: w4a4\n")
    options = {"time_limit": 0.3, "workers": 1}
    mixed = compile_model(network, "eyeriss", precision=plan, **options)
    native = compile_model(network, "eyeriss", **options)
    assert mixed.layers[0].cost.energy_pj == native.layers[0].cost.energy_pj
    assert mixed.layers[1].cost.energy_pj < native.layers[1].cost.energy_pj
    assert any("w4a4" in note for note in mixed.layers[1].notes)
    plan.write_text("layers:\n  third: w4a4\n")
    with pytest.raises(OptionError, match="third"):
        compile_model(network, "eyeriss", precision=plan, **options)


def test_timeloop_export_refuses_a_precision(tmp_path, capsys) -> None:  # noqa: ANN001
    from joule.cli import main  # noqa: PLC0415

    out = tmp_path / "out"
    args = ["compile", "resnet18", "--out", str(out), "--precision", "w4a8", "--emit", "timeloop"]
    assert main(args) == 2
    assert "#213" in capsys.readouterr().err
    assert not out.exists()
