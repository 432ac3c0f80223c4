"""``--emit tvm``: the scheduled module compiles and matches onnxruntime (ResNet-18, attention)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("tvm")
import tvm  # noqa: E402
from joule.cli import main  # noqa: E402
from joule.driver import compile_model  # noqa: E402
from joule.models.resnet import resnet18  # noqa: E402
from joule.models.transformer import transformer  # noqa: E402
from joule.passes.tvm.emit_module import emit_tvm  # noqa: E402

FAST = {"mapper": "random", "samples": 20}


def test_resnet18_with_random_weights_scheduled_matches_onnxruntime(tmp_path: Path) -> None:
    model = resnet18(image=32, random_weights=True)
    schedule = compile_model(model, "eyeriss", **FAST)
    record = emit_tvm(schedule, model, tmp_path, target="eyeriss")
    assert record["passed"], record
    assert record["vs_onnxruntime"]["max_rel_err"] < 1e-4
    assert record["vs_unscheduled"]["max_rel_err"] < 1e-4
    assert record["scheduled_primfuncs"] >= 10  # every distinct conv + the fc matmul
    # The module is loadable TVMScript; the weights travel in params.npz.
    mod = tvm.script.from_source((tmp_path / "tvm" / "module.py").read_text())
    assert any("joule.mapping" in (f.attrs or {}) for _gv, f in mod.functions_items())
    params = np.load(tmp_path / "tvm" / "params.npz")
    assert params.files and all(params[name].size for name in params.files)
    # Written atomically: no temporary file is left beside it.
    assert sorted(p.name for p in (tmp_path / "tvm").iterdir() if p.name.startswith(".")) == []


def test_cli_emit_tvm_and_timeloop_on_a_transformer_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "block.onnx"
    onnx.save(transformer(seq=16, d_model=32, heads=2, d_ff=64), path)  # weights as inputs
    out = tmp_path / "out"
    argv = ["compile", str(path), "--out", str(out), "--mapper", "random", "--samples", "20"]
    assert main([*argv, "--emit", "tvm", "--emit", "timeloop"]) == 0
    data = json.loads((out / "schedule.json").read_text())
    verification = data["verification"]["tvm"]
    assert verification["passed"] and verification["max_rel_err"] < 1e-4
    assert verification["vs_onnxruntime"]["passed"]
    assert "## Verification" in (out / "report.md").read_text()
    layers = {p.name for p in (out / "timeloop").iterdir()}
    assert len(layers) == len(data["layers"])  # Q/K/V/O, QK^T, AV, FFN: one dir each
    for layer in layers:
        assert {p.name for p in (out / "timeloop" / layer).iterdir()} == {
            "problem.yaml",
            "arch.yaml",
            "mapping.yaml",
            "joule-dims.yaml",
            "timeloop-model.yaml",
            "ERT.yaml",
        }
    assert "verification passed" in capsys.readouterr().out
