"""Translate a loop nest's dims to the convolution names that target constraints use.

Targets write their design constraints with convolution dims (N K C P Q R S G),
as Timeloop does. Other ops are mapped by the part each dim plays: a dim that
only the weight ignores is an output position (Q for the innermost, N for
batch-like outer ones), one only the input ignores is an output channel (K),
one only the output ignores is a reduction channel (C), one all three use is a
group (G).
"""

from __future__ import annotations

from compiler.ir.loopnest import LoopNest

CONV_DIMS = frozenset("NGKCPQRS")


def conv_classes(nest: LoopNest) -> dict[str, str]:
    """Per dim of ``nest``, the convolution dim whose constraints apply to it."""
    if set(nest.dim_names) <= CONV_DIMS:
        return {d: d for d in nest.dim_names}
    relevant = {t.role: t.relevant_dims for t in nest.tensors}
    out: dict[str, str] = {}
    positions = [
        d for d in nest.dim_names if d not in relevant.get("weight", frozenset(nest.dim_names))
    ]
    for d in nest.dim_names:
        users = {role for role, dims in relevant.items() if d in dims}
        if users >= {"input", "weight", "output"}:
            out[d] = "G"
        elif "weight" not in users:
            out[d] = "Q" if d == positions[-1] else "N"
        elif "input" not in users:
            out[d] = "K"
        else:
            out[d] = "C"
    return out
