"""Joule's loop-nest IR (no TVM here: plain Python, loads fast)."""

from compiler.ir.affine import AffineExpr
from compiler.ir.loopnest import ROLES, LoopNest, Role, Tensor, UnmappedOp
from compiler.ir.network import Network
from compiler.ir.text import parse_loopnest, parse_loopnests, print_loopnest, print_loopnests

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
