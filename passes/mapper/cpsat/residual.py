r"""The CP-SAT formulation over residual tiles (``--factors imperfect``): per-dim tables.

With imperfect factors a count is no longer a product of factors, but it is
still built from per-dim counts of each dim's tuple (docs/cost-model.md,
"Imperfect factors"): an irrelevant dim counts the digit combinations that run
of its loops outside *L\** and its spatial loops above (``running_combos``); an
axis's box extent summed over the running tiles is ``prod N + sum |c| (e - N)
prod_{others} N`` (each dim's ``N`` tiles have sizes adding up to ``e``); a
window's overlap on a step of *L\** takes ``max(0, .)`` over the other dims' two
tile sizes. Which temporal loops lie outside *L\** is the sum ``k`` of literals
the formulation builds anyway (a relevant loop that moves sits inside), so each
count is one element of a table indexed by (tuple, ``k``): exact propagation, as
the perfect formulation's products are.

Covered: dims whose imperfect tuples fit a table, and windows no inter-PE link
may forward (a forwarded tile is found by walking digits; a tensor whose axes
each follow one dim is never forwarded). :func:`refusal` says why not, and the
mapper keeps the residual search there.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

from joule.cost.nest import axis_terms
from joule.cost.residual import running_combos
from joule.cost.terms import cost_terms
from joule.ir.loopnest import Tensor
from joule.passes.mapper.cpsat.formulation import Arithmetic, Formulation, Val, const, outer_slots
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from ortools.sat.python import cp_model

MAX_ROWS = 20_000  # imperfect tuples of one dim a table holds (CP-SAT's element tables)
# Points of the imperfect space CP-SAT is given: where it can prove an optimum in a
# layer's time limit. Real layers have 1e9 and more, where it proves nothing and
# building its tables costs more than the search (ResNet's 1x1 64->256: 22 s, not 3).
MAX_POINTS = 10**7


def refusal(space: MapSpace) -> str | None:
    """Why this formulation cannot model the layer exactly, or None."""
    linked = {t.tensor.role for t in cost_terms(space.nest, space.target).terms if t.kind == "link"}
    for tensor in space.nest.tensors:
        dims = [d for axis in axis_terms(tensor) for d, _ in axis]
        if len(dims) != len(set(dims)):
            return f"a dim indexes two axes of the {tensor.role} (its tile sums are not per axis)"
        if tensor.role in linked and any(len(axis) > 1 for axis in axis_terms(tensor)):
            return f"the {tensor.role}'s sliding windows may be forwarded over inter-PE links"
    tuples = imperfect_tuples(space)
    if tuples is None:
        return f"some dim has more than {MAX_ROWS} imperfect tuples to tabulate"
    points = math.prod(len(t) for t in tuples.values()) * math.prod(
        len(o) for o in space.order_candidates
    )
    if points > MAX_POINTS:
        return f"its imperfect space has {points:.2g} points, more than CP-SAT proves"
    return None


@functools.lru_cache(maxsize=4)  # refusal() and the solve ask in turn
def imperfect_tuples(space: MapSpace) -> dict[str, list[tuple[int, ...]]] | None:
    """Every imperfect tuple of every dim, or None when some dim has too many."""
    out = {}
    for d in space.dims:
        try:
            out[d] = space.imperfect_tuples(d, MAX_ROWS)
        except ValueError:
            return None
    return out


class ResidualBlocks(Arithmetic):
    """The building blocks of ``joule.cost.terms`` over residual tiles, for one choice of
    loop orders; ``collapsed``: the (outer, inner) levels whose spatial loops of dims a
    tensor ignores count once (a multicast or reduction group runs with its first
    member)."""

    def __init__(
        self,
        form: Formulation,
        combo: tuple[tuple[str, ...], ...],
        collapsed: tuple[int, int] | None = None,
    ) -> None:
        self.form = form
        self.combo = combo
        self.collapsed = collapsed

    def macs(self) -> Val:
        return const(self.form.space.nest.macs)

    def fills(self, tensor: Tensor, level: int) -> Val:
        """``scale x prod_axes (box sum over the running tiles)``, less on each step of L*
        the overlap a sliding window keeps (``ResidualNest.fills``)."""
        form, space = self.form, self.form.space
        outer = outer_slots(self.combo, level)
        key = ("rfills", tensor.role, level, self.collapsed, tuple(outer))
        if key in form._memo:
            return form._memo[key]
        relevant = tensor.relevant_dims
        terms = axis_terms(tensor)
        scale = []
        for d in space.dims:
            if d in relevant:
                continue
            below_star = [
                _outside_star(form, loop, [s for s in outer[i + 1 :] if s.dim in relevant])
                for i, loop in enumerate(outer)
                if loop.dim == d
            ]
            scale.append(self._running(d, level, [x for x in below_star if x is not None]))
        sums = [_box_sum(form, axis, level) for axis in terms]
        tiles = form.mul([*scale, *sums])
        kept = []
        for i, loop in enumerate(outer):
            axis = next(
                (a for a, ax in enumerate(terms) if len(ax) > 1 and loop.dim in dict(ax)), None
            )
            if axis is None or form.f(loop).ub == 1:
                continue  # only a window's dim keeps an overlap when it steps
            inside = [s for s in outer[i + 1 :] if s.dim in relevant and form.f(s).ub > 1]
            star = form._innermost(loop, inside)
            others = [v for a, v in enumerate(sums) if a != axis]
            overlap = _overlap(form, terms[axis], loop, level)
            kept.append(form.mul([star, _moving(form, loop, level), overlap, *scale, *others]))
        out = (
            tiles if not kept else form.as_var(form.linear([(1, tiles)] + [(-1, k) for k in kept]))
        )
        form._memo[key] = out
        return out

    def _running(self, dim: str, level: int, outside: list[cp_model.IntVar]) -> Val:
        """Combinations that run of ``dim``'s first ``k`` temporal slots above ``level``
        (``k = sum(outside)``: outside-ness only shrinks inwards) and its spatial slots
        there (less the collapsed ones)."""
        space, form = self.form.space, self.form
        slots = space.slots[dim]
        temporal = [k for k, s in enumerate(slots) if s.axis is None and s.level < level]
        lo, hi = self.collapsed or (0, 0)
        spatial = [
            k
            for k, s in enumerate(slots)
            if s.axis is not None and s.level < level and not lo <= s.level < hi
        ]
        extent = space.extents[dim]

        def count(t: tuple[int, ...], k: int) -> int:
            chosen = sorted([*temporal[:k], *spatial])
            return running_combos([(t[j], math.prod(t[j + 1 :])) for j in chosen], extent)

        if not outside:
            return form.dim_table(dim, ("run", level, self.collapsed), lambda t: count(t, 0))
        rows = len(outside) + 1
        table = [count(t, j) for t in form.tuples[dim] for j in range(rows)]
        index = form.model.NewIntVar(0, len(table) - 1, "")
        form.model.Add(index == form.choice[dim] * rows + sum(outside))
        var = form.model.NewIntVarFromDomain(cp_model.Domain.FromValues(sorted(set(table))), "")
        form.model.AddElement(index, table, var)
        return Val(var, min(table), max(table))

    def first(self, tensor: Tensor, level: int) -> Val:
        """Each relevant dim's values once, times the instances that run over the others."""
        form, space = self.form, self.form.space
        parts = [
            const(space.extents[d])
            if d in tensor.relevant_dims
            else ResidualBlocks(form, self.combo)._running(d, level, [])
            for d in space.dims
        ]
        return form.mul(parts, key=("rfirst", tensor.relevant_dims, level))

    def shared(self, tensor: Tensor, outer: int, inner: int) -> Val:
        raise AssertionError("residual counts take groups from grouped()")

    def grouped(self, tensor: Tensor, outer: int, inner: int) -> ResidualBlocks:
        return ResidualBlocks(self.form, self.combo, (outer, inner))

    def links(self, tensor: Tensor, level: int) -> Val:
        """None: a neighbour holds this tile only if a step of L* moves it as far as the
        link loop offsets it on every axis (``joule.cost.nest.link_pair``); with one dim
        per axis that takes one dim for both, and L* sits outside the link loop, so its
        step is at least twice the link's."""
        return const(0)

    def lines(self, tensor: Tensor, level: int) -> Val:
        return const(1)  # divides only the linked words, none


def _box_sum(form: Formulation, axis: tuple[tuple[str, int], ...], level: int) -> Val:
    """An axis's tile extent ``1 + sum |c| (size - 1)`` summed over the running tiles at
    ``level`` of its dims: each dim's ``N = ceil(e / T)`` tiles have sizes adding up to
    ``e``, so the sum is ``prod N + sum_d |c_d| (e_d - N_d) prod_{others} N``."""
    if not axis:
        return const(1)
    extents = form.space.extents
    if len(axis) == 1 and abs(axis[0][1]) == 1:
        return const(extents[axis[0][0]])
    tiles = {d: _tiles(form, d, level) for d, _ in axis}
    parts = [(1, form.mul(list(tiles.values())))]
    for d, c in axis:
        spare = form.as_var(form.linear([(-1, tiles[d])], extents[d]))  # e - N >= 0
        parts.append((abs(c), form.mul([spare, *(tiles[e] for e, _ in axis if e != d)])))
    return form.as_var(form.linear(parts))


def _inside(form: Formulation, dim: str, level: int) -> list[int]:
    return [k for k, s in enumerate(form.space.slots[dim]) if s.level >= level]


def _per_tile(
    form: Formulation, dim: str, level: int, name: str, value: Callable[[int, int], int]
) -> Val:
    """A table of ``value(T, e)``, ``T`` the dim's nominal tile at ``level``."""
    inside, extent = _inside(form, dim, level), form.space.extents[dim]
    return form.dim_table(
        dim, (name, level), lambda t: value(math.prod(t[k] for k in inside), extent)
    )


def _tiles(form: Formulation, dim: str, level: int) -> Val:
    """``N = ceil(e / T)``: the tiles of ``dim`` at ``level`` that run."""
    return _per_tile(form, dim, level, "tiles", lambda tile, e: -(-e // tile))


def _moving(form: Formulation, loop: Slot, level: int) -> Val:
    """Steps of ``loop`` (as L*) that run: the running combinations of its dim's loops
    above ``level`` less those with ``loop`` left at 0."""
    slots = form.space.slots[loop.dim]
    above = [k for k, s in enumerate(slots) if s.level < level]
    j, extent = slots.index(loop), form.space.extents[loop.dim]

    def steps(t: tuple[int, ...]) -> int:
        def runs(chosen: list[int]) -> int:
            return running_combos([(t[k], math.prod(t[k + 1 :])) for k in chosen], extent)

        return runs(above) - runs([k for k in above if k != j])

    return form.dim_table(loop.dim, ("moving", level, j), steps)


def _overlap(form: Formulation, axis: tuple[tuple[str, int], ...], loop: Slot, level: int) -> Val:
    """On a step of L* (``loop``), the overlap its window axis keeps, summed over the
    other dims' running tiles (full, then the residual): ``max(0, 1 + |c*| (T* - 1) +
    sum |c| (size - 1) - |c*| step*)``, L*'s dim at its full nominal tile."""
    space = form.space
    slots = space.slots[loop.dim]
    j, c_star = slots.index(loop), abs(dict(axis)[loop.dim])
    inside = _inside(form, loop.dim, level)
    base = form.dim_table(
        loop.dim,
        ("halo", level, j, c_star),
        lambda t: 1 + c_star * (math.prod(t[k] for k in inside) - 1 - math.prod(t[j + 1 :])),
    )
    choices = []
    for d, c in axis:
        if d == loop.dim:
            continue
        tile = _per_tile(form, d, level, "nominal", lambda tile, e: tile)
        rest = _per_tile(form, d, level, "rest", lambda tile, e: e % tile)
        full = _per_tile(form, d, level, "full", lambda tile, e: e // tile)
        residual = form.linear([(1, _tiles(form, d, level)), (-1, full)])  # 0 or 1: >= 0
        partial = form.as_var(Val(residual.expr, max(0, residual.lb), residual.ub))
        choices.append([(abs(c), tile, full), (abs(c), rest, partial)])
    parts = []
    for combo in itertools.product(*choices):
        extent = form.linear(
            [(1, base), *((c, size) for c, size, _ in combo)], -sum(c for c, _, _ in combo)
        )
        parts.append((1, form.mul([form._max0(form.as_var(extent)), *(n for _, _, n in combo)])))
    return form.as_var(form.linear(parts))


def _outside_star(
    form: Formulation, loop: Slot, relevant_below: list[Slot]
) -> cp_model.IntVar | None:
    """A literal: some relevant loop inside ``loop`` moves, so ``loop`` lies outside L*
    (None: none can move, it never does)."""
    moving = [s for s in relevant_below if form.f(s).ub > 1]
    if not moving:
        return None
    key = ("outside", loop, tuple(moving))
    if key not in form._memo:
        b = form.model.NewBoolVar("")
        form.model.AddMaxEquality(b, [form._moves(s) for s in moving])
        form._memo[key] = Val(b, 0, 1)
    return form._memo[key].expr


def held_tile(form: Formulation, tensor: Tensor, level: int) -> Val:
    """The largest tile of ``tensor`` ``level`` holds: per axis ``|c| (min(T, e) - 1) + 1``
    (the nominal tile, or the whole dim where it overshoots)."""
    extents = []
    for axis in axis_terms(tensor):
        parts = [
            (abs(c), _per_tile(form, d, level, "reach", lambda tile, e: min(tile, e) - 1))
            for d, c in axis
        ]
        extents.append(form.as_var(form.linear(parts, 1)) if parts else const(1))
    return form.mul(extents, key=("rtile", tensor.role, level))


def compute_cycles(form: Formulation) -> Val:
    """Temporal steps in which some MAC runs: per dim, its temporal digit combinations
    that run (spatial digits at 0 run longest)."""
    space = form.space
    parts = []
    for d in space.dims:
        temporal = [k for k, s in enumerate(space.slots[d]) if s.axis is None]
        extent = space.extents[d]
        parts.append(
            form.dim_table(
                d,
                ("steps",),
                lambda t, temporal=temporal, e=extent: running_combos(
                    [(t[k], math.prod(t[k + 1 :])) for k in temporal], e
                ),
            )
        )
    return form.mul(parts, key=("rcompute",))
