"""``joule lower``: text IR + summary, the exact JSON schema, and clean errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from joule.cli import main
from joule.ir import parse_loopnests
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lower", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_is_parseable_ir_plus_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "transformer")
    assert code == 0
    nests = parse_loopnests(out)  # the summary lines are // comments
    assert len(nests) == 8
    assert "total MACs 109,051,904" in out
    assert "/attn/Softmax  [Softmax]" in out


def test_json_output_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "resnet18", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"model", "total_macs", "loopnests", "unmapped_ops"}
    assert data["model"] == "resnet18" and data["total_macs"] == 1_814_073_344
    nest = data["loopnests"][0]
    assert set(nest) == {
        "name", "op", "onnx_node", "dims", "reduction_dims", "tensors", "macs"
    }  # fmt: skip
    assert nest["dims"] == {"N": 1, "K": 64, "C": 3, "P": 112, "Q": 112, "R": 7, "S": 7}
    assert nest["reduction_dims"] == ["C", "R", "S"]
    assert all(set(t) == {"name", "role", "bits", "projection"} for t in nest["tensors"])
    assert nest["tensors"][1]["projection"] == ["N", "C", "2*P + R - 3", "2*Q + S - 3"]
    assert all(set(u) == {"name", "op", "elements"} for u in data["unmapped_ops"])


def _dynamic_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", "seq", 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [8, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def test_dims_flags_bind_a_dynamic_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _dynamic_model(tmp_path / "dyn.onnx")
    code, out, _ = run_cli(capsys, str(path), "--batch", "2", "--dim", "seq=16", "--json")
    assert code == 0
    assert json.loads(out)["loopnests"][0]["dims"] == {"B0": 2, "M": 16, "N": 4, "K": 8}


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    unsupported = tmp_path / "unsupported.onnx"
    graph = helper.make_graph(
        [helper.make_node("Celu", ["x"], ["y"], name="the_celu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    unsupported.write_bytes(model.SerializeToString())
    dynamic = _dynamic_model(tmp_path / "dynamic.onnx")
    return {
        "missing file": ([str(tmp_path / "nope.onnx")], "does not exist"),
        "not onnx": ([str(junk)], "cannot read"),
        "unsupported op": ([str(unsupported)], "Celu (nodes: the_celu)"),
        "unbound dim": ([str(dynamic)], "--dim batch=VALUE"),
        "bad --dim": (["resnet18", "--dim", "seq"], "NAME=VALUE"),
    }


@pytest.mark.parametrize(
    "case", ["missing file", "not onnx", "unsupported op", "unbound dim", "bad --dim"]
)
def test_bad_input_exits_2_with_a_message_not_a_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = _bad_inputs(tmp_path)[case]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err
    assert "what to do:" in err and "Traceback" not in err
    assert "\n\n" not in err.strip()  # one paragraph


def test_installed_command_reports_errors_without_traceback(tmp_path: Path) -> None:
    args, expected = _bad_inputs(tmp_path)["unsupported op"]
    proc = subprocess.run(
        [sys.executable, "-m", "compiler", "lower", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr
