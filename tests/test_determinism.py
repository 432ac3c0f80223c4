"""schedule.json is byte-identical (apart from time fields) across runs, workers and the cache.

The model is tiny so the test is fast; solves are bounded by CP-SAT's
deterministic time only, so machine load cannot change where a search stops.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from joule.cli import main
from joule.schedule import strip_times
from onnx import TensorProto, helper


def _tiny_model() -> onnx.ModelProto:
    """Two same-shape MatMuls (one shared solve) and a 1x1 convolution."""
    value = helper.make_tensor_value_info
    nodes = [
        helper.make_node("MatMul", ["a", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
        helper.make_node("Conv", ["x", "wc"], ["z"], name="pw", kernel_shape=[1, 1]),
    ]
    inputs = [
        value("a", TensorProto.FLOAT, [4, 4]),
        value("w1", TensorProto.FLOAT, [4, 4]),
        value("w2", TensorProto.FLOAT, [4, 4]),
        value("x", TensorProto.FLOAT, [1, 2, 2, 2]),
        value("wc", TensorProto.FLOAT, [4, 2, 1, 1]),
    ]
    outputs = [value("y", TensorProto.FLOAT, None), value("z", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _canonical(path: Path) -> str:
    """The schedule as text without time fields: what must match byte for byte."""
    return json.dumps(strip_times(json.loads(path.read_text())), indent=1)


def test_schedule_is_identical_across_runs_workers_and_cold_or_warm_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "tiny.onnx"
    onnx.save(_tiny_model(), model)
    cache = str(tmp_path / "c.sqlite")
    common = ["compile", str(model), "--time-limit", "60"]
    runs = {
        "cold_1_worker": ["--workers", "1", "--cache", cache],
        "cold_2_workers": ["--workers", "2", "--no-cache"],
        "warm": ["--workers", "2", "--cache", cache],
    }
    errs = {}
    for name, flags in runs.items():
        assert main([*common, "--out", str(tmp_path / name), *flags]) == 0
        errs[name] = capsys.readouterr().err
    assert "2 layers reused" in errs["warm"] and "2 stored" in errs["cold_1_worker"]
    texts = {name: _canonical(tmp_path / name / "schedule.json") for name in runs}
    first = json.loads(texts["cold_1_worker"])
    assert [lay["solver"]["status"] for lay in first["layers"]] == ["OPTIMAL"] * 3
    shared = {lay["name"]: lay["shared_with"] for lay in first["layers"]}
    assert shared == {"fc1": None, "fc2": "fc1", "pw": None}
    assert texts["cold_1_worker"] == texts["cold_2_workers"] == texts["warm"]


def test_random_mapper_schedule_is_identical_across_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["compile", "transformer", "--mapper", "random", "--samples", "200", "--no-cache"]
    for workers in ("1", "2"):
        assert main([*common, "--workers", workers, "--out", str(tmp_path / workers)]) == 0
    capsys.readouterr()
    assert _canonical(tmp_path / "1" / "schedule.json") == _canonical(
        tmp_path / "2" / "schedule.json"
    )


def test_imperfect_schedule_is_identical_across_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The residual-tile search counts evaluations and seeds its kicks: no load or
    worker count changes where it stops."""
    model = tmp_path / "tiny.onnx"
    onnx.save(_tiny_model(), model)
    common = ["compile", str(model), "--factors", "imperfect", "--time-limit", "0.5"]
    for workers in ("1", "2"):
        flags = ["--workers", workers, "--no-cache", "--out", str(tmp_path / workers)]
        assert main([*common, *flags]) == 0
    capsys.readouterr()
    text = _canonical(tmp_path / "1" / "schedule.json")
    assert text == _canonical(tmp_path / "2" / "schedule.json")
    layers = json.loads(text)["layers"]
    assert all(lay["solver"]["perfect_status"] == "OPTIMAL" for lay in layers)
