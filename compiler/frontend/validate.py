"""Check a model's shapes before TVM sees it, so a bad node is named instead of crashing TVM.

TVM 0.27's importer and LegalizeOps die with a C++ check or a TE error (and
leave "BlockBuilder destroyed with remaining blocks" warnings) on nodes whose
shapes disagree. Here the input shapes are bound, ONNX's strict shape
inference runs with data propagation, and Joule checks what its lowering
relies on and ONNX does not: a Conv's ``group`` divides its channels, a
kernel fits its padded input, MatMul/Gemm inner dimensions agree, every
element type is one TVM imports. Each error names the node, its op, the
attribute or shapes at fault, and what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import onnx
from joule.errors import ModelError
from onnx import TensorProto
from onnx.shape_inference import InferenceError, infer_shapes

Shape = list[int | None]  # None: an extent shape inference could not fix

# TVM 0.27 imports every ONNX element type but these (checked: "unknown dtype").
_UNSUPPORTED_TYPES = {
    TensorProto.STRING,
    TensorProto.COMPLEX64,
    TensorProto.COMPLEX128,
}
_TYPE_HINT = (
    "Joule maps numeric tensors (float, integer, bool); keep string or complex "
    "pre-processing outside the model and export the numeric part"
)
_POOLS = {"MaxPool", "AveragePool", "LpPool"}
# Ops whose output extents become loop extents: an empty output cannot be mapped.
_LOOP_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm", *_POOLS}
_KEEP_ELEMENTS = 1024  # initializers up to this size keep their data for inference
_ONNX_CONTEXT = re.compile(r"\(op_type:([^,]*), node name: ([^)]*)\):")


def validate_model(model: onnx.ModelProto, shapes: dict[str, list[int]], where: str) -> None:
    """Raise ModelError for the first node TVM's importer or Joule's lowering cannot take.

    ``shapes`` are the bound input shapes (``input_shapes``); ``model`` is not changed.
    """
    _check_input_types(model, where)
    bound = _shape_only(model, shapes)
    try:
        inferred = infer_shapes(bound, check_type=True, strict_mode=True, data_prop=True)
    except InferenceError as err:
        # Joule's own checks say more than ONNX's message when they see the problem.
        try:
            _check_nodes(infer_shapes(bound, data_prop=True), where)
        except InferenceError:
            pass
        raise _inference_error(err, where) from None
    _check_nodes(inferred, where)


def _shape_only(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> onnx.ModelProto:
    """A copy for inference: inputs carry the bound sizes, large weights only their shape.

    Data propagation reads small integer tensors (shapes, axes); passing 100 MB of
    weights through ONNX's C++ inference and back would cost half a second.
    """
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    graph = bound.graph
    declared = {value.name for value in graph.input}
    kept = [t for t in graph.initializer if math.prod(t.dims) <= _KEEP_ELEMENTS]
    for tensor in graph.initializer:
        if math.prod(tensor.dims) > _KEEP_ELEMENTS and tensor.name not in declared:
            graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for value in graph.input:
        if value.name in shapes:  # not an initializer (whose dims are its data's)
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    return bound


def _inference_error(err: InferenceError, where: str) -> ModelError:
    text = " ".join(str(err).split())
    match = _ONNX_CONTEXT.search(text)
    detail = re.sub(r"\[\w+InferenceError\]\s*", "", text[match.end() if match else 0 :]).strip()
    detail = (detail[:300] + "...") if len(detail) > 300 else detail
    if match:
        op, name = match.group(1), match.group(2)
        return ModelError(
            f"ONNX shape inference rejects node {name} ({op}): {detail}",
            where=f"{where}: node {name} ({op})",
            hint="check that node's input shapes and attributes; fix or re-export the model",
        )
    return ModelError(
        f"ONNX shape inference rejects the model: {detail}",
        where=where,
        hint="fix or re-export the model; its declared shapes disagree with its nodes",
    )


def _check_input_types(model: onnx.ModelProto, where: str) -> None:
    """Graph inputs and weights of a type TVM cannot import (e.g. a tokenizer's strings)."""
    for value in model.graph.input:
        what = f"graph input {value.name!r}"
        _check_type(value.type.tensor_type.elem_type, what, f"{where}: {what}")
    for tensor in model.graph.initializer:
        what = f"initializer {tensor.name!r}"
        _check_type(tensor.data_type, what, f"{where}: {what}")


def _check_nodes(model: onnx.ModelProto, where: str) -> None:
    """Each node in graph order, on a model after shape inference: output types, then shapes."""
    graph = model.graph
    shapes: dict[str, Shape] = {t.name: list(t.dims) for t in graph.initializer}
    types: dict[str, int] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        ttype = value.type.tensor_type
        if value.type.WhichOneof("value") != "tensor_type":
            continue
        types[value.name] = ttype.elem_type
        if ttype.HasField("shape"):
            shapes[value.name] = [
                d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim
            ]
    for node in graph.node:
        at = f"{where}: node {node.name} ({node.op_type})"
        for out in node.output:
            _check_type(types.get(out, 0), f"output {out!r} of node {node.name}", at)
        check = _NODE_CHECKS.get(node.op_type)
        if check is not None:
            check(node, [shapes.get(i) if i else None for i in node.input], at)
        if node.op_type in _LOOP_OPS:
            _check_not_empty(node, shapes, at)


def _check_type(elem_type: int, what: str, where: str) -> None:
    if elem_type in _UNSUPPORTED_TYPES:
        name = onnx.helper.tensor_dtype_to_string(elem_type).removeprefix("TensorProto.")
        raise ModelError(
            f"{what} has element type {name}, which TVM cannot import", where=where, hint=_TYPE_HINT
        )


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _ints(shape: Shape | None) -> list[int] | None:
    """The shape when every extent is known, else None (then ONNX's inference is the judge)."""
    if shape is None or any(d is None for d in shape):
        return None
    return [d for d in shape if d is not None]


def _conv(node: onnx.NodeProto, inputs: list[Shape | None], where: str) -> None:
    x, w = (_ints(s) for s in (inputs + [None, None])[:2])
    if x is None or w is None or len(x) != len(w) or len(x) < 3:
        return  # unknown or mismatched ranks: ONNX's inference reports those
    group = int(_attr(node, "group", 1))
    channels, outputs, per_group = x[1], w[0], w[1]
    shapes = f"input {node.input[0]!r} {x}, weight {node.input[1]!r} {w}"
    if group < 1:
        raise ModelError(
            f"Conv node {node.name} has group={group}",
            where=f"{where}, attribute group",
            hint="group must be at least 1 (1 for a plain conv, the channel count for depthwise)",
        )
    for count, label in ((channels, "input channels"), (outputs, "output channels")):
        if count % group:
            raise ModelError(
                f"Conv node {node.name}: group={group} does not divide its {count} {label} "
                f"({shapes})",
                where=f"{where}, attribute group",
                hint="use a group that divides both channel counts, or fix the weight's shape "
                "[out_channels, in_channels / group, kH, kW]; then re-export",
            )
    if per_group * group != channels:
        raise ModelError(
            f"Conv node {node.name}: the weight takes {per_group} channels x group {group} = "
            f"{per_group * group} input channels, but the input has {channels} ({shapes})",
            where=f"{where}, input {node.input[1]!r}",
            hint="the weight's second dimension must be in_channels / group; "
            "check the weight or the group attribute",
        )
    kernel = w[2:]
    declared = list(_attr(node, "kernel_shape", kernel))
    if declared != kernel:
        raise ModelError(
            f"Conv node {node.name}: kernel_shape {declared} differs from the weight's {kernel}",
            where=f"{where}, attribute kernel_shape",
            hint="drop kernel_shape or make it equal to the weight's spatial dimensions",
        )
    _check_window(node, x[2:], kernel, where)


def _pool(node: onnx.NodeProto, inputs: list[Shape | None], where: str) -> None:
    x = _ints(inputs[0] if inputs else None)
    kernel = list(_attr(node, "kernel_shape", []))
    if x is not None and kernel and len(x) == len(kernel) + 2:
        _check_window(node, x[2:], kernel, where)


def _check_window(node: onnx.NodeProto, size: list[int], kernel: list[int], where: str) -> None:
    """Strides, dilations and pads in range, and the (dilated) kernel fits the padded input."""
    rank = len(kernel)
    strides = list(_attr(node, "strides", [1] * rank))
    dilations = list(_attr(node, "dilations", [1] * rank))
    pads = list(_attr(node, "pads", [0] * 2 * rank))
    for name, values, low in (
        ("strides", strides, 1),
        ("dilations", dilations, 1),
        ("pads", pads, 0),
    ):
        if any(v < low for v in values):
            raise ModelError(
                f"{node.op_type} node {node.name} has {name} {values}",
                where=f"{where}, attribute {name}",
                hint=f"every entry of {name} must be at least {low}",
            )
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad.startswith("SAME") or len(pads) != 2 * rank or len(dilations) != rank:
        return  # SAME padding always fits; a wrong length is ONNX's to report
    if auto_pad == "VALID":
        pads = [0] * 2 * rank
    span = [d * (k - 1) + 1 for d, k in zip(dilations, kernel, strict=True)]
    padded = [s + pads[i] + pads[i + rank] for i, s in enumerate(size)]
    if any(k > p for k, p in zip(span, padded, strict=True)):
        dilated = "" if span == kernel else f" (dilated to {_x(span)})"
        source = f"its {_x(size)} input {node.input[0]!r}"
        if padded != size:
            source += f" padded to {_x(padded)} (pads {pads})"
        raise ModelError(
            f"{node.op_type} node {node.name}: its {_x(kernel)} kernel{dilated} is larger than "
            f"{source}, so the output would be empty",
            where=f"{where}, attributes kernel_shape/pads/dilations",
            hint="pad the input (pads or auto_pad=SAME_UPPER), use a smaller kernel or "
            "dilation, or feed a larger input",
        )


def _x(sizes: Sequence[int]) -> str:
    return "x".join(str(s) for s in sizes)


def _matmul(node: onnx.NodeProto, inputs: list[Shape | None], where: str) -> None:
    a, b = (_ints(s) for s in (inputs + [None, None])[:2])
    if not a or not b:
        return  # unknown or scalar: ONNX's inference reports scalars
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    _check_inner(node, a2[-1], b2[-2], a, b, where)
    left, right = a2[-3::-1], b2[-3::-1]  # batch dims, innermost first
    for da, db in zip(left, right, strict=False):  # broadcast: ranks may differ
        if da != db and 1 not in (da, db):
            raise ModelError(
                f"MatMul node {node.name}: the batch dimensions of {node.input[0]!r} {a} and "
                f"{node.input[1]!r} {b} do not broadcast ({da} vs {db})",
                where=f"{where}, inputs {node.input[0]!r} and {node.input[1]!r}",
                hint="batch dimensions must be equal or 1; check the model's input shapes",
            )


def _gemm(node: onnx.NodeProto, inputs: list[Shape | None], where: str) -> None:
    a, b, c = (_ints(s) for s in (inputs + [None, None, None])[:3])
    if not a or not b or len(a) != 2 or len(b) != 2:
        return  # ONNX's inference reports ranks other than 2
    ta, tb = _attr(node, "transA", 0), _attr(node, "transB", 0)
    (m, ka), (kb, n) = (a[::-1] if ta else a), (b[::-1] if tb else b)
    _check_inner(node, ka, kb, a, b, where, f" (transA={ta}, transB={tb})")
    if c and len(c) <= 2:
        for dc, dout in zip(c[::-1], [n, m], strict=False):
            if dc not in (1, dout):
                raise ModelError(
                    f"Gemm node {node.name}: its bias {node.input[2]!r} {c} does not broadcast "
                    f"to the {[m, n]} product",
                    where=f"{where}, input {node.input[2]!r}",
                    hint="the bias must be broadcastable to [M, N], e.g. of shape [N] or [1, N]",
                )


def _check_inner(
    node: onnx.NodeProto, ka: int, kb: int, a: list[int], b: list[int], where: str, trans: str = ""
) -> None:
    if ka != kb:
        raise ModelError(
            f"{node.op_type} node {node.name}: inner dimensions differ: {node.input[0]!r} {a} "
            f"has {ka} columns, {node.input[1]!r} {b} has {kb} rows{trans}",
            where=f"{where}, inputs {node.input[0]!r} and {node.input[1]!r}",
            hint="the first input's last dimension must equal the second's second-to-last; "
            "check the weight's orientation and the input shapes (--dim, --batch)",
        )


def _check_not_empty(node: onnx.NodeProto, shapes: dict[str, Shape], where: str) -> None:
    for name in (*node.input, *node.output):
        shape = shapes.get(name) if name else None
        if shape and 0 in shape:
            raise ModelError(
                f"{node.op_type} node {node.name}: tensor {name!r} has shape {shape}, "
                "with no elements; its loops would be empty",
                where=where,
                hint="check the shapes that lead to this node (a Slice, Reshape or pool "
                "upstream may have emptied it)",
            )


_NODE_CHECKS = {
    "Conv": _conv,
    "MatMul": _matmul,
    "Gemm": _gemm,
    **{op: _pool for op in _POOLS},
}
