"""The loop nests of one legalized PrimFunc, with no ONNX model behind it.

The TVM pass sees PrimFuncs of any Relax module (TVM's own ``from_onnx``, a
BlockBuilder), so it cannot use the ONNX-linked lowering. It reuses the same
two steps on a synthetic call site whose arguments are the PrimFunc's own
parameters: ``describe_primfunc`` reads the MAC blocks and ``build_loopnest``
gives canonical dims with the ``tir.block`` / ``tir.dims`` attributes the
schedule needs.
"""

from __future__ import annotations

from joule.frontend.records import Binding, ModuleDescription, Value
from joule.frontend.tir_blocks import describe_primfunc
from joule.ir.loopnest import LoopNest
from joule.lower.sites import build_loopnest
from tvm import tirx


def primfunc_loopnests(name: str, func: tirx.PrimFunc) -> list[LoopNest]:
    """One LoopNest per MAC block of ``func`` (none for a PrimFunc without a MAC).

    Tensors are named after the PrimFunc's parameters. A PrimFunc with symbolic
    extents has no static nest and gives none.
    """
    info = describe_primfunc(name, func)
    if not info.macs or info.dynamic:
        return []
    values = {i: Value(i, p.name, p.name, p.shape, p.dtype) for i, p in enumerate(info.params)}
    args = tuple(range(len(info.params)))
    site = Binding(len(args) - 1, None, "call_tir", name, args, "")
    desc = ModuleDescription(name, [], values, [site], {name: info})
    nests = []
    for k, block in enumerate(info.macs):
        nests.append(
            build_loopnest(
                desc,
                site,
                block,
                name if k == 0 else f"{name}#{k}",
                producers={},
                label=lambda v: values[v].name,
                folded=set(),
            )
        )
    return nests
