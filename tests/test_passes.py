"""The passes and the pass manager: golden IR before/after, dataflow constraints, print-after."""

from __future__ import annotations

import io

import pytest
from joule.errors import JouleError
from joule.ir import Network, parse_loopnest, print_loopnest
from joule.ir.builders import conv2d, matmul
from joule.module_text import parse_module
from joule.passes.canonicalize import Canonicalize, drop_unit_dims
from joule.passes.dataflow import AssignDataflow, space_constraints
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.tile import TileAndOrder
from joule.passmanager import PassManager
from joule.pipeline import MappingModule
from joule.targets import load_target

BEFORE = """\
loopnest @fc (op "Gemm", onnx "/fc/Gemm", relax "relax.matmul") {
  dims B0=1 M=1 N=10 K=32
  reduce K
  output "y" bits=32 shape=[1, 1, 10] at [B0, M, N]
  input "x" bits=32 shape=[1, 1, 32] at [B0, M, K]
  weight "w" bits=32 shape=[1, 32, 10] at [B0, K, N]
}
"""

EXPECTED = """\
loopnest @fc (op "Gemm", onnx "/fc/Gemm", relax "relax.matmul") {
  dims N=10 K=32
  reduce K
  // O[0, 0, N] += I[0, 0, K] * W[0, K, N]   (320 MACs)
  output "y" bits=32 shape=[1, 1, 10] at [0, 0, N]
  input "x" bits=32 shape=[1, 1, 32] at [0, 0, K]
  weight "w" bits=32 shape=[1, 32, 10] at [0, K, N]
}"""


def test_canonicalize_drops_unit_dims_golden() -> None:
    assert print_loopnest(drop_unit_dims(parse_loopnest(BEFORE))) == EXPECTED


def test_canonicalize_keeps_the_computation() -> None:
    nest = parse_loopnest(BEFORE)
    out = drop_unit_dims(nest)
    assert out.macs == nest.macs
    assert [t.shape for t in out.tensors] == [t.shape for t in nest.tensors]


@pytest.mark.parametrize(
    ("dataflow", "role"), [("ws", "weight"), ("os", "output"), ("is", "input")]
)
def test_stationary_dataflows_keep_pe_loops_off_the_stationary_tensor(
    dataflow: str, role: str
) -> None:
    target = load_target("eyeriss-isca16")
    nest = conv2d("c", k=8, c=8, p=8, q=8, r=3, s=3)
    c = space_constraints(nest, target, dataflow)
    relevant = nest.tensor(role).relevant_dims  # type: ignore[arg-type]
    pe = [i for i, lvl in enumerate(target.levels) if lvl.instances == target.pes]
    assert pe and all(not (c.temporal[i] & relevant) for i in pe)
    assert all(c.temporal[i] for i in pe)  # but the PEs still loop over other dims


def test_nlr_leaves_pes_without_temporal_loops() -> None:
    target = load_target("eyeriss-isca16")
    c = space_constraints(conv2d("c", k=4, c=4, p=4, q=4, r=3, s=3), target, "nlr")
    assert all(
        not c.temporal[i] for i, lvl in enumerate(target.levels) if lvl.instances == target.pes
    )


def test_row_stationary_keeps_filter_rows_inside_pes() -> None:
    target = load_target("eyeriss-isca16")
    nest = conv2d("c", k=4, c=4, p=4, q=4, r=3, s=3)
    space = MapSpace(nest, target, space_constraints(nest, target, "rs"))
    assert all(
        target.levels[s.level].instances == target.pes and s.axis is None for s in space.slots["R"]
    )


def test_row_stationary_falls_back_to_free_on_matmul() -> None:
    target = load_target("eyeriss")
    module = MappingModule.from_network(Network("m", [matmul("mm", m=4, n=4, k=4)], []), target)
    out = AssignDataflow("rs").apply(module)
    assert out.layers[0].constraints.dataflow == "free"
    assert "does not apply" in out.layers[0].notes[0]


def test_unknown_dataflow_is_a_user_error() -> None:
    with pytest.raises(JouleError, match="unknown dataflow"):
        space_constraints(matmul("mm", m=2, n=2, k=2), load_target("eyeriss"), "xyz")


def test_pass_manager_prints_ir_after_the_named_pass_and_times_every_pass() -> None:
    target = load_target("eyeriss")
    net = Network("m", [parse_loopnest(BEFORE)], [])
    log = io.StringIO()
    manager = PassManager(
        [Canonicalize(), AssignDataflow("free"), TileAndOrder("random", SearchOptions(samples=50))],
        print_after=frozenset({"canonicalize", "tile"}),
        out=log,
    )
    module = manager.run(MappingModule.from_network(net, target))
    text = log.getvalue()
    assert "IR after canonicalize" in text and "IR after tile" in text
    assert "IR after dataflow" not in text
    assert "dims N=10 K=32" in text
    assert [t.name for t in manager.timings] == ["canonicalize", "dataflow", "tile"]
    assert module.layers[0].result is not None
    after_tile = text.split("// ----- IR after tile -----\n")[1]
    assert parse_module(after_tile, net, target) == module  # the text is the module's state


def test_print_after_an_unknown_pass_is_refused() -> None:
    with pytest.raises(JouleError, match="unknown passes"):
        PassManager([Canonicalize()], print_after=frozenset({"tiling"}))


def test_identical_layers_are_solved_once() -> None:
    target = load_target("eyeriss")
    a = conv2d("a", k=4, c=4, p=4, q=4, r=3, s=3)
    b = conv2d("b", k=4, c=4, p=4, q=4, r=3, s=3)
    net = Network("m", [a, b], [])
    module = MappingModule.from_network(net, target)
    for p in (Canonicalize(), AssignDataflow(), TileAndOrder("random", SearchOptions(samples=20))):
        module = p.apply(module)
    assert module.layers[0].result is module.layers[1].result
