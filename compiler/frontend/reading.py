"""Read an ONNX model and check it, so every later failure is a model problem, not a crash."""

from __future__ import annotations

import graphlib
import re
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from joule.errors import ModelError
from onnx import external_data_helper

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
        model = onnx.load(str(path), load_external_data=False)
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
    _load_external_data(model, path)
    return model, path.stem


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read external tensor data, but only from regular files inside the model's folder.

    Every reference is checked before any is opened, so a model cannot make
    Joule read (or block on) a file elsewhere, e.g. ``../../etc/shadow`` or a FIFO.
    """
    folder = path.parent.resolve()
    external = [t for t in external_data_helper._get_all_tensors(model) if _is_external(t)]
    for tensor in external:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        where = f"{path}: tensor {tensor.name!r}"
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise ModelError(
                f"external data of tensor {tensor.name!r} points outside the model's folder "
                f"({location!r}); Joule does not read it",
                where=where,
                hint="keep the weights file next to the .onnx file (a relative location "
                "such as 'model.onnx.data') or save the model with its weights inside",
            )
        if not target.is_file():
            raise ModelError(
                f"external data file {location!r} of tensor {tensor.name!r} is missing "
                "or not a regular file",
                where=where,
                hint="copy the weights file next to the .onnx file, as exported",
            )
    if external:
        try:
            external_data_helper.load_external_data_for_model(model, str(folder))
        except (OSError, ValueError) as err:
            raise ModelError(
                f"cannot read the model's external data ({type(err).__name__}: {err})",
                where=str(path),
                hint="re-export the model with its weights file, or with the weights inside",
            ) from None


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL


def check_model(model: onnx.ModelProto, where: str) -> None:
    """Run onnx.checker; its failures name the node and op when the message allows."""
    if model.ir_version < 3:
        raise ModelError(
            f"ONNX IR version {model.ir_version} is too old (TVM needs at least 3)",
            where=where,
            hint="re-export the model with a recent exporter "
            "or upgrade it with onnx.version_converter",
        )
    _check_opset(model, where)
    _check_input_dims(model, where)
    _check_acyclic(model, where)
    try:
        _check(model)
    except onnx.checker.ValidationError as err:
        text = " ".join(str(err).split()).split("==> Context")[0].strip()
        first = (text[:300] + "...") if len(text) > 300 else (text or type(err).__name__)
        match = _NODE_CONTEXT.search(str(err))
        if match:
            where = f"{where}: node {match.group(1) or '(unnamed)'} ({match.group(2)})"
        raise ModelError(
            f"the ONNX checker rejects the model: {first}",
            where=where,
            hint="fix or re-export the model; `python -m onnx.checker`-style tools show details",
        ) from None


def _check_opset(model: onnx.ModelProto, where: str) -> None:
    """A missing or too-new default-domain opset: the ops' meaning is then unknown."""
    versions = [e.version for e in model.opset_import if e.domain in ("", "ai.onnx")]
    newest = onnx.defs.onnx_opset_version()
    if not versions:
        raise ModelError(
            "the model imports no ONNX opset (opset_import has no default-domain entry)",
            where=f"{where}: opset_import",
            hint="re-export the model with an opset version (e.g. opset_version=17)",
        )
    if not 1 <= versions[0] <= newest:
        raise ModelError(
            f"the model uses ONNX opset {versions[0]}, which does not exist "
            f"(this ONNX knows opsets 1 to {newest})",
            where=f"{where}: opset_import",
            hint="re-export the model with a released opset (e.g. opset_version=17)",
        )


def _check_acyclic(model: onnx.ModelProto, where: str) -> None:
    """A graph whose nodes feed each other in a loop has no execution order: name the loop."""
    producer = {
        out: node.name or f"{node.op_type}_{k}"
        for k, node in enumerate(model.graph.node)
        for out in node.output
        if out
    }
    order = graphlib.TopologicalSorter()
    for k, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{k}"
        order.add(name, *(producer[i] for i in node.input if i in producer))
    try:
        order.prepare()
    except graphlib.CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise ModelError(
            f"the graph has a cycle: {cycle}",
            where=f"{where}: node {err.args[1][0]}",
            hint="a model graph must be acyclic; fix the exporter or the edited graph "
            "(recurrences belong in a Loop/Scan op)",
        ) from None


def _check_input_dims(model: onnx.ModelProto, where: str) -> None:
    """Input dimensions given as numbers must be sizes (>= 1): 0 or negative is a broken export."""
    for value in model.graph.input:
        if value.type.WhichOneof("value") != "tensor_type":
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                raise ModelError(
                    f"input {value.name!r} has size {dim.dim_value} at axis {axis}; "
                    "every dimension must be at least 1",
                    where=f"{where}: graph input {value.name!r}",
                    hint="re-export the model with positive sizes, or make the axis "
                    "symbolic and bind it with --dim NAME=VALUE",
                )


def _check(model: onnx.ModelProto) -> None:
    """onnx.checker, tolerating value infos declared without a shape (exporters omit them)."""
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        if "shape" not in str(err) or "required but missing" not in str(err):
            raise
        onnx.checker.check_model(_with_unknown_shapes_filled(model))


def _with_unknown_shapes_filled(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy where shapeless value infos claim an empty shape, so the checker reaches the nodes.

    Only for checking: the checker stops at the first shapeless output and would
    otherwise hide a real error (an unknown op, a cycle) behind it.
    """
    copy = onnx.ModelProto.FromString(model.SerializeToString())
    graph = copy.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        ttype = value.type.tensor_type
        if value.type.WhichOneof("value") == "tensor_type" and not ttype.HasField("shape"):
            ttype.shape.SetInParent()
    return copy
