"""Run the scheduled module and check it computes what the model computes.

Three runs on the same inputs: the scheduled module and the unscheduled one,
both compiled by TVM for LLVM, and onnxruntime on the ONNX model. Errors are
reported per output as ``max_abs_err = max |y - ref|`` and ``max_rel_err =
max |y - ref| / max |ref|`` (relative to the output's scale: element-wise
relative errors are meaningless where ref is near 0). A comparison passes
when ``|y - ref| <= rtol * (|ref| + max |ref|)`` everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import tvm
from tvm import relax

RTOL = 1e-4


def run_tvm(mod: tvm.IRModule, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Compile ``mod`` for LLVM and run ``main`` on ``args``; the outputs, flattened."""
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    result = vm["main"](*[tvm.runtime.tensor(a) for a in args])
    return _flatten(result)


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return [
        np.asarray(y) for y in session.run(None, {k: v for k, v in feeds.items() if k in names})
    ]


def compare(
    outputs: Sequence[np.ndarray], refs: Sequence[np.ndarray], rtol: float = RTOL
) -> dict[str, Any]:
    """``{"passed", "max_abs_err", "max_rel_err"}`` over all outputs."""
    failed = {"passed": False, "max_abs_err": None, "max_rel_err": None}
    if len(outputs) != len(refs):
        return failed
    passed, max_abs, max_rel = True, 0.0, 0.0
    for y, ref in zip(outputs, refs, strict=True):
        y, ref = np.asarray(y, np.float64), np.asarray(ref, np.float64)
        if y.shape != ref.shape or not np.all(np.isfinite(y)):
            return failed
        err = np.abs(y - ref)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        abs_err = float(err.max()) if err.size else 0.0
        max_abs = max(max_abs, abs_err)
        max_rel = max(max_rel, abs_err / scale if scale else abs_err)
        passed = passed and bool(np.all(err <= rtol * (np.abs(ref) + scale)))
    return {"passed": passed, "max_abs_err": max_abs, "max_rel_err": max_rel}


def verify(
    scheduled: tvm.IRModule,
    unscheduled: tvm.IRModule,
    args: Sequence[np.ndarray],
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    rtol: float = RTOL,
) -> dict[str, Any]:
    """The ``verification.tvm`` record of schedule.json: both comparisons and their worst."""
    out = run_tvm(scheduled, args)
    vs_tvm = compare(out, run_tvm(unscheduled, args), rtol)
    try:
        vs_ort = compare(out, run_onnxruntime(model, feeds), rtol)
    except Exception as exc:  # onnxruntime rejects some models TVM reads: say so, fail
        vs_ort = {"passed": False, "error": f"onnxruntime: {type(exc).__name__}: {exc}"}
    checks = [vs_tvm, vs_ort]
    return {
        "passed": all(c["passed"] for c in checks),
        "max_abs_err": _worst(checks, "max_abs_err"),
        "max_rel_err": _worst(checks, "max_rel_err"),
        "rtol": rtol,
        "vs_unscheduled": vs_tvm,
        "vs_onnxruntime": vs_ort,
    }


def _worst(checks: list[dict[str, Any]], key: str) -> float | None:
    """The largest error of the checks; None when a check has none (it could not compare)."""
    values = [c.get(key) for c in checks]
    return None if any(v is None for v in values) else max(values)


def _flatten(value: Any) -> list[np.ndarray]:
    if hasattr(value, "numpy"):
        return [value.numpy()]
    out: list[np.ndarray] = []
    for item in value:
        out += _flatten(item)
    return out
