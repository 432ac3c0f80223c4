"""The points of one spatial unrolling, built one dim at a time, for the proof search.

A partial point is a row of indices into each joined dim's candidate factor
tuples. The box extents of every tile with a capacity are kept per axis and
grow as dims join (a dim adds ``|c| x (span - 1)`` to each axis it indexes,
its span being the product of its factors at and below the level), so a join
costs a few gathers and additions, and rows whose tiles already overflow are
dropped at once: tiles only grow as dims join. The caller prunes the rows
that fit, given their factors and the off-chip bound of their outer factors
(:mod:`joule.passes.mapper.bounds.offchip`, minimised over the dims not joined yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from joule.passes.mapper.bounds.offchip import OffchipTable
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.proof.vector_model import Factors, limited, within_capacity

CHUNK = 1 << 16  # rows per join step


class OffchipFloor:
    """The off-chip bound of partial points: the table minimised over unjoined dims."""

    def __init__(self, space: MapSpace, table: OffchipTable) -> None:
        self.table = table
        self.columns = {
            d: next(k for k, s in enumerate(space.slots[d]) if s.level == 0 and s.axis is None)
            for d in table.dims
        }
        self.choices = {d: np.array(c) for d, c in zip(table.dims, table.choices, strict=True)}
        self.reduced: dict[tuple[str, ...], np.ndarray] = {}

    def positions(self, dim: str, candidates: np.ndarray) -> np.ndarray | None:
        """Each candidate's outer factor as an index into the table's axis for ``dim``."""
        if dim not in self.columns:
            return None
        return np.searchsorted(self.choices[dim], candidates[:, self.columns[dim]])

    def lookup(self, positions: dict[str, np.ndarray], rows: int) -> np.ndarray:
        known = tuple(d for d in self.table.dims if d in positions)
        if known not in self.reduced:
            free = tuple(a for a, d in enumerate(self.table.dims) if d not in known)
            self.reduced[known] = self.table.energy.min(axis=free) if free else self.table.energy
        reduced = self.reduced[known]
        if not known:
            return np.full(rows, float(reduced))
        return reduced[tuple(positions[d] for d in known)]


class Joiner:
    """Joins the candidates of one unrolling into full points that fit."""

    def __init__(
        self,
        space: MapSpace,
        candidates: list[tuple[str, np.ndarray]],
        offchip: OffchipFloor | None,
    ) -> None:
        self.candidates = candidates
        self.offchip = offchip
        # Per depth: how many full points a row with that many dims joined can lead to.
        widths = [len(array) for _, array in candidates]
        self.completions = [math.prod(widths[k:]) for k in range(len(widths) + 1)]
        target = space.target
        # Capacity checks: (level index, level, [(role, axes)]) for levels with a limit.
        tensors = space.nest.tensors
        self.limits = [
            (i, level, [(t.role, len(t.projection)) for t in tensors if t.role in level.keeps])
            for i, level in enumerate(target.levels)
            if limited(level)
        ]
        by_role = {t.role: t for t in tensors}
        # Per dim: what each candidate adds to each (level, role, axis) extent it affects.
        self.adds: dict[str, dict[tuple[int, str, int], np.ndarray]] = {}
        self.outer: dict[str, np.ndarray] = {}
        for d, array in candidates:
            adds = {}
            for i, _, roles in self.limits:
                span = np.prod(
                    array[:, [k for k, s in enumerate(space.slots[d]) if s.level >= i]], axis=1
                )
                for role, _ in roles:
                    for a, axis in enumerate(by_role[role].projection):
                        coef = sum(abs(c) for dim, c in axis.terms if dim == d)
                        if coef:
                            adds[(i, role, a)] = coef * (span - 1)
            self.adds[d] = adds
            if offchip is not None:
                positions = offchip.positions(d, array)
                if positions is not None:
                    self.outer[d] = positions

    def leaves(
        self,
        spend: Callable[[int], None],
        prune: Callable[[Callable[[], Factors], np.ndarray, int], np.ndarray],
    ) -> Iterator[tuple[Factors, np.ndarray]]:
        """Full points that fit and that ``prune`` keeps, with their off-chip floor, in
        pieces. ``prune`` maps the factors of rows (the dims joined so far, built on
        demand), their off-chip floor and how many completions each row has at most to the
        rows to keep; ``spend`` is charged one unit per row built (and may raise to stop)."""
        if any(len(array) == 0 for _, array in self.candidates):
            return
        yield from self._join({}, {}, 1, 0, spend, prune)

    def _join(
        self,
        index: dict[str, np.ndarray],
        extents: dict[tuple[int, str, int], np.ndarray],
        rows: int,
        depth: int,
        spend: Callable[[int], None],
        prune: Callable[[Callable[[], Factors], np.ndarray, int], np.ndarray],
    ) -> Iterator[tuple[Factors, np.ndarray]]:
        dim, array = self.candidates[depth]
        width = len(array)
        step = max(1, CHUNK // width)
        for start in range(0, rows, step):
            count = min(step, rows - start)
            spend(count * width)
            picked = np.tile(np.arange(width), count)
            grown_index = {d: np.repeat(v[start : start + count], width) for d, v in index.items()}
            grown_index[dim] = picked
            grown = {k: np.repeat(v[start : start + count], width) for k, v in extents.items()}
            for key, add in self.adds[dim].items():
                grown[key] = grown.get(key, 1) + add[picked]
            fit = np.flatnonzero(self._fits(grown, count * width))
            if not fit.size:
                continue
            index_fit = {d: v[fit] for d, v in grown_index.items()}
            outer = self._outer_floor(index_fit, fit.size)
            keep = prune(
                lambda index=index_fit: self._factors(index),  # built only if a floor needs it
                outer,
                self.completions[depth + 1],
            )
            if not keep.any():
                continue
            if depth + 1 == len(self.candidates):
                yield self._factors({d: v[keep] for d, v in index_fit.items()}), outer[keep]
                continue
            yield from self._join(
                {d: v[keep] for d, v in index_fit.items()},
                {k: v[fit[keep]] for k, v in grown.items()},
                int(keep.sum()),
                depth + 1,
                spend,
                prune,
            )

    def _factors(self, index: dict[str, np.ndarray]) -> Factors:
        """The joined dims' factor tuples of the rows ``index`` points at."""
        return {d: array[index[d]] for d, array in self.candidates if d in index}

    def _fits(self, extents: dict[tuple[int, str, int], np.ndarray], rows: int) -> np.ndarray:
        ok = np.ones(rows, dtype=bool)
        for i, level, roles in self.limits:
            words = {}
            for role, axes in roles:
                words[role] = np.ones(rows, dtype=np.int64)
                for a in range(axes):
                    if (i, role, a) in extents:
                        words[role] = words[role] * extents[(i, role, a)]
            ok &= within_capacity(level, words, rows)
        return ok

    def _outer_floor(self, index: dict[str, np.ndarray], rows: int) -> np.ndarray:
        if self.offchip is None:
            return np.zeros(rows)
        positions = {d: self.outer[d][index[d]] for d in self.outer if d in index}
        return self.offchip.lookup(positions, rows)
