"""Legalized module -> ModuleDescription: every binding of ``main`` attributed to its ONNX node."""

from __future__ import annotations

from collections.abc import Callable

import tvm
from joule.frontend.importer import SiteInfo
from joule.frontend.records import Binding, ModuleDescription, PrimFuncInfo, Value
from joule.frontend.tir_blocks import describe_primfunc
from tvm import relax, tirx

_Ids = Callable[[relax.Var], int]  # Relax var -> value id, assigning new ids on first sight


def describe_module(mod: tvm.IRModule, info: SiteInfo) -> ModuleDescription:
    """Plain records of ``main``'s bindings (in execution order) and of the PrimFuncs they call.

    A binding belongs to the ONNX node whose traced result it is, or else to the
    next node whose result follows it (helpers a converter emitted on the way).
    Each PrimFunc is analysed once, however many call sites share it.
    """
    main = mod["main"]
    owner: dict[relax.Var, str] = {}
    for node in info.nodes:
        for var in info.node_vars.get(node.name, ()):
            owner.setdefault(var, node.name)

    ids: dict[relax.Var, int] = {}
    values: dict[int, Value] = {}

    def value_id(var: relax.Var) -> int:
        if var not in ids:
            ids[var] = len(ids)
            shape, dtype = _tensor_type(var.ty)
            values[ids[var]] = Value(ids[var], var.name, info.tensor_names.get(var), shape, dtype)
        return ids[var]

    for param in main.params:
        value_id(param)

    funcs: dict[str, PrimFuncInfo] = {}
    raw: list[tuple[relax.Var, str, str | None, tuple[int, ...], str]] = []
    for block in main.body.blocks:
        for binding in block.bindings:
            var, expr = binding.var, binding.value
            kind, func, args = _classify(expr, value_id)
            if func is not None and func not in funcs:
                funcs[func] = describe_primfunc(func, mod[func])
            value_id(var)
            raw.append((var, kind, func, args, info.relax_ops.get(var, "")))

    bindings: list[Binding] = []
    pending: list[tuple] = []
    for entry in raw:
        pending.append(entry)
        node = owner.get(entry[0])
        if node is not None:
            bindings += [_binding(e, node, ids) for e in pending]
            pending = []
    last = bindings[-1].node if bindings else None
    bindings += [_binding(e, last, ids) for e in pending]
    return ModuleDescription(info.model, list(info.nodes), values, bindings, funcs)


def _binding(entry: tuple, node: str | None, ids: dict) -> Binding:
    var, kind, func, args, relax_op = entry
    return Binding(ids[var], node, kind, func, args, relax_op)


def _classify(expr: relax.Expr, value_id: _Ids) -> tuple[str, str | None, tuple[int, ...]]:
    """(kind, PrimFunc name, ids of the values read)."""
    if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.call_tir":
        gv, args = expr.args[0], expr.args[1]
        fields = args.fields if isinstance(args, relax.Tuple) else [args]
        return "call_tir", gv.name_hint, tuple(_ids(f, value_id) for f in fields)
    if isinstance(expr, relax.TupleGetItem | relax.Var):
        return "alias", None, tuple(_free_ids(expr, value_id))
    return "other", None, tuple(_free_ids(expr, value_id))


def _ids(expr: relax.Expr, value_id: _Ids) -> int:
    if isinstance(expr, relax.Var):
        return value_id(expr)
    return -1  # a constant argument: no value in the graph


def _free_ids(expr: relax.Expr, value_id: _Ids) -> list[int]:
    return [value_id(v) for v in relax.analysis.free_vars(expr)]


def _tensor_type(ty: object) -> tuple[tuple[int, ...] | None, str | None]:
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        return None, None
    dims = getattr(ty.shape, "values", None)
    if dims is None:
        return None, str(ty.dtype)
    out = []
    for d in dims:
        if not isinstance(d, tirx.IntImm):
            return None, str(ty.dtype)
        out.append(int(d))
    return tuple(out), str(ty.dtype)
