"""What a mapping's loops do to each dim: tiles, residual runs and PEs left idle.

With imperfect factors (``joule.cost.residual``; docs/imperfect-outputs.md) a dim's
loops with factor > 1, outermost first, are the digits of a mixed-radix index; each
loop's *step* is the product of the dim's factors inside it, and a point whose
index reaches the extent does not run. Every loop therefore has a last,
residual run: when every loop of the dim outside it is at its own last
iteration it runs only up to its digit of ``extent - 1``, plus one (Timeloop's
``residual_end``), over tiles whose last one is cut short. The outermost loop
is always in its residual run, so its residual equals its factor.

This module reads that off a mapping, for schedule.json, the reports and the
exporters; it searches nothing and scores nothing (the CostResult gives the
cycles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from joule.cost.result import CostResult
from joule.ir.loopnest import LoopNest
from joule.mapping import Axis, Mapping, residual_ends


@dataclass(frozen=True)
class LoopTiling:
    """One loop of a dim: where it is, how often it runs, the tile it leaves inside."""

    level: str
    axis: Axis | None  # None: temporal
    factor: int  # nominal iterations
    residual: int  # iterations in its last (residual) run: Timeloop's residual end
    tile: int  # nominal tile of the dim inside this loop (its step)
    residual_tile: int  # the last tile inside this loop, cut at the extent

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "axis": self.axis,
            "factor": self.factor,
            "residual": self.residual,
            "tile": self.tile,
            "residual_tile": self.residual_tile,
        }


@dataclass(frozen=True)
class DimTiling:
    """A dim's loops (factor > 1, outermost first) and whether they divide it exactly."""

    dim: str
    extent: int
    loops: tuple[LoopTiling, ...]

    @property
    def perfect(self) -> bool:
        return math.prod(lp.factor for lp in self.loops) == self.extent

    def to_dict(self) -> dict[str, Any]:
        return {
            "extent": self.extent,
            "perfect": self.perfect,
            "loops": [lp.to_dict() for lp in self.loops],
        }


@dataclass(frozen=True)
class TilingSummary:
    """Per dim its loops, and how well the spatial loops fill the PE array.

    ``pes_used`` is the product of all spatial factors: the PEs the mapping
    claims on every compute cycle. Residual tiles leave some of them idle, so
    ``lost_computes = compute_cycles x pes_used - macs`` PE-cycles do nothing
    (0 for a perfect mapping; temporal residuals cost none, they skip steps).
    """

    dims: tuple[DimTiling, ...]
    macs: int
    compute_cycles: int
    pes_used: int
    pes: int  # the target's PEs

    @property
    def perfect(self) -> bool:
        return all(d.perfect for d in self.dims)

    @property
    def lost_computes(self) -> int:
        return self.compute_cycles * self.pes_used - self.macs

    @property
    def used_pe_utilization(self) -> float:
        """MACs per PE-cycle of the PEs the spatial loops claim."""
        return self.macs / (self.compute_cycles * self.pes_used)

    @property
    def array_utilization(self) -> float:
        """MACs per PE-cycle of the whole array, over the compute cycles."""
        return self.macs / (self.compute_cycles * self.pes)

    def dim(self, name: str) -> DimTiling:
        for d in self.dims:
            if d.dim == name:
                return d
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "perfect": self.perfect,
            "dims": {d.dim: d.to_dict() for d in self.dims},
            "compute_cycles": self.compute_cycles,
            "pes_used": self.pes_used,
            "pes": self.pes,
            "used_pe_utilization": self.used_pe_utilization,
            "array_utilization": self.array_utilization,
            "lost_computes": self.lost_computes,
        }


def dim_tiling(mapping: Mapping, dim: str, extent: int) -> DimTiling:
    """The loops of ``dim`` with factor > 1, in nest order, with residuals and tiles."""
    placed: list[tuple[str, Axis | None, int]] = []
    for lvl in mapping.levels:
        placed += [(lvl.level, None, lp.factor) for lp in lvl.temporal if lp.dim == dim]
        placed += [(lvl.level, lp.axis, lp.factor) for lp in lvl.spatial if lp.dim == dim]
    placed = [p for p in placed if p[2] > 1]
    factors = [f for _, _, f in placed]
    ends = residual_ends(extent, factors)
    loops = []
    step = math.prod(factors)
    for (level, axis, factor), end in zip(placed, ends, strict=True):
        step //= factor
        loops.append(LoopTiling(level, axis, factor, end, step, (extent - 1) % step + 1))
    return DimTiling(dim, extent, tuple(loops))


def summarize(nest: LoopNest, mapping: Mapping, cost: CostResult) -> TilingSummary:
    """The tiling summary of ``mapping`` of ``nest`` as scored in ``cost`` (``cost.pes``
    is the target's PE count; the compute cycles are the model's, exact with residuals)."""
    dims = tuple(dim_tiling(mapping, d, e) for d, e in nest.extents.items())
    pes_used = math.prod(lp.factor for lvl in mapping.levels for lp in lvl.spatial)
    return TilingSummary(dims, nest.macs, cost.compute_cycles, pes_used, cost.pes)
