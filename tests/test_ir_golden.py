"""Golden IR: a small model's module text after ``canonicalize``, ``dataflow`` and ``tile``.

The expected texts are ``tests/golden/tiny_after_<pass>.ir``: exactly what
``joule compile tiny.onnx --dataflow rs --mapper random --samples 50
--print-after <pass>`` prints, with the solve's wall time (the one number that
changes from run to run) written as 0.0. After a deliberate change to the
passes or the text form, regenerate them and review the diff::

    JOULE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_ir_golden.py
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import onnx
import pytest
from joule.cli import main
from joule.driver import compile_model
from joule.errors import IRParseError
from joule.ir import Network
from joule.lower import lower_model
from joule.models.graph import GraphBuilder
from joule.module_text import parse_module
from joule.passes.canonicalize import Canonicalize
from joule.passes.dataflow import AssignDataflow
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.tile import TileAndOrder
from joule.pipeline import MappingModule
from joule.targets import load_target

GOLDEN = Path(__file__).parent / "golden"
PASSES = ("canonicalize", "dataflow", "tile")
OPTIONS = {"dataflow": "rs", "mapper": "random", "samples": 50}
_HEADER = re.compile(r"^// ----- IR after (\w+) -----$", re.M)


def tiny_model() -> onnx.ModelProto:
    """A Conv (row stationary applies) and a Gemm (it does not: a note), batch 1."""
    g = GraphBuilder("tiny")
    x = g.input("input", [1, 4, 6, 6])
    y = g.conv(x, "conv", "/conv/Conv", cin=4, cout=8, kernel=3, pad=1)
    y = g.node("Relu", [y], "/relu/Relu")
    y = g.node("GlobalAveragePool", [y], "/pool/GlobalAveragePool")
    y = g.node("Flatten", [y], "/flatten/Flatten", axis=1)
    g.output(g.gemm(y, "fc", "/fc/Gemm", fin=8, fout=10))
    return g.model()


def sections(log: str) -> dict[str, str]:
    """Each pass's module text in ``--print-after`` output (up to the module's closing brace,
    whatever else the log holds)."""
    parts = _HEADER.split(log)
    return {
        name: text.lstrip("\n").split("\n}\n")[0] + "\n}\n"
        for name, text in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.fixture(scope="module")
def network() -> Network:
    return lower_model(tiny_model())


@pytest.fixture(scope="module")
def printed(network: Network) -> dict[str, str]:
    log = io.StringIO()
    compile_model(network, "eyeriss", **OPTIONS, workers=1, print_after=frozenset(PASSES), log=log)
    return sections(log.getvalue())


@pytest.mark.parametrize("name", PASSES)
def test_ir_after_each_pass_matches_its_golden_text(name: str, printed: dict[str, str]) -> None:
    text = re.sub(r"time_s=\S+", "time_s=0.0", printed[name])
    path = GOLDEN / f"tiny_after_{name}.ir"
    if os.environ.get("JOULE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", PASSES)
def test_ir_printed_after_each_pass_parses_back_to_the_same_text(
    name: str, printed: dict[str, str], network: Network
) -> None:
    module = parse_module(printed[name], network, load_target("eyeriss"))
    assert module.text() == printed[name]


def test_module_text_parses_back_to_the_same_module_state_after_every_pass(
    network: Network,
) -> None:
    target = load_target("eyeriss")
    module = MappingModule.from_network(network, target)
    options = SearchOptions(samples=OPTIONS["samples"])
    for p in (Canonicalize(), AssignDataflow("rs"), TileAndOrder("random", options, workers=1)):
        module = p.apply(module)
        assert parse_module(module.text(), network, target) == module, p.name
    assert all(layer.result is not None for layer in module.layers)
    assert any(layer.notes for layer in module.layers), "the Gemm notes the rs fallback"


def test_joule_compile_print_after_prints_ir_that_parses_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], network: Network
) -> None:
    model = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), model)
    argv = ["compile", str(model), "--out", str(tmp_path / "out"), "--no-cache", "--workers", "1"]
    argv += ["--dataflow", "rs", "--mapper", "random", "--samples", "50"]
    for name in PASSES:
        argv += ["--print-after", name]
    assert main(argv) == 0
    printed = sections(capsys.readouterr().err)
    assert list(printed) == list(PASSES)
    for text in printed.values():
        assert parse_module(text, network, load_target("eyeriss")).text() == text


def test_module_text_read_against_another_target_is_refused(
    printed: dict[str, str], network: Network
) -> None:
    with pytest.raises(IRParseError, match="target 'eyeriss', read against 'tpu-ws'"):
        parse_module(printed["dataflow"], network, load_target("tpu-ws"))


def test_a_mapping_without_the_solver_line_that_found_it_is_refused(
    printed: dict[str, str], network: Network
) -> None:
    text = re.sub(r"\n *solver .*", "", printed["tile"], count=1)
    with pytest.raises(IRParseError, match="without a solver line"):
        parse_module(text, network, load_target("eyeriss"))
