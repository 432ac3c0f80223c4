"""The space of mappings one layer may take on one target, shared by every mapper.

A point is a factorisation of every dim over its *slots* (one temporal slot per
level where the dim may loop, one spatial slot per array axis where it may be
unrolled) plus a loop order per level. Orders are searched over stationarity
classes: per level, which tensor's irrelevant loops run innermost (so that
tensor's tile stays put), the rest in a fixed order. Orders at the innermost
level never matter (nothing below refetches), nor do orders of one loop.
The exhaustive, random and CP-SAT mappers all search exactly this space, so
"optimal" means optimal over it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from joule.ir.loopnest import LoopNest
from joule.mapping import LevelLoops, Loop, Mapping
from joule.targets.spec import Target


@dataclass(frozen=True)
class Slot:
    dim: str
    level: int
    axis: str | None  # None: temporal; "X" / "Y": spatial below ``level``


@dataclass(frozen=True)
class SpaceConstraints:
    """Where each dim may loop, per level (dims of the nest, not convolution names)."""

    temporal: tuple[frozenset[str], ...]
    spatial_x: tuple[frozenset[str], ...]
    spatial_y: tuple[frozenset[str], ...]
    permutation: tuple[tuple[str, ...] | None, ...]  # fixed order (outermost first) or None
    dataflow: str = "free"


class MapSpace:
    def __init__(self, nest: LoopNest, target: Target, constraints: SpaceConstraints) -> None:
        self.nest = nest
        self.target = target
        self.constraints = constraints
        self.extents = nest.extents
        self.dims = tuple(d for d in nest.dim_names if self.extents[d] > 1)
        self.levels = len(target.levels)
        self.fanout = tuple(target.fanout(i) for i in range(self.levels))
        self.level_names = tuple(lvl.name for lvl in target.levels)

    @cached_property
    def slots(self) -> dict[str, tuple[Slot, ...]]:
        """Per dim, its slots in nest order (level by level: temporal, X, Y)."""
        c = self.constraints
        out: dict[str, tuple[Slot, ...]] = {}
        for d in self.dims:
            slots: list[Slot] = []
            for i in range(self.levels):
                if d in c.temporal[i]:
                    slots.append(Slot(d, i, None))
                fx, fy = self.fanout[i]
                if fx > 1 and d in c.spatial_x[i]:
                    slots.append(Slot(d, i, "X"))
                if fy > 1 and d in c.spatial_y[i]:
                    slots.append(Slot(d, i, "Y"))
            out[d] = tuple(slots)
        return out

    def slot_limit(self, slot: Slot) -> int:
        if slot.axis is None:
            return self.extents[slot.dim]
        fx, fy = self.fanout[slot.level]
        return fx if slot.axis == "X" else fy

    @cached_property
    def factor_tuples(self) -> dict[str, list[tuple[int, ...]]]:
        """Per dim, every ordered factorisation of its extent over its slots."""
        out = {}
        for d in self.dims:
            limits = [self.slot_limit(s) for s in self.slots[d]]
            out[d] = list(_factorisations(self.extents[d], limits))
        return out

    def imperfect_tuples(self, dim: str, limit: int) -> list[tuple[int, ...]]:
        """Every tuple of ``dim`` with imperfect factors allowed: any inner factors up
        to their slot's limit, the outermost slot left running ``ceil(extent / the
        others)`` (docs/cost-model.md, "Imperfect factors"). Built from the innermost
        slot out: each slot either closes the dim (that ceiling) or takes a factor
        that leaves less than the extent inside; ValueError past ``limit`` tuples."""
        slots = self.slots[dim]
        extent = self.extents[dim]
        limits = [self.slot_limit(s) for s in slots]
        out: list[tuple[int, ...]] = []

        def close(k: int, tail: tuple[int, ...], inside: int) -> None:
            outer = -(-extent // inside)
            if outer <= limits[k]:
                out.append((1,) * k + (outer, *tail))
                if len(out) > limit:
                    raise ValueError(f"{dim} has too many imperfect factorisations to enumerate")
            if k > 0:
                for f in range(1, min(limits[k], extent) + 1):
                    if f * inside >= extent:
                        break
                    close(k - 1, (f, *tail), inside * f)

        if slots:
            close(len(slots) - 1, (), 1)
        return sorted(out)

    @cached_property
    def tuples_by_unrolling(self) -> dict[str, dict[tuple[int, ...], list[tuple[int, ...]]]]:
        """Per dim, its factor tuples grouped by their spatial factors (in slot order):
        the temporal choices left once an unrolling is fixed."""
        out: dict[str, dict[tuple[int, ...], list[tuple[int, ...]]]] = {}
        for d in self.dims:
            spatial = [k for k, s in enumerate(self.slots[d]) if s.axis is not None]
            groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
            for factors in self.factor_tuples[d]:
                groups.setdefault(tuple(factors[k] for k in spatial), []).append(factors)
            out[d] = groups
        return out

    @cached_property
    def order_candidates(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """Per level, the loop orders (outermost first) worth distinguishing."""
        out = []
        for i in range(self.levels):
            dims = [
                d for d in self.dims if any(s.level == i and s.axis is None for s in self.slots[d])
            ]
            fixed = self.constraints.permutation[i]
            if fixed is not None:
                rank = {d: k for k, d in enumerate(fixed)}
                dims.sort(key=lambda d: rank.get(d, -1))
                out.append((tuple(dims),))
            elif i == self.levels - 1 or len(dims) <= 1:
                out.append((tuple(dims),))
            else:
                orders: list[tuple[str, ...]] = []
                for tensor in self.nest.tensors:
                    idle = [d for d in dims if d not in tensor.relevant_dims]
                    busy = [d for d in dims if d in tensor.relevant_dims]
                    order = tuple(busy + idle)
                    if order not in orders:
                        orders.append(order)
                out.append(tuple(orders))
        return tuple(out)

    def order_combos(self) -> Iterator[tuple[tuple[str, ...], ...]]:
        return itertools.product(*self.order_candidates)

    @property
    def size(self) -> int:
        return math.prod(len(t) for t in self.factor_tuples.values()) * math.prod(
            len(o) for o in self.order_candidates
        )

    @cached_property
    def _layout(self) -> tuple[tuple[dict[str, int], tuple[tuple[str, str, int], ...]], ...]:
        """Per level: each dim's temporal slot column, and (axis, dim, column) of its
        spatial slots in mapping order (X then Y, dims in nest order)."""
        out = []
        for i in range(self.levels):
            temporal = {
                d: k
                for d in self.dims
                for k, s in enumerate(self.slots[d])
                if s.level == i and s.axis is None
            }
            spatial = tuple(
                (axis, d, k)
                for axis in ("X", "Y")
                for d in self.dims
                for k, s in enumerate(self.slots[d])
                if s.level == i and s.axis == axis
            )
            out.append((temporal, spatial))
        return tuple(out)

    def mapping(
        self, factors: dict[str, tuple[int, ...]], orders: tuple[tuple[str, ...], ...]
    ) -> Mapping:
        """The mapping of one point: factor-1 loops are left out."""
        levels = []
        for lvl, (temporal_at, spatial_at), order in zip(
            self.target.levels, self._layout, orders, strict=True
        ):
            temporal = tuple(
                Loop(d, factors[d][temporal_at[d]])
                for d in order
                if d in temporal_at and factors[d][temporal_at[d]] > 1
            )
            spatial = tuple(
                Loop(d, factors[d][k], axis)  # type: ignore[arg-type]
                for axis, d, k in spatial_at
                if factors[d][k] > 1
            )
            levels.append(LevelLoops(lvl.name, temporal, spatial))
        return Mapping(tuple(levels))

    def link_slots(self, level: int) -> list[Slot]:
        """The spatial slots on the link axis of the fan-out right above ``level`` (its
        network's ``links``), in the order a mapping lays them out: the last one's
        neighbours are adjacent instances (docs/cost-model.md, "Inter-PE links")."""
        links = self.target.levels[level - 1].network.links
        assert links is not None
        return [
            s
            for d in self.dims
            for s in self.slots[d]
            if s.level == level - 1 and s.axis == links.axis
        ]

    def spatial_fits(self, factors: dict[str, tuple[int, ...]]) -> bool:
        """Do the spatial factors of every fan-out fit its X and Y sizes?"""
        used: dict[tuple[int, str], int] = {}
        for d in self.dims:
            for slot, f in zip(self.slots[d], factors[d], strict=True):
                if slot.axis is not None and f > 1:
                    key = (slot.level, slot.axis)
                    used[key] = used.get(key, 1) * f
        for (level, axis), product in used.items():
            fx, fy = self.fanout[level]
            if product > (fx if axis == "X" else fy):
                return False
        return True


def canonical_tuple(extent: int, factors: tuple[int, ...]) -> tuple[int, ...]:
    """``factors`` (slot order, outermost first) made a valid imperfect tuple: the
    outermost slot left with a factor runs ``ceil(extent / the others)`` times. The
    first slot is that slot unless the others alone cover the dim; then each slot
    whose inner factors alone overshoot is dropped to 1, until one can."""
    t = [1, *factors[1:]]
    for j, f in enumerate(t):
        if j > 0 and f == 1:
            continue
        rest = math.prod(t) // f
        if rest >= extent:
            t[j] = 1
            if rest == extent:
                return tuple(t)
            continue
        t[j] = -(-extent // rest)
        return tuple(t)
    return tuple(t)  # extent 1: every factor dropped


def _factorisations(extent: int, limits: list[int]) -> Iterator[tuple[int, ...]]:
    """Ordered tuples of divisors, one per slot, multiplying to ``extent``."""
    if not limits:
        if extent == 1:
            yield ()
        return
    head, rest = limits[0], limits[1:]
    for f in _divisors(extent):
        if f <= head:
            for tail in _factorisations(extent // f, rest):
                yield (f, *tail)


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))
