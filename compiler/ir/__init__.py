"""Joule's loop-nest IR (no TVM here: plain Python, loads fast)."""

from joule.ir.affine import AffineExpr
from joule.ir.loopnest import ROLES, LoopNest, Role, Tensor, UnmappedOp
from joule.ir.network import Network
from joule.ir.text import parse_loopnest, parse_loopnests, print_loopnest, print_loopnests

__all__ = [
    "ROLES",
    "AffineExpr",
    "LoopNest",
    "Network",
    "Role",
    "Tensor",
    "UnmappedOp",
    "parse_loopnest",
    "parse_loopnests",
    "print_loopnest",
    "print_loopnests",
]
