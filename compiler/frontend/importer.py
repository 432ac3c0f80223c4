"""ONNX file -> legalized Relax module + the link from every Relax var back to its ONNX node."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx
import tvm
from joule.errors import ModelError
from joule.frontend.dims import input_shapes
from joule.frontend.reading import ModelSource, check_model, read_model
from joule.frontend.records import OnnxNode
from joule.frontend.tracing import TracingImporter
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

_DIRECT_OPS = {"If", "Constant"}  # handled by the importer itself, not the converter map


@dataclass
class SiteInfo:
    """What links the legalized module back to the ONNX model.

    ``node_vars`` maps an ONNX node name to the Relax vars bound for it (its
    result last); ``tensor_names`` maps a Relax var to the ONNX tensor it holds;
    ``relax_ops`` maps a binding var to the Relax operator it was before
    LegalizeOps (LegalizeOps keeps the vars, only the bound values change).
    """

    model: str
    nodes: list[OnnxNode]
    node_vars: dict[str, list[relax.Var]]
    tensor_names: dict[relax.Var, str]
    relax_ops: dict[relax.Var, str]
    input_shapes: dict[str, list[int]] = field(default_factory=dict)


def load_onnx(
    source: ModelSource,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> tuple[tvm.IRModule, SiteInfo]:
    """Read, check and import an ONNX model; return the module after LegalizeOps.

    Every failure the user can cause (missing or unreadable file, checker
    errors, unbound symbolic dims, ops TVM cannot import) is a ModelError.
    """
    model, name = read_model(source)
    where = name if isinstance(source, onnx.ModelProto) else str(source)
    check_model(model, where)
    shapes = input_shapes(model, batch=batch, dims=dims, where=where)
    model = _with_unique_node_names(model)
    _check_supported(model, where)
    importer = TracingImporter(shapes, "float32", keep_params_in_input=False, sanitize=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # renames and checker chatter; we checked already
            mod = importer.from_onnx(model.graph, _opset(model))
    except (tvm.error.TVMError, ValueError, KeyError, AssertionError, IndexError) as err:
        raise ModelError(
            f"TVM could not import the model: {type(err).__name__}: {_first_line(err)}",
            where=where,
            hint="the model may use an op variant or dynamic shape TVM 0.27 does not support; "
            "simplify or re-export it (e.g. with onnxsim) and try again",
        ) from None
    relax_ops = _relax_ops(mod["main"])
    legalized = relax.transform.LegalizeOps()(mod)
    nodes = [
        OnnxNode(
            n.name,
            n.op_type,
            tuple(n.input),
            tuple(n.output),
            {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute if a.type != a.GRAPH},
        )
        for n in model.graph.node
    ]
    tensor_names: dict[relax.Var, str] = {}
    for tensor, expr in importer._nodes.items():
        if isinstance(expr, relax.Var) and expr not in tensor_names:
            tensor_names[expr] = tensor
    info = SiteInfo(name, nodes, importer.node_vars, tensor_names, relax_ops, shapes)
    return legalized, info


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[-1] if text else ""


def _with_unique_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed or duplicate nodes a unique name (``<OpType>_<index>``), copying only then."""
    names = [n.name for n in model.graph.node]
    if all(names) and len(set(names)) == len(names):
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        base = node.name or f"{node.op_type}_{index}"
        name, k = base, 1
        while name in seen or (name != node.name and name in names):
            name, k = f"{base}_{k}", k + 1
        node.name = name
        seen.add(name)
    return model


def _check_supported(model: onnx.ModelProto, where: str) -> None:
    """All ops TVM cannot import, listed at once with the nodes that use them."""
    converters = onnx_frontend._get_convert_map()
    missing: dict[str, list[str]] = {}
    for node in model.graph.node:
        foreign = node.domain not in ("", "ai.onnx")
        if foreign or (node.op_type not in converters and node.op_type not in _DIRECT_OPS):
            label = f"{node.domain}::{node.op_type}" if foreign else node.op_type
            missing.setdefault(label, []).append(node.name)
    if missing:
        listed = "; ".join(
            f"{op} (nodes: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
            for op, names in sorted(missing.items())
        )
        raise ModelError(
            f"TVM's ONNX importer does not support {len(missing)} op type(s) used by the model: "
            f"{listed}",
            where=where,
            hint="replace these ops with supported ones before export (or decompose them, "
            "e.g. with onnxruntime's or onnxsim's graph tools)",
        )


def _relax_ops(main: relax.Function) -> dict[relax.Var, str]:
    """Binding var -> Relax operator name, read before LegalizeOps turns calls into call_tir."""
    ops: dict[relax.Var, str] = {}
    for block in main.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
                ops[binding.var] = value.op.name
    return ops
