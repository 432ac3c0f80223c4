"""Translate a loop nest's dims to the convolution names that target constraints use.

Targets write their design constraints with convolution dims (N K C P Q R S G),
as Timeloop does. Other ops are mapped by the part each dim plays: a dim that
only the weight ignores is an output position (Q for the innermost, N for
batch-like outer ones), one only the input ignores is an output channel (K),
one only the output ignores is a reduction channel (C), one all three use is a
group (G). Convolution names are taken as they are only when every dim plays
its convolution part: a matmul whose unit M was dropped keeps dims named N and
K, which are not the convolution's N and K.
"""

from __future__ import annotations

from joule.ir.loopnest import LoopNest

# Which tensors index each convolution dim.
CONV_USERS = {
    "N": frozenset({"input", "output"}),
    "P": frozenset({"input", "output"}),
    "Q": frozenset({"input", "output"}),
    "K": frozenset({"weight", "output"}),
    "C": frozenset({"input", "weight"}),
    "R": frozenset({"input", "weight"}),
    "S": frozenset({"input", "weight"}),
    "G": frozenset({"input", "weight", "output"}),
}


def conv_classes(nest: LoopNest) -> dict[str, str]:
    """Per dim of ``nest``, the convolution dim whose constraints apply to it."""
    relevant = {t.role: t.relevant_dims for t in nest.tensors}

    def users(d: str) -> frozenset[str]:
        return frozenset(role for role, dims in relevant.items() if d in dims)

    if all(CONV_USERS.get(d) == users(d) for d in nest.dim_names):
        return {d: d for d in nest.dim_names}
    out: dict[str, str] = {}
    positions = [
        d for d in nest.dim_names if d not in relevant.get("weight", frozenset(nest.dim_names))
    ]
    for d in nest.dim_names:
        if users(d) >= {"input", "weight", "output"}:
            out[d] = "G"
        elif "weight" not in users(d):
            out[d] = "Q" if d == positions[-1] else "N"
        elif "input" not in users(d):
            out[d] = "K"
        else:
            out[d] = "C"
    return out
