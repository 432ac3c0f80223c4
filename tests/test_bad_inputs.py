"""The bad-input corpus: every case exits 2 with a short what/where/what-to-do message.

The corpus is generated here (nothing is checked in), one class of bad input
per block: broken ONNX files; models TVM would crash on (shapes checked before
import); unusable output directories and caches; broken or too-small target
files; numeric options out of range (``joule compile``, ``joule bench`` and the
Python API); ``joule evaluate``'s layer specs and mappings; Timeloop mapping and
problem files. Each case runs through the CLI (``joule.cli.main`` in this
process, so no exception can hide; a few also as a real subprocess to pin the
exit status and the absence of a traceback). Each must exit 2, print a few
lines naming what is wrong, where (file, node, field or flag) and what to do,
write nothing outside ``--out`` and leave no schedule or temporary file in it.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from joule import OptionError, compile_model
from joule.bench import BenchConfig, run_suite
from joule.cli import main
from joule.models import bundled_model
from joule.option_checks import check_options
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 6


def _matmul(a: list, b: list, *, op: str = "MatMul", opset: int | None = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"], name="mm")],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", opset)] if opset is not None else []
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model


def _node(
    op: str, inputs: dict[str, list[int]], elem: int = TensorProto.FLOAT, **attrs: object
) -> onnx.ModelProto:
    """A one-node model (node named after its op) whose inputs have the given shapes."""
    graph = helper.make_graph(
        [helper.make_node(op, list(inputs), ["y"], name=op.lower(), **attrs)],
        "g",
        [helper.make_tensor_value_info(n, elem, shape) for n, shape in inputs.items()],
        [helper.make_tensor_value_info("y", elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _conv(x: list[int], w: list[int], **attrs: object) -> onnx.ModelProto:
    return _node("Conv", {"x": x, "w": w}, **attrs)


def _complex_weight() -> onnx.ModelProto:
    model = _matmul([4, 8], [8, 4])
    model.graph.input.pop()
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((8, 4), np.complex64), "b"))
    return model


def _cast_to_string() -> onnx.ModelProto:
    model = _node("Cast", {"a": [4, 8]}, to=TensorProto.STRING)
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.STRING
    return model


def _celu() -> onnx.ModelProto:
    """A valid model (the checker accepts it) using an op TVM's importer lacks."""
    model = _matmul([4, 8], [8, 4])
    model.graph.node.insert(0, helper.make_node("Celu", ["a"], ["c"], name="odd"))
    model.graph.node[1].input[0] = "c"
    return model


def _cycle() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Add", ["a", "w"], ["z"], name="add"),
        helper.make_node("Relu", ["z"], ["w"], name="relu"),
        helper.make_node("MatMul", ["z", "b"], ["y"], name="mm"),
    ]
    model = _matmul([4, 8], [8, 4])
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _external(location: str) -> onnx.ModelProto:
    """A model whose weight ``b`` lives in an external file at ``location``."""
    model = _matmul([4, 8], [8, 4])
    weight = numpy_helper.from_array(np.zeros((8, 4), np.float32), "b")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "128")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    model.graph.initializer.append(weight)
    return model


def _save(tmp: Path, name: str, model: onnx.ModelProto | bytes) -> str:
    path = tmp / name
    data = model if isinstance(model, bytes) else model.SerializeToString()
    path.write_bytes(data)
    return str(path)


TARGET_OK = """\
name: small
description: "a valid two-level target, edited below"
word_bits: 16
clock_hz: 1.0e9
mac: {energy_pj: 1.0, source: test}
levels:
  - name: DRAM
    keeps: [input, weight, output]
    read_pj: 200.0
    write_pj: 200.0
    update_pj: 200.0
    energy_source: test
  - name: buffer
    keeps: [input, weight, output]
    capacity_words: 4096
    read_pj: 6.0
    write_pj: 6.0
    update_pj: 6.0
    energy_source: test
"""


# DRAM may loop only over N, so every other dim sits wholly in a 64-word buffer.
TARGET_TOO_SMALL = TARGET_OK.replace(
    "    energy_source: test\n  - name: buffer",
    "    energy_source: test\n    constraints:\n      temporal_dims: [N]\n  - name: buffer",
).replace("capacity_words: 4096", "capacity_words: 64")


def _target(tmp: Path, text: str) -> str:
    path = tmp / "target.yaml"
    path.write_text(text)
    return str(path)


@dataclass
class Case:
    """One bad input: how to build its argv in a folder, and words its message must contain."""

    name: str
    build: Callable[[Path], list[str]]
    expect: tuple[str, ...]


def _model_case(name: str, make: Callable[[Path], str], *expect: str) -> Case:
    return Case(name, lambda tmp: ["compile", make(tmp)], expect)


def _bad_model(name: str, model: onnx.ModelProto, *expect: str) -> Case:
    return _model_case(name, lambda t: _save(t, f"{name}.onnx", model), *expect)


def _target_case(name: str, text: str, *expect: str) -> Case:
    return Case(
        name, lambda tmp: ["compile", "transformer", "--target", _target(tmp, text)], expect
    )


def _option_case(name: str, args: list[str], *expect: str) -> Case:
    return Case(name, lambda tmp: ["compile", "transformer", *args], expect)


TIMELOOP = ROOT / "tests" / "data" / "timeloop"
LAYER = ["--timeloop-problem", str(TIMELOOP / "problems" / "alexnet_conv1.yaml")]


def _timeloop_case(name: str, file: str, text: str | bytes, *expect: str) -> Case:
    """``joule evaluate`` of AlexNet CONV1 on eyeriss with the Timeloop mapping ``text``."""

    def build(tmp: Path) -> list[str]:
        path = tmp / file
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["evaluate", *LAYER, "--target", "eyeriss", "--timeloop-mapping", str(path)]

    return Case(name, build, (file, *expect))


GOOD = bundled_model("transformer").SerializeToString()
HUGE_EXTENT = 2**33
HUGE_MACS = (2**21, 2**21, 2**22)  # extents within limits, 2^64 MACs: beyond 2^63

CASES = [
    _model_case(
        "truncated_protobuf",
        lambda t: _save(t, "cut.onnx", GOOD[: len(GOOD) // 2]),
        "cannot read",
        "cut.onnx",
        "complete ONNX",
    ),
    _model_case(
        "random_bytes",
        lambda t: _save(t, "noise.onnx", random.Random(7).randbytes(4096)),
        "cannot read",
        "noise.onnx",
    ),
    _model_case(
        "protobuf_that_is_not_a_model",
        lambda t: _save(
            t,
            "tensor.onnx",
            numpy_helper.from_array(np.ones((3, 3), np.float32)).SerializeToString(),
        ),
        "holds no ONNX graph",
        "tensor.onnx",
    ),
    _model_case(
        "unsupported_opset",
        lambda t: _save(t, "opset99.onnx", _matmul([4, 8], [8, 4], opset=99)),
        "opset 99",
        "opset_import",
    ),
    _model_case(
        "missing_opset",
        lambda t: _save(t, "noopset.onnx", _matmul([4, 8], [8, 4], opset=None)),
        "imports no ONNX opset",
        "opset_import",
    ),
    _model_case(
        "unknown_op",
        lambda t: _save(t, "foobar.onnx", _matmul([4, 8], [8, 4], op="FooBar")),
        "FooBar",
        "node mm",
    ),
    _model_case(
        "op_tvm_cannot_import",
        lambda t: _save(t, "celu.onnx", _celu()),
        "TVM's ONNX importer does not support",
        "Celu (nodes: odd)",
    ),
    _model_case(
        "dynamic_dim_unbound",
        lambda t: _save(t, "dyn.onnx", _matmul(["seq", 8], [8, 4])),
        "'seq'",
        "--dim seq=VALUE",
    ),
    _model_case(
        "zero_dim",
        lambda t: _save(t, "zero.onnx", _matmul([0, 8], [8, 4])),
        "size 0",
        "graph input 'a'",
    ),
    _model_case(
        "negative_dim",
        lambda t: _save(t, "neg.onnx", _matmul([-3, 8], [8, 4])),
        "size -3",
        "graph input 'a'",
    ),
    _model_case(
        "extent_beyond_2_31",
        lambda t: _save(t, "tall.onnx", _matmul([HUGE_EXTENT, 8], [8, 4])),
        f"{HUGE_EXTENT:,}",
        "2^22",
        "ONNX node mm",
    ),
    _model_case(
        "macs_beyond_2_63",
        lambda t: _save(t, "vast.onnx", _matmul(list(HUGE_MACS[:2]), list(HUGE_MACS[1:]))),
        f"{math.prod(HUGE_MACS):,} MACs",  # the exact count, no overflow
        "2^40",
        "ONNX node mm",
    ),
    _model_case(
        "graph_with_a_cycle",
        lambda t: _save(t, "cycle.onnx", _cycle()),
        "cycle: add -> relu -> add",
        "node add",
    ),
    _model_case(
        "external_data_outside_the_folder",
        lambda t: _save(t, "ext.onnx", _external("../secret.bin")),
        "outside the model's folder",
        "tensor 'b'",
    ),
    _model_case(
        "external_data_absolute_path",
        lambda t: _save(t, "abs.onnx", _external("/etc/passwd")),
        "outside the model's folder",
        "tensor 'b'",
    ),
    # Models whose shapes TVM's importer or LegalizeOps would crash on: checked before import.
    _bad_model(
        "conv_group_does_not_divide_channels",
        _conv([1, 6, 8, 8], [4, 3, 3, 3], group=4),
        "group=4 does not divide its 6 input channels",
        "node conv (Conv), attribute group",
    ),
    _bad_model(
        "conv_weight_channels_disagree_with_input",
        _conv([1, 3, 8, 8], [4, 5, 3, 3]),
        "takes 5 channels x group 1 = 5 input channels, but the input has 3",
        "input 'w'",
    ),
    _bad_model(
        "conv_kernel_larger_than_unpadded_input",
        _conv([1, 3, 2, 2], [4, 3, 3, 3]),
        "3x3 kernel is larger than its 2x2 input 'x'",
        "attributes kernel_shape/pads/dilations",
    ),
    _bad_model(
        "conv_dilated_kernel_larger_than_padded_input",
        _conv([1, 4, 8, 8], [4, 4, 3, 3], dilations=[5, 5], pads=[1, 1, 1, 1]),
        "(dilated to 11x11)",
        "padded to 10x10",
    ),
    _bad_model(
        "conv_zero_stride",
        _conv([1, 3, 8, 8], [4, 3, 3, 3], strides=[0, 0]),
        "has strides [0, 0]",
        "attribute strides",
    ),
    _bad_model(
        "maxpool_kernel_larger_than_input",
        _node("MaxPool", {"x": [1, 3, 3, 3]}, kernel_shape=[5, 5]),
        "MaxPool node maxpool: its 5x5 kernel is larger than its 3x3 input",
        "node maxpool (MaxPool)",
    ),
    _bad_model(
        "matmul_inner_dims_differ",
        _matmul([4, 8], [6, 4]),
        "inner dimensions differ: 'a' [4, 8] has 8 columns, 'b' [6, 4] has 6 rows",
        "node mm (MatMul)",
    ),
    _bad_model(
        "matmul_batch_dims_do_not_broadcast",
        _matmul([2, 4, 8], [3, 8, 4]),
        "do not broadcast (2 vs 3)",
        "node mm (MatMul)",
    ),
    _bad_model(
        "gemm_inner_dims_differ_with_transB",
        _node("Gemm", {"a": [4, 8], "b": [4, 6]}, transB=1),
        "'a' [4, 8] has 8 columns, 'b' [4, 6] has 6 rows (transA=0, transB=1)",
        "node gemm (Gemm)",
    ),
    _bad_model(
        "gemm_bias_does_not_broadcast",
        _node("Gemm", {"a": [4, 8], "b": [8, 4], "c": [3]}),
        "bias 'c' [3] does not broadcast to the [4, 4] product",
        "input 'c'",
    ),
    _bad_model(
        "add_shapes_do_not_broadcast",
        _node("Add", {"a": [2, 4], "b": [3, 4]}),
        "ONNX shape inference rejects node add (Add)",
        "Incompatible dimensions",
    ),
    _bad_model(
        "string_typed_input",
        _node("MatMul", {"a": [4, 8], "b": [8, 4]}, TensorProto.STRING),
        "graph input 'a' has element type STRING, which TVM cannot import",
        "string_typed_input.onnx: graph input 'a'",
    ),
    _bad_model(
        "complex_weight",
        _complex_weight(),
        "initializer 'b' has element type COMPLEX64",
        "numeric tensors",
    ),
    _bad_model(
        "string_typed_node_output",
        _cast_to_string(),
        "output 'y' of node cast has element type STRING",
        "node cast (Cast)",
    ),
    # Output directory and cache.
    Case(
        "out_dir_is_a_file",
        lambda t: ["compile", "transformer", "--out", str(_touch(t / "taken"))],
        ("is a file", "--out"),
    ),
    Case(
        "out_dir_unwritable",
        lambda t: ["compile", "transformer", "--out", str(_touch(t / "plain") / "sub")],
        ("cannot write to the output directory", "--out"),
    ),
    Case(
        "cache_unusable",
        lambda t: ["compile", "transformer", "--cache", str(_touch(t / "blocker") / "c.sqlite")],
        ("cannot use the result cache", "--cache"),
    ),
    # Targets.
    Case(
        "target_file_missing",
        lambda t: ["compile", "transformer", "--target", str(t / "absent.yaml")],
        ("does not exist", "absent.yaml", "bundled target"),
    ),
    Case(
        "target_unknown_bundled_name",
        lambda t: ["compile", "transformer", "--target", "eyerisss"],
        ("unknown target 'eyerisss'", "eyeriss, "),
    ),
    _target_case(
        "target_malformed_yaml", TARGET_OK.replace("levels:", "levels: [oops"), "target.yaml"
    ),
    _target_case(
        "target_missing_field",
        TARGET_OK.replace("clock_hz: 1.0e9\n", ""),
        "clock_hz",
        "target.yaml",
    ),
    _target_case(
        "target_wrong_type",
        TARGET_OK.replace("capacity_words: 4096", "capacity_words: lots"),
        "levels[1].capacity_words",
    ),
    _target_case(
        "target_negative_capacity",
        TARGET_OK.replace("capacity_words: 4096", "capacity_words: -4096"),
        "levels[1].capacity_words",
    ),
    _target_case(
        "target_network_names_unknown_level",
        TARGET_OK + "networks:\n  scratch: {multicast: true, hop_energy_pj: 1.0, source: x}\n",
        "scratch",
        "networks",
    ),
    _target_case(
        "target_too_small_for_a_layer",
        TARGET_TOO_SMALL,
        "cannot be mapped",
        "buffer",
        "target.yaml",
    ),
    _target_case(
        "target_without_levels",
        TARGET_OK[: TARGET_OK.index("levels:")] + "levels: []\n",
        "levels must be a non-empty list",
        "field levels",
    ),
    _target_case(
        "target_unknown_tensor_role",
        TARGET_OK.replace(
            "keeps: [input, weight, output]\n    capacity", "keeps: [weights]\n    capacity"
        ),
        "levels[1].keeps[0]",
        "did you mean 'weight'?",
    ),
    _target_case(
        "target_repeated_level_name",
        TARGET_OK.replace("name: buffer", "name: DRAM"),
        "repeats the level name 'DRAM'",
        "levels[1].name",
    ),
    _target_case(
        "target_misspelled_key",
        TARGET_OK.replace("word_bits: 16", "wordbits: 16"),
        "wordbits is not a known key",
        "did you mean 'word_bits'?",
    ),
    _target_case(
        "target_energy_not_finite",
        TARGET_OK.replace("read_pj: 6.0", "read_pj: .nan"),
        "levels[1].read_pj must be finite",
    ),
    # Numeric options, at `joule compile` and `joule bench` (the API: a test below).
    _option_case(
        "time_limit_negative",
        ["--time-limit", "-1"],
        "--time-limit must be greater than 0, not -1.0",
        "joule compile --time-limit",
    ),
    _option_case(
        "time_limit_not_finite", ["--time-limit", "inf"], "--time-limit must be a finite number"
    ),
    _option_case("workers_zero", ["--workers", "0"], "--workers must be at least 1, not 0"),
    _option_case(
        "samples_zero",
        ["--mapper", "random", "--samples", "0"],
        "--samples must be at least 1, not 0",
    ),
    _option_case(
        "min_utilization_zero",
        ["--min-utilization", "0"],
        "--min-utilization must be in (0, 1], not 0.0",
    ),
    _option_case(
        "min_utilization_above_one",
        ["--min-utilization", "1.5"],
        "--min-utilization must be in (0, 1], not 1.5",
    ),
    _option_case("max_cycles_zero", ["--max-cycles", "0"], "--max-cycles must be at least 1"),
    _option_case("batch_zero", ["--batch", "0"], "--batch = 0 is not a positive size"),
    _option_case("dim_without_a_value", ["--dim", "seq"], "cannot read --dim 'seq'"),
    Case(
        "bench_workers_zero",
        lambda t: ["bench", "dataflows", "--workers", "0"],
        ("--workers must be at least 1", "joule bench --workers"),
    ),
    Case(
        "bench_time_limit_zero",
        lambda t: ["bench", "solver", "--time-limit", "0"],
        ("--time-limit must be greater than 0", "joule bench --time-limit"),
    ),
    # joule evaluate: the layer and the mapping.
    Case(
        "evaluate_layer_spec_with_zero_extent",
        lambda t: ["evaluate", "--dims", "conv:K=0,C=3,P=4,Q=4,R=3,S=3", "--target", "eyeriss"],
        ("bad value in 'K=0'", "--dims conv:K=0"),
    ),
    Case(
        "evaluate_without_a_mapping",
        lambda t: ["evaluate", "--dims", "matmul:M=2,N=2,K=2", "--target", "eyeriss"],
        ("give exactly one mapping", "joule evaluate arguments"),
    ),
    Case(
        "evaluate_mapping_not_json",
        lambda t: [
            "evaluate",
            "--dims",
            "matmul:M=2,N=2,K=2",
            "--target",
            "eyeriss",
            "--mapping",
            _save(t, "m.json", b"{levels"),
        ],
        ("mapping is not valid JSON", "m.json"),
    ),
    # Timeloop mappings (joule evaluate --timeloop-mapping) and problems.
    Case(
        "timeloop_mapping_missing",
        lambda t: [
            "evaluate",
            *LAYER,
            "--target",
            "eyeriss",
            "--timeloop-mapping",
            str(t / "no.yaml"),
        ],
        ("cannot read Timeloop mapping", "no.yaml"),
    ),
    _timeloop_case(
        "timeloop_mapping_not_yaml", "m.yaml", "mapping: [\n", "not valid YAML", "line 2"
    ),
    _timeloop_case("timeloop_mapping_not_text", "m.yaml", b"\xff\xfe\x00", "not a text file"),
    _timeloop_case(
        "timeloop_mapping_without_mapping_list", "m.yaml", "foo: 1\n", "no top-level 'mapping:'"
    ),
    _timeloop_case(
        "timeloop_mapping_entry_without_target",
        "m.yaml",
        "mapping:\n- hello\n",
        "entry 0 has no 'target'",
    ),
    _timeloop_case(
        "timeloop_mapping_unknown_entry_type",
        "m.yaml",
        "mapping:\n- {target: DRAM, type: sideways}\n",
        "unknown mapping entry type 'sideways'",
        "mapping[0] (DRAM sideways)",
    ),
    _timeloop_case(
        "timeloop_mapping_unreadable_factors",
        "m.yaml",
        "mapping:\n- {target: DRAM, type: temporal, factors: C-2, permutation: C}\n",
        "cannot read factors 'C-2'",
    ),
    _timeloop_case(
        "timeloop_mapping_factor_zero",
        "m.yaml",
        "mapping:\n- {target: DRAM, type: temporal, factors: C0 M1, permutation: CM}\n",
        "factor 0",
    ),
    _timeloop_case(
        "timeloop_mapping_split_not_a_number",
        "m.yaml",
        "mapping:\n- {target: shared_glb, type: spatial, factors: M2 C2, permutation: MC, "
        "split: half}\n",
        "split must be a whole number >= 0, not 'half'",
    ),
    _timeloop_case(
        "timeloop_mapping_keep_not_a_list",
        "m.yaml",
        "mapping:\n- {target: shared_glb, type: datatype, keep: 5}\n",
        "keep must be a list of data spaces, not 5",
    ),
    _timeloop_case(
        "timeloop_mapping_unknown_data_space",
        "m.yaml",
        "mapping:\n- {target: shared_glb, type: datatype, keep: [Biases]}\n",
        "unknown data space 'Biases'",
    ),
    _timeloop_case(
        "timeloop_mapping_level_not_in_target",
        "m.yaml",
        "mapping:\n- {target: L2_buffer, type: temporal, factors: C2, permutation: C}\n",
        "'L2_buffer' has temporal loops",
        "no such level",
    ),
    _timeloop_case(
        "timeloop_mapping_bypass_differs_from_target",
        "m.yaml",
        "mapping:\n- {target: shared_glb, type: datatype, keep: [Weights, Inputs]}\n",
        "keeps ['input', 'weight'] at shared_glb",
    ),
    _timeloop_case(
        "timeloop_mapping_loop_over_unknown_dim",
        "m.yaml",
        "mapping:\n- {target: DRAM, type: temporal, factors: Z2, permutation: Z}\n",
        "a loop over Z, not a dim of @alexnet_conv1",
    ),
    _timeloop_case(
        "timeloop_map_txt_unreadable_line", "m.map.txt", "DRAM [ ]\n| while true\n", "line 2"
    ),
    _timeloop_case("timeloop_map_txt_without_levels", "m.map.txt", "\n\n", "no levels"),
    Case(
        "timeloop_problem_negative_extent",
        lambda t: [
            "evaluate",
            "--timeloop-problem",
            _save(t, "p.yaml", b"problem: {instance: {C: -1, M: 1, R: 1, S: 1, N: 1, P: 1, Q: 1}}"),
            "--target",
            "eyeriss",
            "--timeloop-mapping",
            str(TIMELOOP / "mappings" / "alexnet_conv1.map.yaml"),
        ],
        ("dim C has extent -1", "p.yaml"),
    ),
]


def _touch(path: Path) -> Path:
    path.write_text("not a directory\n")
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
        for p in sorted(root.rglob("*"))
    }


def _argv(case: Case, tmp: Path, out: Path) -> list[str]:
    """The case's argv; ``compile`` and ``bench`` get ``--out`` and fast settings unless set."""
    argv = case.build(tmp)
    defaults: dict[str, str] = {}
    if argv[0] in ("compile", "bench"):
        defaults = {"--out": str(out), "--time-limit": "0.2", "--workers": "1"}
    if argv[0] == "compile" and "--cache" not in argv:
        argv.append("--no-cache")
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    return argv


def _check_message(err: str, case: Case) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert lines and lines[0].startswith("error: "), err
    assert len(lines) <= MAX_LINES, err
    assert any(ln.startswith("  where: ") for ln in lines), err
    assert any(ln.startswith("  what to do: ") for ln in lines), err
    for word in case.expect:
        assert word in err, f"{word!r} missing from:\n{err}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_with_a_short_message_and_writes_nothing(
    case: Case,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a stray relative write lands where the snapshot sees it
    (tmp_path / "models").mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 128)  # a real file the model must not read
    out = tmp_path / "out"
    argv = _argv(case, tmp_path / "models", out)
    before = _snapshot(tmp_path)
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured.err
    _check_message(captured.err, case)
    after = _snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed <= {"out"}, f"written outside --out: {sorted(changed)}"
    if out.is_dir():
        assert list(out.iterdir()) == [], "a failed compile left files in --out"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"time_limit": -1.0}, "time_limit must be greater than 0, not -1.0"),
        ({"time_limit": float("nan")}, "time_limit must be a finite number"),
        ({"workers": 0}, "workers must be at least 1, not 0"),
        ({"workers": 1.5}, "workers must be a whole number, not 1.5"),
        ({"samples": 0}, "samples must be at least 1"),
        ({"max_cycles": 0}, "max_cycles must be at least 1"),
        ({"min_utilization": 0.0}, "min_utilization must be in (0, 1], not 0.0"),
        ({"min_utilization": "0.5"}, "min_utilization must be a number, not '0.5'"),
    ],
)
def test_compile_model_refuses_out_of_range_arguments_by_their_names(
    kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(OptionError) as err:
        compile_model("transformer", "eyeriss", **kwargs)  # type: ignore[arg-type]
    assert words in err.value.message()
    assert err.value.where == f"compile_model({next(iter(kwargs))}=...)"
    assert err.value.hint.startswith("give ")


def test_run_suite_refuses_an_out_of_range_config_before_writing(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="workers must be at least 1") as err:
        run_suite("solver", tmp_path / "out", BenchConfig(workers=0))
    assert err.value.where == "BenchConfig(workers=...)"
    with pytest.raises(OptionError, match="time_limit_s must be greater than 0"):
        run_suite("solver", tmp_path / "out", BenchConfig(time_limit_s=-2.0))
    assert not (tmp_path / "out").exists()


def test_option_ranges_accept_their_boundaries_and_absent_values() -> None:
    check_options("f", time_limit=1e-3, workers=1, samples=1, max_cycles=1, min_utilization=1.0)
    check_options("f", workers=np.int64(2), time_limit=np.float32(0.5), max_cycles=None)


def test_truncated_models_are_refused_at_every_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Protobuf can parse a prefix that ends on a field boundary: those must fail clearly too.
    for cut in (1, 16, 100, len(GOOD) // 3, len(GOOD) - 1):
        path = _save(tmp_path, f"cut{cut}.onnx", GOOD[:cut])
        status = main(["compile", path, "--out", str(tmp_path / "out"), "--no-cache"])
        err = capsys.readouterr().err
        assert status == 2, err
        assert err.startswith("error: ") and "Traceback" not in err and f"cut{cut}.onnx" in err


def _run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_bad_model_in_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _save(tmp_path, "noise.onnx", random.Random(1).randbytes(512))
    proc = _run_cli(["compile", path, "--out", "out", "--no-cache"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: cannot read") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_external_data_fifo_outside_the_folder_is_never_opened(tmp_path: Path) -> None:
    # Opening a FIFO with no writer blocks forever: a run that ends proves it was not read.
    os.mkfifo(tmp_path / "pipe.bin")
    (tmp_path / "models").mkdir()
    path = _save(tmp_path / "models", "ext.onnx", _external("../pipe.bin"))
    proc = _run_cli(["compile", path, "--out", "out", "--no-cache"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "outside the model's folder" in proc.stderr and "Traceback" not in proc.stderr


def test_external_data_inside_the_folder_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The refusal is about the location only: weights next to the model load normally.
    (tmp_path / "w.bin").write_bytes(np.ones((8, 4), np.float32).tobytes())
    path = _save(tmp_path, "ext.onnx", _external("w.bin"))
    assert main(["lower", path]) == 0, capsys.readouterr().err
    assert "loopnest @mm" in capsys.readouterr().out


def test_output_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    # As `joule targets eyeriss | head -c 1` when head has already gone: the read end
    # is closed before Joule writes, so every write fails with EPIPE.
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", "targets", "eyeriss"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == "", err
