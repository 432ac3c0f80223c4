"""Exact counts for imperfect factors: tiles that run with a smaller last (residual) tile.

A dim's loops form a mixed-radix number (steps are the nominal products of the
factors inside); a point runs iff its index is below the dim's extent
(docs/cost-model.md, "Imperfect factors"). Above a level boundary the offset of
a dim is a multiple of the tile it leaves inside, so every tile of a dim is
either full or the one residual tile, and the tiles that run can be *counted*
per dim with a digit recursion instead of walked. Tensors' boxes join dims only
along their axes, so every count of the model is a product over groups of axes
of sums over at most two tile sizes per dim.

Perfect mappings never come here (``ragged`` is False for them), so the fast
closed forms of ``joule.cost.nest`` stay the perfect case's definition; on a
perfect mapping these counts equal them (tests/test_residual_tiles.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from functools import lru_cache

from joule.cost.nest import FlatLoop, FlatNest, link_pair

Terms = tuple[tuple[tuple[str, int], ...], ...]


def ragged(flat: FlatNest, extents: dict[str, int]) -> bool:
    """Whether some dim's factors overshoot its extent (the mapping has residual tiles)."""
    product: dict[str, int] = {}
    for lp in flat.loops:
        product[lp.dim] = product.get(lp.dim, 1) * lp.factor
    return any(product.get(d, 1) != e for d, e in extents.items())


class ResidualNest:
    """The counts of one imperfect mapping that the cost terms' building blocks need."""

    def __init__(self, flat: FlatNest, extents: dict[str, int]) -> None:
        self.flat = flat
        self.extents = extents
        self.positions: dict[str, list[int]] = {d: [] for d in extents}
        for pos, lp in enumerate(flat.loops):
            self.positions[lp.dim].append(pos)
        # Each score asks the same per-dim counts for many terms: memoised per mapping.
        self._combos: dict[tuple, int] = {}
        self._inside: dict[tuple[str, int], int] = {}
        self._boxes: dict[tuple, int] = {}  # fills of several terms share box sums

    # -- per dim ------------------------------------------------------------------------

    def inside(self, dim: str, level: int) -> int:
        """Nominal tile of ``dim`` inside ``level`` (the product of its factors there)."""
        key = (dim, level)
        hit = self._inside.get(key)
        if hit is None:
            b = self.flat.boundary[level]
            hit = math.prod(self.flat.loops[p].factor for p in self.positions[dim] if p >= b)
            self._inside[key] = hit
        return hit

    def _perfect(self, dim: str) -> bool:
        return (
            math.prod(self.flat.loops[p].factor for p in self.positions[dim]) == self.extents[dim]
        )

    def held_reach(self, level: int) -> dict[str, int]:
        """Per dim, the reach of the largest tile that runs inside ``level``: the
        nominal tile, or the whole dim where the tile overshoots it."""
        return {d: min(self.inside(d, level), e) - 1 for d, e in self.extents.items()}

    def combos(self, dim: str, limit: int, free: frozenset[int]) -> int:
        """Digit combinations of ``dim``'s loops at the positions ``free`` (each
        ranges over its factor; every other loop stays at 0) whose offset is below
        ``limit`` (:func:`running_combos`)."""
        chosen = tuple(p for p in self.positions[dim] if p in free)
        key = (limit, chosen)
        hit = self._combos.get(key)
        if hit is None:
            hit = self._combos[key] = self._count(chosen, limit)
        return hit

    def _count(self, chosen: tuple[int, ...], limit: int) -> int:
        return running_combos(
            [(lp.factor, lp.step) for lp in map(self.flat.loops.__getitem__, chosen)], limit
        )

    def sizes(self, dim: str, level: int, free: frozenset[int]) -> list[tuple[int, int]]:
        """(tile size, how many run) for ``dim`` inside ``level``: full tiles and the residual."""
        extent = self.extents[dim]
        tile = self.inside(dim, level)
        running = self.combos(dim, extent, free)
        full = self.combos(dim, extent - tile + 1, free)
        out = [(tile, full), (extent % tile, running - full)]
        return [(size, count) for size, count in out if count]

    # -- per tensor ---------------------------------------------------------------------

    def fills(
        self, terms: Terms, relevant: frozenset[str], level: int, collapsed: frozenset[int]
    ) -> int:
        """Words the instances of ``level`` fetch of a tensor as their tiles walk the
        loops above: one whole tile per distinct step of the loops out to L* that
        runs, less the overlap kept on each step of L* (see ``fills_per_instance``).

        ``collapsed``: spatial loops whose instances count once (a multicast or
        reduction group: the group runs when its first member does)."""
        flat = self.flat
        b = flat.boundary[level]
        star = -1
        for p in range(b):
            lp = flat.loops[p]
            if not lp.spatial and lp.dim in relevant:
                star = p

        # Temporal loops inside L* are irrelevant: the tile stays, they count at 0.
        free = frozenset(
            p for p in range(b) if (p not in collapsed if flat.loops[p].spatial else p <= star)
        )
        scale = 1
        for d in self.extents:
            if d not in relevant:
                scale *= self.combos(d, self.extents[d], free)
        groups = _axis_groups(terms)
        tiles = scale
        for axes in groups:
            tiles *= self._box_sum(terms, axes, level, free, None)
        if star < 0 or tiles == 0:
            return tiles
        lstar = flat.loops[star]
        moving = self.combos(lstar.dim, self.extents[lstar.dim], free) - self.combos(
            lstar.dim, self.extents[lstar.dim], free - {star}
        )
        kept = scale * moving
        for axes in groups:
            if any(d == lstar.dim for a in axes for d, _ in terms[a]):
                kept *= self._box_sum(terms, axes, level, free, lstar)
            else:
                kept *= self._box_sum(terms, axes, level, free, None)
        return tiles - kept

    def _box_sum(
        self,
        terms: Terms,
        axes: list[int],
        level: int,
        free: frozenset[int],
        star: FlatLoop | None,
    ) -> int:
        """Sum over the tiles that run of the box's extent on ``axes`` (dims shared
        by no other axes); with ``star`` (L*), of the overlap a step of L* keeps,
        L*'s dim counted apart (its previous tile is full)."""
        key = (terms, tuple(axes), level, free, star)
        hit = self._boxes.get(key)
        if hit is not None:
            return hit
        if len(axes) == 1 and len(terms[axes[0]]) == 1:
            # One dim on one axis (most axes): no combinations to walk.
            ((d, c),) = terms[axes[0]]
            c = abs(c)
            if star is not None:  # L* is this axis's dim: one full tile, shifted
                total = max(0, 1 + c * (self.inside(d, level) - 1) - c * star.step)
            else:
                total = sum(n * (1 + c * (size - 1)) for size, n in self.sizes(d, level, free))
            self._boxes[key] = total
            return total
        dims = sorted({d for a in axes for d, _ in terms[a]})
        star_dim = None if star is None else star.dim
        choices: list[Iterable[tuple[int, int]]] = []
        for d in dims:
            if d == star_dim:
                choices.append([(self.inside(d, level), 1)])
            else:
                choices.append(self.sizes(d, level, free))
        total = 0
        for combo in itertools.product(*choices):
            size = dict(zip(dims, (s for s, _ in combo), strict=True))
            weight = math.prod(n for _, n in combo)
            value = 1
            for a in axes:
                extent = 1 + sum(abs(c) * (size[d] - 1) for d, c in terms[a])
                if star is not None:
                    shift = abs(sum(c for d, c in terms[a] if d == star.dim)) * star.step
                    extent = max(0, extent - shift) if shift else extent
                value *= extent
            total += weight * value
        self._boxes[key] = total
        return total

    def linked(self, terms: Terms, child: int, axis: str, collapsed: frozenset[int]) -> int:
        """Words the instances of ``child`` take from a neighbour along ``axis``
        (docs/cost-model.md, "Inter-PE links"), summed over the tiles that run.

        The rule is the perfect case's: on a step of L* (the innermost loop above
        the child), a receiver whose whole tile is new takes it from the neighbour
        one along the link loop S that fetched exactly that tile, whole, one step
        earlier. With residual tiles the receiver, its neighbour and their tiles
        depend on where the dims of L*, S and their axes stand, so those "core"
        dims are walked digit by digit; every other dim is the same for both and
        factors out as in ``fills``."""
        pair = link_pair(terms, self.flat, child, axis)
        if pair is None:
            return 0
        star, link = pair
        flat = self.flat
        b = flat.boundary[child]
        shift = [sum(c * star.step for d, c in ax if d == star.dim) for ax in terms]
        offset = [sum(c * link.step for d, c in ax if d == link.dim) for ax in terms]
        delta = 1 if offset == shift else -1
        core_axes = [
            a for a, ax in enumerate(terms) if any(d in (star.dim, link.dim) for d, _ in ax)
        ]
        core = sorted({d for a in core_axes for d, _ in terms[a]})
        relevant = {d for ax in terms for d, _ in ax}

        free = frozenset(range(b)) - collapsed
        rest = 1
        for d in self.extents:
            if d not in relevant:
                rest *= self.combos(d, self.extents[d], free)
        for axes in _axis_groups(terms):
            if not set(axes) & set(core_axes):
                rest *= self._box_sum(terms, axes, child, free, None)
        if rest == 0:
            return 0
        if all(self._perfect(d) for d in core):
            # No residual among them: every core tile is full, as in the perfect case.
            extents = [
                1 + sum(abs(c) * (self.inside(d, child) - 1) for d, c in terms[a])
                for a in core_axes
            ]
            moves = [abs(s) for s in (shift[a] for a in core_axes)]
            if all(m < e for m, e in zip(moves, extents, strict=True)):
                return 0  # the tile slides by less than itself: nothing is whole, nothing links
            combos = math.prod(
                flat.loops[p].factor for d in core for p in self.positions[d] if p < b
            )
            pairs = combos // (star.factor * link.factor) * (star.factor - 1) * (link.factor - 1)
            return rest * pairs * math.prod(extents)
        positions = [p for d in core for p in self.positions[d] if p < b]
        loops = [(p, flat.loops[p]) for p in positions]
        at_star = positions.index(flat.loops.index(star))
        at_link = positions.index(flat.loops.index(link))
        inside = {d: self.inside(d, child) for d in core}

        def box(digits: tuple[int, ...]) -> list[tuple[int, int]] | None:
            """Per core axis the (low, high) the tile spans, None where it does not run."""
            origin = dict.fromkeys(core, 0)
            for (_, lp), digit in zip(loops, digits, strict=True):
                origin[lp.dim] += digit * lp.step
            size = {}
            for d in core:
                if origin[d] >= self.extents[d]:
                    return None
                size[d] = min(inside[d], self.extents[d] - origin[d])
            spans = []
            for a in core_axes:
                lo = hi = 0
                for d, c in terms[a]:
                    ends = (c * origin[d], c * (origin[d] + size[d] - 1))
                    lo, hi = lo + min(ends), hi + max(ends)
                spans.append((lo, hi))
            return spans

        def disjoint(one: list[tuple[int, int]], two: list[tuple[int, int]]) -> bool:
            return any(
                min(h1, h2) < max(l1, l2) for (l1, h1), (l2, h2) in zip(one, two, strict=True)
            )

        def moved(digits: tuple[int, ...], k: int, by: int) -> tuple[int, ...]:
            return (*digits[:k], digits[k] + by, *digits[k + 1 :])

        total = 0
        for digits in itertools.product(*(range(lp.factor) for _, lp in loops)):
            m, j = digits[at_star], digits[at_link]
            if m == 0 or not 0 <= j + delta < link.factor:
                continue
            cur = box(digits)
            if cur is None:
                continue
            before = moved(digits, at_star, -1)
            sent = box(moved(before, at_link, delta))
            if sent != cur or not disjoint(box(before), cur):  # type: ignore[arg-type]
                continue
            if m >= 2:
                earlier = box(moved(moved(before, at_star, -1), at_link, delta))
                if not disjoint(earlier, sent):  # type: ignore[arg-type]
                    continue  # the neighbour fetched only part of it
            total += math.prod(hi - lo + 1 for lo, hi in cur)
        return total * rest

    def lines(self, child: int, axis: str) -> int:
        """Lines of instances along ``axis`` above ``child`` that ever run: the
        instances that differ only in the fan-out's loops on that axis."""
        flat = self.flat
        across = frozenset(
            p
            for p in range(flat.boundary[child])
            if flat.loops[p].spatial
            and not (flat.loops[p].level == child - 1 and flat.loops[p].axis == axis)
        )
        count = 1
        for d, extent in self.extents.items():
            count *= self.combos(d, extent, across)
        return count

    def first(self, relevant: frozenset[str], level: int) -> int:
        """Distinct output words all instances of ``level`` touch: each relevant dim's
        values once (an output projection is injective), times the instances that
        run over each other dim."""
        spatial = frozenset(
            p for p in range(self.flat.boundary[level]) if self.flat.loops[p].spatial
        )
        count = 1
        for d, extent in self.extents.items():
            count *= extent if d in relevant else self.combos(d, extent, spatial)
        return count

    def compute_cycles(self) -> int:
        """Temporal steps in which some MAC runs (spatial digits at 0 run longest)."""
        temporal = frozenset(p for p, lp in enumerate(self.flat.loops) if not lp.spatial)
        count = 1
        for d, extent in self.extents.items():
            count *= self.combos(d, extent, temporal)
        return count


def running_combos(loops: list[tuple[int, int]], limit: int) -> int:
    """Digit combinations of one dim's ``loops`` ((factor, step), outermost first; every
    other loop of the dim at 0) whose offset is below ``limit``: each step exceeds
    every offset of the loops inside it, so digits below ``limit // step`` admit every
    inner combination and at most one digit admits only some."""
    inner_all = [1] * (len(loops) + 1)
    for k in range(len(loops) - 1, -1, -1):
        inner_all[k] = inner_all[k + 1] * loops[k][0]
    total = 0
    remaining = limit
    for k, (factor, step) in enumerate(loops):
        if remaining <= 0:
            return total
        whole = min(factor, remaining // step)
        total += whole * inner_all[k + 1]
        if whole == factor:
            return total
        remaining -= whole * step
    return total + (1 if remaining > 0 else 0)


@lru_cache(maxsize=1024)
def _axis_groups(terms: Terms) -> list[list[int]]:
    """Axes joined by a shared dim (their boxes are not independent): connected groups."""
    groups: list[tuple[set[str], list[int]]] = []
    for a, axis in enumerate(terms):
        dims = {d for d, _ in axis}
        merged_dims, merged_axes = set(dims), [a]
        rest = []
        for gd, ga in groups:
            if gd & merged_dims:
                merged_dims |= gd
                merged_axes += ga
            else:
                rest.append((gd, ga))
        groups = [*rest, (merged_dims, sorted(merged_axes))]
    return [axes for _, axes in groups]
