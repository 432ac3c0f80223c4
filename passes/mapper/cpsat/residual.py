"""The CP-SAT formulation over residual tiles (``--factors imperfect``): per-dim tables.

With imperfect factors a count is no longer a product of factors, but for a
tensor whose every axis follows one dim (no sliding window) it is still a product
over dims of per-dim counts of the dim's tuple (docs/cost-model.md, "Imperfect
factors"): a relevant dim's tiles sum to ``|c| e - (|c| - 1) N`` over its ``N``
running tiles, an irrelevant one counts the digit combinations that run of its
loops outside *L\\** and its spatial loops above (``running_combos``). Which of its
temporal loops lie outside *L\\** is the sum ``k`` of literals the formulation
builds anyway (a relevant loop that moves sits inside), so each count is one
element of a table indexed by (tuple, ``k``): exact propagation, as the perfect
formulation's products are.

Covered: tensors without sliding windows (so no tile is ever forwarded over
inter-PE links either) and dims whose imperfect tuples fit a table
(:func:`refusal` says why not, and the mapper keeps the residual search there).
"""

from __future__ import annotations

import functools
import math

from joule.cost.nest import axis_terms
from joule.cost.residual import running_combos
from joule.ir.loopnest import Tensor
from joule.passes.mapper.cpsat.formulation import Arithmetic, Formulation, Val, const, outer_slots
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from ortools.sat.python import cp_model

MAX_ROWS = 20_000  # imperfect tuples of one dim a table holds (CP-SAT's element tables)
MAX_RAW = 200_000  # inner-factor combinations enumerated to find them (about 0.3 s)


def refusal(space: MapSpace) -> str | None:
    """Why this formulation cannot model the layer exactly, or None."""
    for tensor in space.nest.tensors:
        dims = [d for axis in axis_terms(tensor) for d, _ in axis]
        if any(len(axis) > 1 for axis in axis_terms(tensor)) or len(dims) != len(set(dims)):
            return f"the {tensor.role} slides a window (its tile sums are not per dim)"
    if imperfect_tuples(space) is None:
        return f"some dim has more than {MAX_ROWS} imperfect tuples to tabulate"
    return None


@functools.lru_cache(maxsize=4)  # refusal() and the solve ask in turn
def imperfect_tuples(space: MapSpace) -> dict[str, list[tuple[int, ...]]] | None:
    """Every imperfect tuple of every dim, or None when some dim has too many."""
    out = {}
    for d in space.dims:
        try:
            out[d] = space.imperfect_tuples(d, MAX_RAW)
        except ValueError:
            return None
        if len(out[d]) > MAX_ROWS:
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
        form, space = self.form, self.form.space
        outer = outer_slots(self.combo, level)
        key = ("rfills", tensor.role, level, self.collapsed, tuple(outer))
        if key in form._memo:
            return form._memo[key]
        relevant = tensor.relevant_dims
        coeff = {d: abs(c) for axis in axis_terms(tensor) for d, c in axis}
        parts = []
        for d in space.dims:
            if d in relevant:
                parts.append(_tile_sum(form, d, level, coeff[d]))
                continue
            below_star = [
                _outside_star(form, loop, [s for s in outer[i + 1 :] if s.dim in relevant])
                for i, loop in enumerate(outer)
                if loop.dim == d
            ]
            parts.append(self._running(d, level, [x for x in below_star if x is not None]))
        return form.mul(parts, key=key)

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


def _tile_sum(form: Formulation, dim: str, level: int, coeff: int) -> Val:
    """A relevant dim's tile extents summed over its running tiles at ``level``:
    ``N = ceil(e / T)`` tiles of ``1 + |c| (size - 1)`` whose sizes add up to ``e``."""
    extent = form.space.extents[dim]
    if coeff == 1:
        return const(extent)
    inside = [k for k, s in enumerate(form.space.slots[dim]) if s.level >= level]
    tiles = form.dim_table(
        dim, ("tiles", level), lambda t: -(-extent // math.prod(t[k] for k in inside))
    )
    return form.as_var(form.linear([(-(coeff - 1), tiles)], coeff * extent))


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
    space = form.space
    extents = []
    for axis in axis_terms(tensor):
        parts = []
        for d, c in axis:
            inside = [k for k, s in enumerate(space.slots[d]) if s.level >= level]
            reach = form.dim_table(
                d,
                ("reach", level),
                lambda t, inside=inside, e=space.extents[d]: (
                    min(math.prod(t[k] for k in inside), e) - 1
                ),
            )
            parts.append((abs(c), reach))
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
