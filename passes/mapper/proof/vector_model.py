"""The cost model over many points of a mapspace at once (numpy), for exact enumeration.

:func:`joule.cost.model.score` scores one mapping in about 50 µs; proving a
layer's optimum means scoring millions. This module computes the same counts
for a batch of points as integer arrays, following ``score`` term by term
(tiles as boxes, fills as consecutive-tile deltas with the innermost relevant
loop's halo, multicast and spatial reduction, first writes free). What does
not depend on the loop orders is computed once per batch; fills are cached
per order of the levels above them. tests/test_vector_model.py checks it
against ``score`` on random points of every bundled target; the prover
re-scores anything it keeps with ``score`` itself.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
from joule.cost.terms import cost_terms
from joule.ir.loopnest import Tensor
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from joule.targets.spec import StorageLevel

Factors = dict[str, np.ndarray]  # per dim, an int64 array (points x the dim's slots)
Orders = tuple[tuple[str, ...], ...]


class VectorModel:
    """Per space: the cost terms, and which slot column each factor sits in."""

    def __init__(self, space: MapSpace) -> None:
        self.space = space
        self.terms = cost_terms(space.nest, space.target)
        # (role, level) pairs whose fills a neighbour may serve (inter-PE links).
        self.linked = sorted(
            {(t.tensor.role, t.count.level) for t in self.terms.terms if t.kind == "link"}
        )
        self.columns = {d: {s: k for k, s in enumerate(space.slots[d])} for d in space.dims}
        # (role, dim) whose tile never overlaps its next one along that dim: an axis indexed
        # by that dim alone moves by at least the whole tile, so the halo term is 0.
        self.no_halo = {
            (t.role, d)
            for t in space.nest.tensors
            for axis in t.projection
            for d, c in axis.terms
            if len(axis.terms) == 1 and c
        }

    def fits(self, factors: Factors) -> np.ndarray:
        """Points whose tiles fit every buffer (dims missing from ``factors`` count as 1,
        which only shrinks tiles: partial points that fail can be dropped early)."""
        return Batch(self, factors).fits()


class Batch:
    """Points sharing nothing but the space; derived arrays are computed once each.

    Dims in ``relaxed`` stand for dims a partial point has not fixed yet: their rows carry
    the spatial factors and 1 elsewhere, and their whole extent spans every tile. Their
    floors then bound every completion's energy (docs/cost-model.md, "Proving the optimum")."""

    def __init__(
        self, model: VectorModel, factors: Factors, relaxed: frozenset[str] = frozenset()
    ) -> None:
        self.model = model
        self.space = model.space
        self.factors = factors
        self.relaxed = relaxed
        self.n = len(next(iter(factors.values()))) if factors else 1
        self._cache: dict[tuple, np.ndarray] = {}

    def _memo(self, key: tuple, make) -> np.ndarray:  # noqa: ANN001
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = make()
        return hit

    def _columns(self, dim: str, cols: Iterable[int]) -> np.ndarray:
        cols = list(cols)
        if dim not in self.factors or not cols:
            return np.ones(self.n, dtype=np.int64)
        return np.prod(self.factors[dim][:, cols], axis=1)

    def inner(self, dim: str, level: int) -> np.ndarray:
        """Product of the dim's factors at ``level`` and below: its span in that tile."""
        if dim in self.relaxed:
            return self._memo(
                ("inner", dim, level),
                lambda: self.space.extents[dim] // self.spread((dim,), 0, level),
            )
        slots = self.space.slots.get(dim, ())
        return self._memo(
            ("inner", dim, level),
            lambda: self._columns(dim, (k for k, s in enumerate(slots) if s.level >= level)),
        )

    def step(self, dim: str, column: int) -> np.ndarray:
        """Product of the dim's factors nested inside its slot ``column``."""
        width = len(self.space.slots[dim])
        return self._memo(
            ("step", dim, column), lambda: self._columns(dim, range(column + 1, width))
        )

    def spread(self, dims: Iterable[str], lo: int, hi: int) -> np.ndarray:
        """Product of the spatial factors of ``dims`` on the fan-outs of levels lo..hi-1."""
        dims = tuple(sorted(d for d in dims if d in self.model.columns))

        def make() -> np.ndarray:
            out = np.ones(self.n, dtype=np.int64)
            for d in dims:
                cols = [
                    k
                    for s, k in self.model.columns[d].items()
                    if s.axis is not None and lo <= s.level < hi
                ]
                if cols:
                    out = out * self._columns(d, cols)
            return out

        return self._memo(("spread", dims, lo, hi), make)

    def instances(self, level: int) -> np.ndarray:
        return self.spread(self.space.dims, 0, level)

    def extents(self, tensor: Tensor, level: int) -> list[np.ndarray]:
        """Per axis, the box extent of ``tensor``'s tile at ``level``."""
        out = []
        for a, axis in enumerate(tensor.projection):

            def make(axis=axis) -> np.ndarray:  # noqa: ANN001
                extent = np.ones(self.n, dtype=np.int64)
                for d, c in axis.terms:
                    if d in self.factors and d not in self.relaxed:
                        extent = extent + abs(c) * (self.inner(d, level) - 1)
                # A relaxed dim's span joins with a step of at most the rest's extent:
                # a whole-dim box would count the gaps between strided windows.
                rest = extent
                for d, c in axis.terms:
                    if d in self.relaxed:
                        extent = extent + np.minimum(abs(c), rest) * (self.inner(d, level) - 1)
                return extent

            out.append(self._memo(("extent", tensor.role, a, level), make))
        return out

    def tile(self, tensor: Tensor, level: int) -> np.ndarray:
        return self._memo(
            ("tile", tensor.role, level), lambda: _product(self.extents(tensor, level), self.n)
        )

    def fits(self) -> np.ndarray:
        ok = np.ones(self.n, dtype=bool)
        for i, level in enumerate(self.space.target.levels):
            if limited(level):
                tensors = [t for t in self.space.nest.tensors if t.role in level.keeps]
                ok &= within_capacity(level, {t.role: self.tile(t, i) for t in tensors}, self.n)
        return ok

    def first(self, relevant: frozenset[str], level: int) -> np.ndarray:
        """Distinct output words one instance of ``level`` touches (injective projection)."""
        total = math.prod(self.space.extents[d] for d in relevant)
        return total // self.spread(relevant, 0, level)

    def fills(self, tensor: Tensor, level: int, orders: Orders) -> np.ndarray:
        """Words one instance of ``level`` fetches (``fills_per_instance``): the tile times
        the outer trips out to the innermost relevant loop L*, less L*'s halo overlap."""
        return self._memo(
            ("fills", tensor.role, level, orders[:level]),
            lambda: self._fills(tensor, level, orders[:level]),
        )

    def _fills(self, tensor: Tensor, level: int, outer: Orders, free: int = 0) -> np.ndarray:
        """With ``free`` > 0, only for points whose L* lies below the ``free`` outermost
        levels: their loops then only multiply the trips, whatever their order."""
        extents = self.extents(tensor, level)
        tile = self.tile(tensor, level)
        loops = tuple((d, i) for i, order in enumerate(outer) for d in order if i >= free)
        above = tuple(sorted((d, i) for i, order in enumerate(outer[:free]) for d in order))
        outermost = self.trips(above) if free else 1
        out = tile
        for k, (d, i) in enumerate(loops):
            if d not in tensor.relevant_dims:
                continue
            column = self.model.columns[d][Slot(d, i, None)]
            f = self.column(d, column)
            if not (f > 1).any():
                continue  # a loop of 1 is no loop: L* lies further out
            trips = self.trips(loops[:k]) * outermost
            if (tensor.role, d) in self.model.no_halo:
                candidate = trips * tile * f
            else:
                overlap = np.ones(self.n, dtype=np.int64)
                for axis, extent in zip(tensor.projection, extents, strict=True):
                    shift = sum(c for dim, c in axis.terms if dim == d)
                    if shift:
                        extent = np.maximum(0, extent - abs(shift) * self.step(d, column))
                    overlap = overlap * extent
                candidate = trips * (tile * f - (f - 1) * overlap)
            out = np.where(f > 1, candidate, out)
        return out

    def links(self, tensor: Tensor, level: int, orders: Orders) -> np.ndarray:
        """Words all instances of ``level`` take from a neighbour (``linked_words``): where
        the innermost temporal loop above moves the tile by the innermost spatial loop's
        offset on the link axis, and by at least its whole extent."""
        return self._memo(
            ("links", tensor.role, level, orders[:level]),
            lambda: self._links(tensor, level, orders[:level]),
        )

    def _links(self, tensor: Tensor, level: int, outer: Orders) -> np.ndarray:
        n = self.n
        loops = tuple((d, i) for i, order in enumerate(outer) for d in order)
        spatial = self._link_slots(level)
        extents = self.extents(tensor, level)
        total = np.zeros(n, dtype=np.int64)
        star_free = np.ones(n, dtype=bool)  # no loop of more than 1 inside this one
        for k in range(len(loops) - 1, -1, -1):
            d, i = loops[k]
            column = self.model.columns[d][Slot(d, i, None)]
            f = self.column(d, column)
            is_star = star_free & (f > 1)
            star_free = star_free & (f == 1)
            if d not in tensor.relevant_dims or not is_star.any():
                continue
            shift = [
                sum(c for e, c in axis.terms if e == d) * self.step(d, column)
                for axis in tensor.projection
            ]
            whole = np.zeros(n, dtype=bool)
            for move, extent in zip(shift, extents, strict=True):
                whole |= np.abs(move) >= extent
            link_free = np.ones(n, dtype=bool)
            for m in range(len(spatial) - 1, -1, -1):
                dm, cm = spatial[m]
                fm = self.column(dm, cm)
                is_link = link_free & (fm > 1)
                link_free = link_free & (fm == 1)
                offset = [
                    sum(c for e, c in axis.terms if e == dm) * self.step(dm, cm)
                    for axis in tensor.projection
                ]
                same = np.ones(n, dtype=bool)
                opposite = np.ones(n, dtype=bool)
                for o, sh in zip(offset, shift, strict=True):
                    same &= o == sh
                    opposite &= o == -sh
                ok = is_star & is_link & whole & (same | opposite)
                if ok.any():
                    value = (
                        self.instances(level)
                        // fm
                        * (fm - 1)
                        * self.trips(loops[:k])
                        * (f - 1)
                        * self.tile(tensor, level)
                    )
                    total = np.where(ok, value, total)
        return total

    def _link_slots(self, level: int) -> list[tuple[str, int]]:
        """(dim, column) of ``MapSpace.link_slots``."""
        return [(s.dim, self.model.columns[s.dim][s]) for s in self.space.link_slots(level)]

    def link_ceiling(self, level: int) -> np.ndarray:
        """At most this share of the fills of ``level`` is linked: (f - 1) / f of the
        innermost spatial loop on the link axis (known: spatial factors are fixed)."""
        out = np.zeros(self.n)
        free = np.ones(self.n, dtype=bool)
        for d, k in reversed(self._link_slots(level)):
            f = self.column(d, k)
            out = np.where(free & (f > 1), (f - 1) / f, out)
            free &= f == 1
        return out

    def lines(self, level: int) -> np.ndarray:
        along = np.ones(self.n, dtype=np.int64)
        for d, k in self._link_slots(level):
            along = along * self.column(d, k)
        return self.instances(level) // along

    def column(self, dim: str, column: int) -> np.ndarray:
        return self._memo(("column", dim, column), lambda: self.factors[dim][:, column])

    def trips(self, loops: tuple[tuple[str, int], ...]) -> np.ndarray:
        """Product of the factors of temporal ``loops`` (dim, level), shared by every tensor."""
        if not loops:
            return np.ones(self.n, dtype=np.int64)
        d, i = loops[-1]
        return self._memo(
            ("trips", loops),
            lambda: (
                self.trips(loops[:-1]) * self.column(d, self.model.columns[d][Slot(d, i, None)])
            ),
        )

    def evaluate(self, orders: Orders) -> tuple[np.ndarray, np.ndarray]:
        """Energy (pJ) and cycles of every point, exactly as ``score`` computes them
        (tiles are assumed to fit: filter with :meth:`fits`)."""
        outer, rest, reads_at, writes_at = self._energy(self.blocks(orders))
        space = self.space
        cycles = np.ones(self.n, dtype=np.int64)
        for d in space.dims:
            temporal = [k for s, k in self.model.columns[d].items() if s.axis is None]
            cycles = cycles * self._columns(d, temporal)
        for i, lvl in enumerate(space.target.levels):
            if lvl.bandwidth_words_per_cycle is None:
                continue
            busiest = np.maximum(reads_at[i], writes_at[i]) / self.instances(i)
            cycles = np.maximum(cycles, np.ceil(busiest / lvl.bandwidth_words_per_cycle))
        return outer + rest, cycles

    def floor(self, orders: Orders, free: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Energy no orders of the ``free`` outermost levels can beat (``orders[:free]`` are
        ignored), split into the outermost level's part and the rest (MACs included):
        every count grows with the fills, so :meth:`fills_floor` gives lower bounds."""

        def fills(t: Tensor, level: int) -> np.ndarray:
            return self.fills_floor(t, level, orders, free)

        linked = self.model.linked
        if not linked:
            outer, rest, _, _ = self._energy(ArrayBlocks(self, fills, _no_links))
            return outer, rest
        # Energy is affine in each linked share alpha in [0, ceiling] and grows with the
        # fills whatever alpha is: the least of its values at the corners bounds it.
        outer = rest = None
        for corner in itertools.product((False, True), repeat=len(linked)):
            on = {key for key, up in zip(linked, corner, strict=True) if up}

            def links(t: Tensor, level: int, on: set = on) -> np.ndarray:
                if (t.role, level) not in on:
                    return np.zeros(self.n)
                blocks_fills = fills(t, level) * self.instances(level)
                return blocks_fills * self.link_ceiling(level)

            o, r, _, _ = self._energy(ArrayBlocks(self, fills, links))
            outer = o if outer is None else np.minimum(outer, o)
            rest = r if rest is None else np.minimum(rest, r)
        return outer, rest

    def fills_floor(self, tensor: Tensor, level: int, orders: Orders, free: int) -> np.ndarray:
        """At most the fills under any orders of the ``free`` outermost levels. With a
        relevant loop below them, L* lies there and their loops only multiply the trips,
        in any order; else each of their relevant loops whose dim moves the tile by a
        whole tile is one of L*'s trips or L* itself: the tile times their factors."""
        return self._memo(
            ("floor", tensor.role, level, free, orders[free:level]),
            lambda: self._fills_floor(tensor, level, orders, free),
        )

    def _fills_floor(self, tensor: Tensor, level: int, orders: Orders, free: int) -> np.ndarray:
        base = self.tile(tensor, level)
        for i in range(min(free, level)):
            for d in tensor.relevant_dims:
                slot = Slot(d, i, None)
                if (tensor.role, d) in self.model.no_halo and slot in self.model.columns.get(d, {}):
                    base = base * self.column(d, self.model.columns[d][slot])
        inner = np.zeros(self.n, dtype=bool)
        for i in range(free, level):
            for d in orders[i]:
                if d in tensor.relevant_dims:
                    inner |= self.column(d, self.model.columns[d][Slot(d, i, None)]) > 1
        if not inner.any():
            return base
        return np.where(inner, self._fills(tensor, level, orders[:level], free), base)

    def blocks(self, orders: Orders) -> ArrayBlocks:
        """The cost terms' building blocks for every point under ``orders``."""
        return ArrayBlocks(
            self,
            lambda tensor, level: self.fills(tensor, level, orders),
            lambda tensor, level: self.links(tensor, level, orders),
        )

    def _energy(self, blocks: ArrayBlocks) -> tuple[np.ndarray, np.ndarray, list, list]:
        """The outermost level's energy, the rest's (MACs included), and per level the
        words read and written."""
        space = self.space
        nest, target = space.nest, space.target
        n = self.n
        by_level = [np.zeros(n) for _ in target.levels]
        reads_at = [np.zeros(n, dtype=np.int64) for _ in target.levels]
        writes_at = [np.zeros(n, dtype=np.int64) for _ in target.levels]
        for term, count in self.model.terms.evaluate(blocks):
            if term.energy_pj:
                by_level[term.level] += count * term.energy_pj
            # Not in place: floors with links count in floats (a share of the fills).
            if term.kind == "read":
                reads_at[term.level] = reads_at[term.level] + count
            elif term.kind in ("fill", "update"):
                writes_at[term.level] = writes_at[term.level] + count
        rest = nest.macs * target.mac_energy_pj + sum(by_level[1:], np.zeros(n))
        return by_level[0], rest, reads_at, writes_at


class ArrayBlocks:
    """The building blocks of ``joule.cost.terms`` over a batch: one array per count."""

    def __init__(self, batch: Batch, fills, links) -> None:  # noqa: ANN001
        self.batch = batch
        self.per_instance = fills
        self.linked = links
        self._fills: dict[tuple[str, int], np.ndarray] = {}

    def macs(self) -> np.ndarray:
        return np.full(self.batch.n, self.batch.space.nest.macs, dtype=np.int64)

    def fills(self, tensor: Tensor, level: int) -> np.ndarray:
        key = (tensor.role, level)
        if key not in self._fills:
            self._fills[key] = self.per_instance(tensor, level) * self.batch.instances(level)
        return self._fills[key]

    def first(self, tensor: Tensor, level: int) -> np.ndarray:
        return self.batch.first(tensor.relevant_dims, level) * self.batch.instances(level)

    def grouped(self, tensor: Tensor, outer: int, inner: int) -> None:
        return None  # perfect factors only: every child of a group is busy

    def shared(self, tensor: Tensor, outer: int, inner: int) -> np.ndarray:
        idle = [d for d in self.batch.space.dims if d not in tensor.relevant_dims]
        return self.batch.spread(idle, outer, inner)

    def links(self, tensor: Tensor, level: int) -> np.ndarray:
        return self.linked(tensor, level)

    def lines(self, tensor: Tensor, level: int) -> np.ndarray:
        return self.batch.lines(level)

    def plus(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def minus(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def divide(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a // b

    def times(self, k: int, a: np.ndarray) -> np.ndarray:
        return k * a


def _no_links(tensor: Tensor, level: int) -> np.ndarray:
    raise AssertionError("the terms of a target without links ask for none")


def limited(level: StorageLevel) -> bool:
    """Whether the level has any capacity to check."""
    return level.capacity_words is not None or bool(level.capacity_per_tensor)


def within_capacity(level: StorageLevel, words: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Rows whose tiles (words per role, kept at ``level``) fit its per-role and shared
    capacities, in bits: the numpy form of ``joule.cost.validate.check_tiles``."""
    ok = np.ones(rows, dtype=bool)
    total = np.zeros(rows)
    for role, tile in words.items():
        bits = tile * level.bits_of(role)  # type: ignore[arg-type]
        total = total + bits
        cap = level.capacity_bits_for(role)  # type: ignore[arg-type]
        if cap is not None:
            ok &= bits <= cap
    cap = level.capacity_bits()
    if cap is not None:
        ok &= total <= cap
    return ok


def _product(arrays: list[np.ndarray], n: int) -> np.ndarray:
    out = np.ones(n, dtype=np.int64)
    for a in arrays:
        out = out * a
    return out
