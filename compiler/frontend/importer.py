"""ONNX file -> legalized Relax module + the link from every Relax var back to its ONNX node."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import onnx
import tvm
import tvm_ffi
from joule.errors import ModelError
from joule.frontend.dims import input_shapes
from joule.frontend.reading import ModelSource, check_model, read_model
from joule.frontend.records import OnnxNode
from joule.frontend.tracing import TracingImporter
from joule.frontend.validate import validate_model
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

_DIRECT_OPS = {"If", "Constant"}  # handled by the importer itself, not the converter map

# What a failure inside TVM 0.27's importer or LegalizeOps raises. C++ errors cross
# the FFI as tvm.error's classes (all RuntimeErrors) or as the builtins tvm_ffi
# registers by name (tvm_ffi/error.py); the Python converters raise builtins, the
# tvm.error.OpError family and NotImplementedError. There is no tvm.error.TVMError.
TVM_FAILURES: tuple[type[Exception], ...] = (
    tvm.error.OpError,
    tvm.error.InternalError,
    tvm.error.DiagnosticError,
    RuntimeError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    AssertionError,
    NotImplementedError,
)
_TVM_HINT = (
    "it may use an op variant or shape TVM 0.27 does not support; "
    "simplify or re-export the model (e.g. with onnxsim) and try again"
)


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
    validate_model(model, shapes, where)
    importer = TracingImporter(shapes, "float32", keep_params_in_input=False, sanitize=True)
    mod = _import(importer, model, where)
    relax_ops = _relax_ops(mod["main"])
    legalized = _legalize(mod, relax_ops, importer, model, where)
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


def _import(importer: TracingImporter, model: onnx.ModelProto, where: str) -> tvm.IRModule:
    """``from_onnx``, with any TVM failure a ModelError naming the node being converted."""
    try:
        # The importer prints "Error converting operator ..." and warns about renames
        # and checker findings: the ModelError below says it once, the checker ran already.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return importer.from_onnx(model.graph, _opset(model))
    except TVM_FAILURES as err:
        _discard_blocks(importer.bb)
        raise _tvm_error("import", err, importer.converting, where) from None


def _legalize(
    mod: tvm.IRModule,
    relax_ops: dict[relax.Var, str],
    importer: TracingImporter,
    model: onnx.ModelProto,
    where: str,
) -> tvm.IRModule:
    """LegalizeOps, with any TVM failure a ModelError naming the node of the failing call.

    Each op's legalization is wrapped to remember the call it is working on (and
    the pass's builder, to close its blocks); the call's binding var leads back to
    the ONNX node through the importer.
    """
    current: list[tuple[relax.BlockBuilder, relax.Call]] = []

    def traced(default: Callable[..., relax.Expr]) -> Callable[..., relax.Expr]:
        def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
            current[:] = [(bb, call)]
            return default(bb, call)

        return legalize

    wrapped = {}
    for op in set(relax_ops.values()):
        default = tvm.ir.Op.get(op).get_attr("FLegalize")
        if default is not None:
            wrapped[op] = traced(default)
    try:
        return relax.transform.LegalizeOps(wrapped)(mod)
    except TVM_FAILURES as err:
        node = None
        if current:
            bb, call = current[0]
            _discard_blocks(bb)
            node = _node_of(call, mod["main"], importer, model)
        raise _tvm_error("legalize", err, node, where) from None


def _node_of(
    call: relax.Call, main: relax.Function, importer: TracingImporter, model: onnx.ModelProto
) -> tuple[str, str] | None:
    """(ONNX node, op type) whose Relax binding computes ``call``, if one does."""
    owner = {var: name for name, owned in importer.node_vars.items() for var in owned}
    ops = {n.name: n.op_type for n in model.graph.node}
    for block in main.body.blocks:
        for binding in block.bindings:
            if binding.var in owner and tvm_ffi.structural_equal(binding.value, call):
                return owner[binding.var], ops.get(owner[binding.var], "?")
    return None


def _tvm_error(stage: str, err: Exception, node: tuple[str, str] | None, where: str) -> ModelError:
    text = " ".join(str(err).split())
    detail = f"{type(err).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"
    if node is None:
        return ModelError(f"TVM could not {stage} the model: {detail}", where=where, hint=_TVM_HINT)
    name, op = node
    return ModelError(
        f"TVM could not {stage} node {name} ({op}): {detail}",
        where=f"{where}: node {name} ({op})",
        hint=_TVM_HINT,
    )


def _discard_blocks(bb: relax.BlockBuilder) -> None:
    """End the blocks a failed import left open; TVM warns about each on stderr otherwise."""
    with contextlib.suppress(tvm.error.InternalError):  # "no block is being built": done
        while True:
            bb._end_block()


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
