"""Read an ONNX model and check it, so every later failure is a model problem, not a crash."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from compiler.errors import ModelError

ModelSource = str | Path | onnx.ModelProto

_NODE_CONTEXT = re.compile(r"Name:\s*(\S*)\s+OpType:\s*(\S+)")


def read_model(source: ModelSource) -> tuple[onnx.ModelProto, str]:
    """The ModelProto and a display name (file stem or graph name)."""
    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "model"
    path = Path(source)
    if not path.exists():
        raise ModelError(
            f"model file {str(path)!r} does not exist",
            hint="give the path of an .onnx file or the name of a bundled model "
            "(see `joule lower --help`)",
        )
    if not path.is_file():
        raise ModelError(f"{str(path)!r} is not a file", hint="give the path of an .onnx file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, RuntimeError) as err:
        raise ModelError(
            f"cannot read {str(path)!r} as an ONNX model ({type(err).__name__}: {err})",
            where=str(path),
            hint="check that the file is a complete ONNX protobuf (.onnx) and not another format",
        ) from None
    if not model.graph.node and not model.graph.input:
        raise ModelError(
            f"{str(path)!r} holds no ONNX graph (is it really an .onnx file?)",
            where=str(path),
            hint="export the network to ONNX (e.g. torch.onnx.export) and pass that file",
        )
    return model, path.stem


def check_model(model: onnx.ModelProto, where: str) -> None:
    """Run onnx.checker; its failures name the node and op when the message allows."""
    if model.ir_version < 3:
        raise ModelError(
            f"ONNX IR version {model.ir_version} is too old (TVM needs at least 3)",
            where=where,
            hint="re-export the model with a recent exporter "
            "or upgrade it with onnx.version_converter",
        )
    try:
        _check(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        match = _NODE_CONTEXT.search(str(err))
        if match:
            where = f"{where}: node {match.group(1) or '(unnamed)'} ({match.group(2)})"
        raise ModelError(
            f"the ONNX checker rejects the model: {first}",
            where=where,
            hint="fix or re-export the model; `python -m onnx.checker`-style tools show details",
        ) from None


def _check(model: onnx.ModelProto) -> None:
    """onnx.checker, tolerating graph outputs declared without a shape (exporters omit them)."""
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        if "shape" not in str(err) or "required but missing" not in str(err):
            raise
        onnx.checker.check_model(onnx.shape_inference.infer_shapes(model))
