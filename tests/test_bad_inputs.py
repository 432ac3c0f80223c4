"""The bad-input corpus: every case exits 2 with a short what/where/what-to-do message.

The corpus is generated here (nothing is checked in): broken ONNX files,
models Joule must refuse, unusable output directories and caches, broken or
too-small target files. Each case runs through the CLI (``joule.cli.main``
in this process, so no exception can hide; a few also as a real subprocess to
pin the exit status and the absence of a traceback). Each must exit 2, print
a few lines naming what is wrong, where (file, node or field) and what to do,
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
from joule.cli import main
from joule.models import bundled_model
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
    return Case(name, lambda tmp: [make(tmp)], expect)


def _target_case(name: str, text: str, *expect: str) -> Case:
    return Case(name, lambda tmp: ["transformer", "--target", _target(tmp, text)], expect)


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
    Case(
        "out_dir_is_a_file",
        lambda t: ["transformer", "--out", str(_touch(t / "taken"))],
        ("is a file", "--out"),
    ),
    Case(
        "out_dir_unwritable",
        lambda t: ["transformer", "--out", str(_touch(t / "plain") / "sub")],
        ("cannot write to the output directory", "--out"),
    ),
    Case(
        "cache_unusable",
        lambda t: ["transformer", "--cache", str(_touch(t / "blocker") / "c.sqlite")],
        ("cannot use the result cache", "--cache"),
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
    argv = case.build(tmp)
    defaults = {"--out": str(out), "--time-limit": "0.2", "--workers": "1"}
    if "--cache" not in argv:
        argv.append("--no-cache")
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    return ["compile", *argv]


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
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
