"""The mapped loop nest, flattened: what every count in the model is computed from.

A mapping becomes one list of loops, outermost first (``T_0, S_0, T_1, S_1, ...``),
with each loop's step and each level's boundary position, so that tiles and
deltas are plain arithmetic over this list (see docs/cost-model.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from joule.ir.loopnest import Tensor
from joule.mapping import Mapping


class FlatLoop(NamedTuple):
    """One loop of the flattened nest (a NamedTuple: built thousands of times per search)."""

    dim: str
    factor: int
    level: int
    spatial: bool
    step: int  # product of this dim's factors in every loop nested inside this one
    axis: str | None = None  # "X" / "Y" for spatial loops


@dataclass(frozen=True)
class FlatNest:
    """The loops in nest order plus what every level needs of them, computed once."""

    loops: tuple[FlatLoop, ...]
    boundary: tuple[int, ...]  # per level, index of its first temporal loop in ``loops``
    levels: int
    inside_reach: tuple[dict[str, int], ...]  # per level: reach of each dim inside its tile
    outer: tuple[list[FlatLoop], ...]  # per level: the temporal loops above its boundary
    instances: tuple[int, ...]  # per level: utilized instances (spatial factors above it)

    def inside(self, level: int) -> tuple[FlatLoop, ...]:
        return self.loops[self.boundary[level] :]

    def outer_temporal(self, level: int) -> list[FlatLoop]:
        return self.outer[level]

    def instances_above(self, level: int) -> int:
        return self.instances[level]

    def spatial_between(self, outer: int, inner: int) -> list[FlatLoop]:
        """Spatial loops of the fan-outs from level ``outer`` down to level ``inner``."""
        return [lp for lp in self.loops if lp.spatial and outer <= lp.level < inner]


def flatten(mapping: Mapping, level_names: tuple[str, ...]) -> FlatNest:
    """Order the mapping's loops as the nest runs them; factor-1 loops are dropped.

    A dim's *reach* over the loops inside a boundary is ``sum (f - 1) * step``:
    those loops cover a contiguous range, so the reach is its extent minus one.
    """
    by_name = {lvl.level: lvl for lvl in mapping.levels}
    raw: list[tuple[str, int, int, bool, str | None]] = []
    boundary: list[int] = []
    for index, name in enumerate(level_names):
        boundary.append(len(raw))
        lvl = by_name.get(name)
        if lvl is None:
            continue
        raw += [(lp.dim, lp.factor, index, False, None) for lp in lvl.temporal if lp.factor > 1]
        raw += [(lp.dim, lp.factor, index, True, lp.axis) for lp in lvl.spatial if lp.factor > 1]
    running: dict[str, int] = {}
    steps = [0] * len(raw)
    for i in range(len(raw) - 1, -1, -1):
        dim, factor = raw[i][0], raw[i][1]
        steps[i] = running.get(dim, 1)
        running[dim] = steps[i] * factor
    loops = tuple(
        FlatLoop(dim, factor, level, spatial, steps[i], axis)
        for i, (dim, factor, level, spatial, axis) in enumerate(raw)
    )
    # One backward pass gives every level's inside reach; one forward pass its outer loops.
    inside_reach: list[dict[str, int]] = [{} for _ in boundary]
    reach: dict[str, int] = {}
    pos = len(loops)
    for level in range(len(boundary) - 1, -1, -1):
        for lp in loops[boundary[level] : pos]:
            reach[lp.dim] = reach.get(lp.dim, 0) + (lp.factor - 1) * lp.step
        pos = boundary[level]
        inside_reach[level] = dict(reach)
    outer: list[list[FlatLoop]] = []
    instances: list[int] = []
    temporal: list[FlatLoop] = []
    spread = 1
    pos = 0
    for b in boundary:
        for lp in loops[pos:b]:
            if lp.spatial:
                spread *= lp.factor
            else:
                temporal.append(lp)
        pos = b
        outer.append(list(temporal))
        instances.append(spread)
    return FlatNest(
        loops,
        tuple(boundary),
        len(level_names),
        tuple(inside_reach),
        tuple(outer),
        tuple(instances),
    )


_TERMS: dict[int, tuple[Tensor, tuple[tuple[tuple[str, int], ...], ...]]] = {}


def axis_terms(tensor: Tensor) -> tuple[tuple[tuple[str, int], ...], ...]:
    """Per tensor axis, its (dim, coefficient) terms (memoised by identity: hot path)."""
    hit = _TERMS.get(id(tensor))
    if hit is not None and hit[0] is tensor:
        return hit[1]
    if len(_TERMS) > 4096:
        _TERMS.clear()
    terms = tuple(axis.terms for axis in tensor.projection)
    _TERMS[id(tensor)] = (tensor, terms)
    return terms


def box_extents(terms: tuple[tuple[tuple[str, int], ...], ...], reach: dict[str, int]) -> list[int]:
    """Per axis, the extent of the box spanned when each dim moves by ``reach``."""
    out = []
    for axis in terms:
        extent = 1
        for d, c in axis:
            r = reach.get(d)
            if r:
                extent += (c if c > 0 else -c) * r
        out.append(extent)
    return out


def fills_per_instance(
    terms: tuple[tuple[tuple[str, int], ...], ...],
    extents: list[int],
    outer: list[FlatLoop],
) -> int:
    """Words one instance fetches as its tile walks the ``outer`` loops.

    Loops outside the innermost relevant loop L* each refetch the whole tile (a
    relevant loop inside them wraps, and Timeloop keeps no overlap when the tile
    jumps back); loops inside L* are irrelevant and refetch nothing
    (stationarity). Only L*'s own steps slide the tile one way and keep the
    overlap (the sliding-window halo)::

        F = T * prod(f, loops out to L*) - (f* - 1) * prod(f, loops outside L*) * overlap*
    """
    tile = math.prod(extents)
    relevant = {d for axis in terms for d, _ in axis}
    last = -1
    for i, loop in enumerate(outer):
        if loop.dim in relevant:
            last = i
    if last < 0:
        return tile
    trips = 1
    for loop in outer[:last]:
        trips *= loop.factor
    star = outer[last]
    overlap = 1
    for axis, extent in zip(terms, extents, strict=True):
        shift = 0
        for d, c in axis:
            if d == star.dim:
                shift += c * star.step
        overlap *= max(0, extent - abs(shift)) if shift else extent
    return tile * trips * star.factor - (star.factor - 1) * trips * overlap


def linked_words(
    terms: tuple[tuple[tuple[str, int], ...], ...],
    extents: list[int],
    flat: FlatNest,
    child: int,
    axis: str,
) -> int:
    """Words all instances of ``child`` take from a neighbour along ``axis`` (docs/cost-model.md,
    "Inter-PE links").

    On a step of the innermost temporal loop above the child, L*, an instance whose
    whole tile is new takes it from the neighbour in the innermost spatial loop on
    ``axis`` right above the child, when that neighbour held exactly this tile one
    step earlier: the loop's tile offset equals L*'s tile shift (up to sign). That
    holds on every L* step but the first of each sweep, for every instance but the
    last (or first) of each run of that spatial loop::

        L = inst x (f_s - 1) / f_s x (f* - 1) x prod(f, loops outside L*) x T
    """
    pair = link_pair(terms, flat, child, axis)
    if pair is None:
        return 0
    star, link = pair
    outer = flat.outer[child]
    shift = [sum(c * star.step for d, c in axis_ if d == star.dim) for axis_ in terms]
    if all(abs(s) < e for s, e in zip(shift, extents, strict=True)):
        return 0  # the tile slides by less than itself: part of it is kept, nothing linked
    sweeps = math.prod(lp.factor for lp in outer[:-1])
    per_run = flat.instances[child] // link.factor * (link.factor - 1)
    return per_run * sweeps * (star.factor - 1) * math.prod(extents)


def link_pair(
    terms: tuple[tuple[tuple[str, int], ...], ...], flat: FlatNest, child: int, axis: str
) -> tuple[FlatLoop, FlatLoop] | None:
    """L* (the innermost temporal loop above ``child``) and the innermost spatial loop on
    ``axis`` right above it, when a step of the one moves a tile as far as the other
    offsets it (a neighbour may hold it); else None."""
    outer = flat.outer[child]
    if not outer:
        return None
    star = outer[-1]
    link = None
    for lp in flat.loops:
        if lp.spatial and lp.level == child - 1 and lp.axis == axis:
            link = lp
    if link is None:
        return None
    shift = [sum(c * star.step for d, c in axis_ if d == star.dim) for axis_ in terms]
    offset = [sum(c * link.step for d, c in axis_ if d == link.dim) for axis_ in terms]
    if not any(shift) or (offset != shift and offset != [-x for x in shift]):
        return None
    return star, link


def link_lines(flat: FlatNest, child: int, axis: str) -> int:
    """Lines of instances along ``axis`` in the fan-out right above ``child``."""
    along = math.prod(
        lp.factor for lp in flat.loops if lp.spatial and lp.level == child - 1 and lp.axis == axis
    )
    return flat.instances[child] // along


def scaled_steps(
    terms: tuple[tuple[tuple[str, int], ...], ...], star: str, link: str
) -> list[tuple[int, tuple[int, int]]] | None:
    """Per tensor axis the two dims move, (axis, (|c_star|, |c_link|)): the shift equals the
    offset up to one sign for all axes iff ``|c_star| step_star == |c_link| step_link`` on
    each. None when no choice of factors can make them equal."""
    out = []
    signs = set()
    for a, axis in enumerate(terms):
        ck = sum(c for d, c in axis if d == star)
        cm = sum(c for d, c in axis if d == link)
        if (ck == 0) != (cm == 0):
            return None
        if ck:
            signs.add((ck > 0) == (cm > 0))
            out.append((a, (abs(ck), abs(cm))))
    return out if out and len(signs) == 1 else None
