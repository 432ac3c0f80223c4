"""The CP-SAT formulation: the cost model's exact counts, written over integer variables.

Formulation (one model per layer):

* **Tiling.** Every slot of every dim (a temporal loop at a level, or a spatial
  loop on an array axis) gets an integer factor variable; a table constraint
  makes each dim's factors one of its ordered factorisations, so the product
  equals the extent (perfect factorisation) and each factor divides it.
* **Counts.** Every quantity of docs/cost-model.md is built from these
  variables exactly as the cost model computes it: loop steps and tile
  extents are products (``AddMultiplicationEquality``), box extents are linear
  in them, the sliding-window overlap of two consecutive tiles is
  ``max(0, extent - |shift|)`` (``AddMaxEquality`` / ``AddAbsEquality``), fills are
  sums of (advances x new words) products, multicast reads use the union box,
  spatial reduction is an exact division. No proxy, no log-space relaxation.
* **Loop order.** Per level one of the mapspace's stationarity orders; every
  combination of orders is modelled side by side and a one-hot choice selects
  which one the objective and the latency cap see.
* **Capacities** are exact (tile products <= buffer words); spatial factors per
  axis multiply to at most the fan-out.
* **Objective**: energy in integer units (each pJ/word coefficient scaled so
  rounding is below 1e-6 relative), or energy x cycles, or cycles.

Because the counts are the model's own formulas, the objective of the returned
point equals the cost model's score up to coefficient rounding; the driver
re-scores it with the cost model all the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from joule.passes.mapper.mapspace.space import MapSpace, Slot
from ortools.sat.python import cp_model

Expr = cp_model.LinearExprT


@dataclass(frozen=True)
class Val:
    """An integer quantity of the model with known bounds (CP-SAT needs finite domains)."""

    expr: Expr
    lb: int
    ub: int


def const(value: int) -> Val:
    return Val(value, value, value)


class Formulation:
    """Builds the CP-SAT model of one layer's mapspace."""

    def __init__(
        self,
        space: MapSpace,
        energy_scale: float,
        tuples: dict[str, list[tuple[int, ...]]] | None = None,
    ) -> None:
        self.space = space
        # Each dim's choices: its perfect factorisations, or (residual tiles) given.
        self.tuples = space.factor_tuples if tuples is None else tuples
        self.model = cp_model.CpModel()
        self.scale = energy_scale
        self.cap = count_cap(space)
        self._memo: dict[tuple, Val] = {}
        self.factor: dict[Slot, Val] = {}
        self.values: dict[Slot, list[int]] = {}
        self.choice: dict[str, cp_model.IntVar] = {}
        for d in space.dims:
            tuples = self.tuples[d]
            self.choice[d] = self.model.NewIntVar(0, len(tuples) - 1, f"tiling_{d}")
            for k, slot in enumerate(space.slots[d]):
                self.values[slot] = sorted({t[k] for t in tuples})
                self.factor[slot] = self.dim_table(d, (slot,), lambda t, k=k: t[k])

    def dim_table(self, dim: str, key: tuple, value: Callable[[tuple[int, ...]], int]) -> Val:
        """A per-dim quantity as an element of the dim's tiling choice: exact propagation."""
        memo = ("dim", dim, key)
        if memo in self._memo:
            return self._memo[memo]
        table = [value(t) for t in self.tuples[dim]]
        if len(set(table)) == 1:
            out = const(table[0])
        else:
            var = self.model.NewIntVarFromDomain(cp_model.Domain.FromValues(sorted(set(table))), "")
            self.model.AddElement(self.choice[dim], table, var)
            out = Val(var, min(table), max(table))
        self._memo[memo] = out
        return out

    def slot_product(self, slots: list[Slot] | tuple[Slot, ...]) -> Val:
        """Product of the factors of ``slots``: one table per dim, multiplied across dims."""
        by_dim: dict[str, list[int]] = {}
        for s in slots:
            by_dim.setdefault(s.dim, []).append(self.space.slots[s.dim].index(s))
        parts = []
        for d, idx in sorted(by_dim.items()):
            key = tuple(sorted(idx))
            parts.append(
                self.dim_table(d, ("prod", key), lambda t, key=key: math.prod(t[k] for k in key))
            )
        return self.mul(parts, key=("sp", frozenset(slots)))

    # -- arithmetic -------------------------------------------------------------------------
    def mul(self, vals: list[Val], key: tuple | None = None, cap: int | None = None) -> Val:
        """Product of non-negative quantities; upper bounds are clipped to ``cap``.

        Loose interval products overflow 64 bits on real layers; every product
        the formulation builds is a count no larger than ``self.cap`` (see
        ``count_cap``), so clipping there is sound.
        """
        if key is not None and key in self._memo:
            return self._memo[key]
        c = 1
        varying = []
        for v in vals:
            if v.lb == v.ub:
                c *= v.lb
            else:
                varying.append(v)
        if c == 0:
            out = const(0)
        elif not varying:
            out = const(c)
        elif len(varying) == 1:
            v = varying[0]
            out = Val(c * v.expr, c * v.lb, c * v.ub)
        else:
            limit = (self.cap if cap is None else cap) // c
            acc = varying[0]
            for v in varying[1:]:
                assert acc.lb >= 0 and v.lb >= 0, "products are of non-negative counts"
                lo, hi = acc.lb * v.lb, min(acc.ub * v.ub, limit)
                var = self.model.NewIntVar(lo, hi, "")
                self.model.AddMultiplicationEquality(var, [acc.expr, v.expr])
                acc = Val(var, lo, hi)
            out = Val(c * acc.expr, c * acc.lb, c * acc.ub) if c != 1 else acc
        if key is not None:
            self._memo[key] = out
        return out

    def linear(self, terms: list[tuple[int, Val]], offset: int = 0) -> Val:
        expr: Expr = offset
        lb = ub = offset
        for coeff, v in terms:
            if coeff == 0:
                continue
            expr = expr + coeff * v.expr
            lo, hi = sorted((coeff * v.lb, coeff * v.ub))
            lb += lo
            ub += hi
        return Val(expr, lb, ub)

    def as_var(self, v: Val) -> Val:
        if v.lb == v.ub or isinstance(v.expr, cp_model.IntVar):
            return v
        var = self.model.NewIntVar(v.lb, v.ub, "")
        self.model.Add(var == v.expr)
        return Val(var, v.lb, v.ub)

    def _max0(self, v: Val) -> Val:
        if v.lb >= 0:
            return v
        if v.ub <= 0:
            return const(0)
        var = self.model.NewIntVar(0, v.ub, "")
        self.model.AddMaxEquality(var, [0, v.expr])
        return Val(var, 0, v.ub)

    # -- loop-nest quantities (docs/cost-model.md) ------------------------------------------
    def f(self, slot: Slot) -> Val:
        return self.factor[slot]

    def step(self, slot: Slot) -> Val:
        """Product of the factors of the slot's dim in the slots nested inside it."""
        slots = self.space.slots[slot.dim]
        inner = slots[slots.index(slot) + 1 :]
        return self.slot_product(inner)

    def advance(self, slot: Slot) -> Val:
        """(f - 1) * step: how far the dim's index moves over the whole loop."""
        slots = self.space.slots[slot.dim]
        k = slots.index(slot)
        return self.dim_table(slot.dim, ("adv", k), lambda t: (t[k] - 1) * math.prod(t[k + 1 :]))

    def instances(self, level: int) -> Val:
        slots = [
            s
            for d in self.space.dims
            for s in self.space.slots[d]
            if s.axis is not None and s.level < level
        ]
        return self.slot_product(slots)

    def box(self, terms: tuple[tuple[tuple[str, int], ...], ...], slots: list[Slot]) -> list[Val]:
        """Per axis extent ``sum |c| * reach_d + 1`` of the box spanned by ``slots``."""
        reach: dict[str, list[Slot]] = {}
        for s in slots:
            reach.setdefault(s.dim, []).append(s)
        out = []
        for axis in terms:
            parts = [(abs(c), self.advance(s)) for d, c in axis for s in reach.get(d, [])]
            out.append(self.as_var(self.linear(parts, 1)) if parts else const(1))
        return out

    def fills(
        self,
        terms: tuple[tuple[tuple[str, int], ...], ...],
        extents: list[Val],
        tile: Val,
        outer: list[Slot],
    ) -> Val:
        """Per-instance fills (docs/cost-model.md): the whole tile per step out to the
        innermost relevant loop L*, less the halo that L*'s own steps keep.

        ``F = T * prod(f out to L*) - [L* slides a window] (f* - 1) prod(f outside L*) ov*``;
        which slot is L* depends on which factors exceed 1, so each candidate's
        halo term is switched on by a literal.
        """
        relevant = {d for axis in terms for d, _ in axis}
        whole = self.fills_stationary(relevant, tile, outer)
        window = {d for axis in terms if len(axis) > 1 for d, _ in axis}
        halos: list[tuple[int, Val]] = []
        for i, loop in enumerate(outer):
            if loop.dim not in window or self.f(loop).ub == 1:
                continue
            ov = []
            for axis, extent in zip(terms, extents, strict=True):
                coeff = dict(axis).get(loop.dim, 0)
                if coeff == 0:
                    ov.append(extent)
                    continue
                shift = (
                    self.mul([self.step(loop)])
                    if abs(coeff) == 1
                    else self.mul([const(abs(coeff)), self.step(loop)])
                )
                ov.append(self._max0(self.linear([(1, extent), (-1, shift)])))
            shared = self.mul(ov)
            if shared.ub == 0:
                continue
            f = self.f(loop)
            count = self.mul([Val(f.expr - 1, f.lb - 1, f.ub - 1), self.slot_product(outer[:i])])
            inside = [s for s in outer[i + 1 :] if s.dim in relevant and self.f(s).ub > 1]
            last = self._innermost(loop, inside)
            halos.append((-1, self.mul([count, shared, last])))
        if not halos:
            return whole
        fills = self.linear([(1, whole), *halos])
        # Every step fetches at least the first tile: F >= T >= 1.
        return self.as_var(Val(fills.expr, max(1, fills.lb), fills.ub))

    def _innermost(self, loop: Slot, inside: list[Slot]) -> Val:
        """A literal: ``loop`` moves and no relevant loop inside it does (it is L*)."""
        b = self.model.NewBoolVar("")
        moves = self._moves(loop)
        others = [self._moves(s) for s in inside]
        self.model.AddBoolAnd([moves, *[o.Not() for o in others]]).OnlyEnforceIf(b)
        self.model.AddBoolOr([moves.Not(), *others]).OnlyEnforceIf(b.Not())
        return Val(b, 0, 1)

    def fills_stationary(self, relevant: set[str], tile: Val, outer: list[Slot]) -> Val:
        """``fills`` for a tensor whose every axis is one dim: tiles never half-overlap.

        Then a loop refetches the whole tile iff it is relevant or a relevant loop
        with factor > 1 sits between it and the boundary, so
        ``F = T * prod(f_L if active else 1)`` — far fewer variables.
        """
        gates = []
        for i, loop in enumerate(outer):
            f = self.f(loop)
            if f.ub == 1:
                continue
            if loop.dim in relevant:
                gates.append(f)
                continue
            below = [s for s in outer[i + 1 :] if s.dim in relevant and self.f(s).ub > 1]
            if not below:
                continue
            gates.append(self._gated(loop, below))
        return self.mul([tile, *gates])

    def _gated(self, loop: Slot, below: list[Slot]) -> Val:
        key = ("gate", loop, tuple(below))
        if key in self._memo:
            return self._memo[key]
        active = self.model.NewBoolVar("")
        self.model.AddMaxEquality(active, [self._moves(s) for s in below])
        f = self.f(loop)
        values = sorted({1, *self.values[loop]})
        g = self.model.NewIntVarFromDomain(cp_model.Domain.FromValues(values), "")
        self.model.Add(g == f.expr).OnlyEnforceIf(active)
        self.model.Add(g == 1).OnlyEnforceIf(active.Not())
        out = Val(g, 1, f.ub)
        self._memo[key] = out
        return out

    def _moves(self, slot: Slot) -> cp_model.IntVar:
        """A literal: the slot's factor is above 1."""
        key = ("moves", slot)
        if key not in self._memo:
            b = self.model.NewBoolVar("")
            self.model.Add(self.f(slot).expr >= 2).OnlyEnforceIf(b)
            self.model.Add(self.f(slot).expr == 1).OnlyEnforceIf(b.Not())
            self._memo[key] = Val(b, 0, 1)
        return self._memo[key].expr

    def divide(self, numerator: Val, divisor: Val) -> Val:
        """The exact quotient (the model only divides counts by factors that divide them)."""
        if divisor.lb == divisor.ub == 1:
            return numerator
        q = self.model.NewIntVar(0, max(numerator.ub, 0), "")
        self.model.AddMultiplicationEquality(numerator.expr, [q, divisor.expr])
        return Val(q, 0, max(numerator.ub, 0))


class Arithmetic:
    """How blocks of CP-SAT quantities join (``joule.cost.terms.Blocks``): linear
    expressions, and exact division by counts that divide."""

    form: Formulation

    def plus(self, a: Val, b: Val) -> Val:
        return self.form.linear([(1, a), (1, b)])

    def minus(self, a: Val, b: Val) -> Val:
        return self.form.linear([(1, a), (-1, b)])

    def divide(self, a: Val, b: Val) -> Val:
        return self.form.divide(a, b)

    def times(self, k: int, a: Val) -> Val:
        return self.form.linear([(k, a)])


def outer_slots(combo: tuple[tuple[str, ...], ...], level: int) -> list[Slot]:
    """Temporal slots above ``level``'s boundary, in nest order for this choice of orders."""
    return [Slot(d, i, None) for i in range(level) for d in combo[i]]


def count_cap(space: MapSpace) -> int:
    """An upper bound on every count the model builds: ``MACs x prod_axes sum|coeff|``.

    A tile's box is at most ``sum|c|`` times the product of its dims' ranges per
    axis, and a level's fills are at most its tile times the outer trips, so
    every fill, read, update and partial product stays below this.
    """
    widest = max(
        math.prod(max(1, sum(abs(c) for _, c in axis.terms)) for axis in t.projection)
        for t in space.nest.tensors
    )
    return widest * space.nest.macs


def energy_scale(space: MapSpace) -> int:
    """Integer units per pJ: fine enough that rounding the smallest per-word energy
    stays below 1e-5 relative, coarse enough that the objective fits in 62 bits."""
    energies = [
        e
        for lvl in space.target.levels
        for role in lvl.keeps
        for e in (
            lvl.read_pj_of(role),
            lvl.write_pj_of(role),
            lvl.update_pj_of(role),
            lvl.network.hop_energy_pj,
            lvl.network.links.energy_pj if lvl.network.links else 0.0,
        )
        if e > 0
    ]
    smallest, largest = min(energies, default=1.0), max(energies, default=1.0)
    scale = 10 ** math.ceil(math.log10(1e5 / smallest))
    terms = 8 * len(space.target.levels) * len(space.nest.tensors)
    while scale > 1 and terms * count_cap(space) * largest * scale > 2**61:
        scale //= 10
    return scale
