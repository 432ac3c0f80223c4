"""Call sites of PrimFuncs in a Relax module, and giving sites their own copy of a PrimFunc.

LegalizeOps deduplicates structurally equal PrimFuncs, so one PrimFunc may
serve several call sites. Sites with identical shapes get the same mapping
and keep sharing it; when sites must be scheduled differently (a precomputed
schedule mapped them apart) each group gets a copy. The copy carries the
attribute ``joule.site`` so that the BlockBuilder does not fold it back into
the original.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tvm
from tvm import relax

_CALL_TIR = "relax.call_tir"


def call_sites(mod: tvm.IRModule) -> dict[str, list[str]]:
    """PrimFunc name -> the binding vars (by name) that call it, in program order."""
    sites: dict[str, list[str]] = {}
    for _gv, func in mod.functions_items():
        if not isinstance(func, relax.Function):
            continue
        for binding in _bindings(func):
            gv = _callee(binding)
            if gv is not None:
                sites.setdefault(gv.name_hint, []).append(binding.var.name)
    return sites


def split_sites(
    mod: tvm.IRModule, func_name: str, groups: Sequence[Sequence[str]]
) -> tuple[tvm.IRModule, list[str]]:
    """Give each group of sites after the first its own copy of ``func_name``.

    Returns the new module and the PrimFunc name serving each group (the first
    group keeps the original).
    """
    bb = relax.BlockBuilder(mod)
    original = mod[func_name]
    names = [func_name]
    redirect: dict[str, tvm.ir.GlobalVar] = {}
    for k, group in enumerate(groups[1:], 1):
        copy = original.with_attr("joule.site", ",".join(group))
        gv = bb.add_func(copy, f"{func_name}_site{k}")
        names.append(gv.name_hint)
        redirect.update(dict.fromkeys(group, gv))
    out = bb.get()
    for gv, func in list(out.functions_items()):
        if isinstance(func, relax.Function):
            out[gv] = _redirect(func, func_name, redirect)
    return out, names


def _bindings(func: relax.Function) -> list[relax.Binding]:
    body = func.body
    if not isinstance(body, relax.SeqExpr):
        return []
    return [b for block in body.blocks for b in block.bindings]


def _callee(binding: relax.Binding) -> tvm.ir.GlobalVar | None:
    value = getattr(binding, "value", None)
    if (
        isinstance(value, relax.Call)
        and getattr(value.op, "name", "") == _CALL_TIR
        and isinstance(value.args[0], tvm.ir.GlobalVar)
    ):
        return value.args[0]
    return None


def _redirect(
    func: relax.Function, func_name: str, redirect: Mapping[str, tvm.ir.GlobalVar]
) -> relax.Function:
    body = func.body
    if not isinstance(body, relax.SeqExpr):
        return func
    changed = False
    blocks = []
    for block in body.blocks:
        bindings = []
        for b in block.bindings:
            gv = _callee(b)
            if gv is not None and gv.name_hint == func_name and b.var.name in redirect:
                call = b.value
                value = relax.Call(
                    call.op, [redirect[b.var.name], *call.args[1:]], call.attrs, call.ty_args
                )
                b = relax.VarBinding(b.var, value)
                changed = True
            bindings.append(b)
        kind = relax.DataflowBlock if isinstance(block, relax.DataflowBlock) else relax.BindingBlock
        blocks.append(kind(bindings))
    if not changed:
        return func
    seq = relax.SeqExpr(blocks, body.body)
    return relax.Function(func.params, seq, func.ret_ty, func.is_pure, func.attrs)
