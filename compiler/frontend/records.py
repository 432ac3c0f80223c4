"""Plain-Python records of a legalized module: what the lowering reads (no TVM here).

The frontend fills them from TVM objects; the lowering turns them into the
loop-nest IR. Keeping this boundary plain data means the lowering can be
tested with hand-written records and never touches TVM's private API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from joule.ir.affine import AffineExpr


@dataclass(frozen=True)
class OnnxNode:
    """An ONNX node as the frontend saw it (names made unique and non-empty)."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Access:
    """How a block addresses one PrimFunc parameter: one affine expression per axis.

    When the block reads through a zero-padding copy (conv's ``pad_temp``), the
    access is composed through it: ``param`` is the real pre-pad tensor, indices
    may fall outside it (they read zero) and ``padding`` gives the declared
    (before, after) padding per axis.
    """

    param: int
    projection: tuple[AffineExpr, ...]
    padding: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class MacBlock:
    """A block ``out[...] += a[...] * b[...]`` with at least one reduction iter.

    ``dims`` are the block's iter vars in source order (a var used under
    ``//`` or ``%``, as the grouped conv's channel, is split into ``_o``/``_i``
    parts so every access is affine).
    """

    name: str
    dims: tuple[tuple[str, int], ...]
    reduction: frozenset[str]
    output: Access
    operands: tuple[Access, Access]


@dataclass(frozen=True)
class CopyMap:
    """A PrimFunc that only copies one parameter with an affine index map (a transpose).

    ``projection`` gives the source index per source axis in terms of the
    output's axes, named ``a0, a1, ...``.
    """

    source: int
    projection: tuple[AffineExpr, ...]


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[int, ...] | None
    dtype: str


@dataclass(frozen=True)
class PrimFuncInfo:
    name: str
    params: tuple[Param, ...]
    macs: tuple[MacBlock, ...]
    copy: CopyMap | None
    dynamic: bool = False  # has a MAC block whose loop extents are symbolic


@dataclass(frozen=True)
class Value:
    """A Relax value of ``main`` (parameter or binding var)."""

    id: int
    name: str
    tensor: str | None  # the ONNX tensor it holds, when it holds one
    shape: tuple[int, ...] | None
    dtype: str | None


BindingKind = Literal["call_tir", "alias", "other"]


@dataclass(frozen=True)
class Binding:
    """One binding of ``main`` in execution order, attributed to the ONNX node it came from."""

    var: int
    node: str | None
    kind: BindingKind
    func: str | None  # the PrimFunc, for call_tir
    args: tuple[int, ...]  # values read; for call_tir the positional arguments
    relax_op: str  # the Relax operator before LegalizeOps ("" when unknown)


@dataclass
class ModuleDescription:
    model: str
    nodes: list[OnnxNode]
    values: dict[int, Value]
    bindings: list[Binding]
    funcs: dict[str, PrimFuncInfo]
