"""The CP-SAT mapper: builds the formulation (:mod:`.formulation`), solves, decodes.

For the energy objective, three quarters of the time limit go to proving the result
(:mod:`joule.passes.mapper.proof.prove`): an enumeration pruned by certified bounds that either
shows no mapping is cheaper (status OPTIMAL), finds one that is, or leaves a
tighter bound than CP-SAT's own, which on real layers stays weak. The proof
starts from the warm start's point; CP-SAT runs only where it does not complete,
and a second proof follows where CP-SAT's point is cheaper than the proof's (such
a layer spends up to 1.75 times the limit).
On most real layers the warm start's point is enough to prove the optimum, and
CP-SAT's presolve alone can take seconds (MobileNetV2's depthwise layers: 5 s
under a 0.5 s deterministic limit).

Deterministic: fixed seed, one search worker and a *deterministic* time limit,
so the same inputs give the same mapping on any machine load (layers are
solved in parallel processes instead). There is deliberately no wall-clock
limit: under load it would cut searches at different points and break that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from joule.cost import CostResult
from joule.cost.nest import axis_terms, scaled_steps
from joule.cost.terms import Blocks, cost_terms
from joule.mapping import Mapping
from joule.passes.mapper.cpsat import residual
from joule.passes.mapper.cpsat.formulation import (
    Arithmetic,
    Formulation,
    Val,
    const,
    energy_scale,
    outer_slots,
)
from joule.passes.mapper.mapspace.space import MapSpace, Slot
from joule.passes.mapper.outcome import (
    SearchOptions,
    SearchResult,
    SolverReport,
    objective_value,
    rank_key,
    score_point,
)
from joule.passes.mapper.proof.prove import IMPROVEMENT, Proof, budget_for, prove
from joule.passes.mapper.search.local_search import decode, descend, warm_start
from joule.passes.mapper.search.random_sampling import solve_random
from ortools.sat.python import cp_model

SEARCH_WORKERS = 1  # layers run in parallel processes; one worker keeps CP-SAT deterministic
CPSAT_SHARE = 0.25  # of the time limit for energy; the proof (passes/prove.py) gets the rest


@dataclass(frozen=True)
class Built:
    """The CP-SAT model of one layer's mapspace and the variables a caller reads or fixes."""

    form: Formulation
    combos: list[tuple[tuple[str, ...], ...]]  # the loop-order choices, one literal each
    choose: list[cp_model.IntVar]
    cap: int | None  # the latency cap the options imply

    def fix(self, factors: dict[str, tuple[int, ...]], orders: tuple) -> None:
        """Pin every decision variable to one point of the space."""
        space = self.form.space
        for d in space.dims:
            self.form.model.Add(self.form.choice[d] == self.form.tuples[d].index(factors[d]))
        for b, combo in zip(self.choose, self.combos, strict=True):
            self.form.model.Add(b == int(combo == orders))

    def hint(self, factors: dict[str, tuple[int, ...]], orders: tuple) -> None:
        """Start the search from one point of the space."""
        for d in self.form.space.dims:
            self.form.model.AddHint(self.form.choice[d], self.form.tuples[d].index(factors[d]))
        for b, combo in zip(self.choose, self.combos, strict=True):
            self.form.model.AddHint(b, combo == orders)

    def solve(self, options: SearchOptions, share: float) -> tuple[cp_model.CpSolver, int]:
        """Deterministic: fixed seed, one worker, ``share`` of the time limit."""
        solver = cp_model.CpSolver()
        solver.parameters.random_seed = options.seed
        solver.parameters.num_workers = SEARCH_WORKERS
        solver.parameters.max_deterministic_time = options.time_limit_s * share
        status = solver.Solve(self.form.model)
        assert status != cp_model.MODEL_INVALID, self.form.model.Validate()
        return solver, status

    def decoded(self, solver: cp_model.CpSolver) -> tuple[Mapping, CostResult]:
        """The point the solver found, scored by the cost model."""
        space = self.form.space
        factors = {d: self.form.tuples[d][solver.Value(self.form.choice[d])] for d in space.dims}
        orders = self.combos[next(k for k, b in enumerate(self.choose) if solver.Value(b))]
        mapping = space.mapping(factors, orders)
        cost = score_point(space, mapping)
        assert cost is not None, "CP-SAT returned a mapping the cost model rejects"
        return mapping, cost


def build_model(
    space: MapSpace, options: SearchOptions, tuples: dict[str, list[tuple[int, ...]]] | None = None
) -> Built:
    """The formulation of docs/cost-model.md over the space, with ``options``' objective;
    over residual tiles when ``tuples`` (each dim's imperfect tuples) are given
    (:mod:`.residual`: the caller checks ``residual.refusal`` first)."""
    form = Formulation(space, energy_scale(space), tuples)
    model = form.model
    nest, target = space.nest, space.target
    cap = options.cycle_cap(nest.macs, target.pes)
    ragged = tuples is not None

    _capacity_constraints(form, residual.held_tile if ragged else _tile)
    _fanout_constraints(form)
    combos = list(space.order_combos())
    choose = [model.NewBoolVar(f"order{k}") for k in range(len(combos))]
    model.AddExactlyOne(choose)
    energy_ub = 0
    energies: list[Val] = []
    traffic: list[dict[int, tuple[Val, Val]]] = []
    for combo in combos:
        blocks = residual.ResidualBlocks(form, combo) if ragged else CpsatBlocks(form, combo)
        energy, per_level = _energy(form, blocks)
        energies.append(energy)
        traffic.append(per_level)
        energy_ub = max(energy_ub, energy.ub)
    objective_energy = model.NewIntVar(0, energy_ub, "energy")
    for b, energy in zip(choose, energies, strict=True):
        model.Add(objective_energy == energy.expr).OnlyEnforceIf(b)

    cycles = None
    if cap is not None or options.objective != "energy":
        compute = residual.compute_cycles(form) if ragged else _compute_cycles(form)
        cycles = _cycles(form, choose, traffic, cap, compute)
    if options.objective == "energy":
        model.Minimize(objective_energy)
    elif options.objective == "latency":
        model.Minimize(cycles.expr)
    else:
        # Energy in coarser units so energy x cycles stays within 62 bits.
        coarse = max(1, -(-energy_ub * cycles.ub // 2**60))
        e_coarse = model.NewIntVar(0, energy_ub // coarse + 1, "energy_coarse")
        model.Add(e_coarse * coarse <= objective_energy)
        model.Add(objective_energy < (e_coarse + 1) * coarse)
        edp = model.NewIntVar(0, (energy_ub // coarse + 1) * cycles.ub, "edp")
        model.AddMultiplicationEquality(edp, [e_coarse, cycles.expr])
        model.Minimize(edp)
    return Built(form, combos, choose, cap)


def solve_cpsat(space: MapSpace, options: SearchOptions) -> SearchResult | None:
    """Minimise the objective over the mapspace; None when no mapping is valid."""
    start = time.perf_counter()
    if not all(space.factor_tuples[d] for d in space.dims):
        return None  # some dim cannot be factored over the slots it may use
    proving = options.objective == "energy"  # the proof search bounds energy only
    budget = budget_for(options.time_limit_s * (1 - CPSAT_SHARE))
    cap = options.cycle_cap(space.nest.macs, space.target.pes)
    hint = warm_start(space, options)
    proofs: list[Proof] = []
    if proving and hint is not None:
        proofs.append(prove(space, hint.cost.energy_pj, budget, cap))
        hint = _proven(space, hint, proofs[-1], options, cap)
        if proofs[-1].complete:
            value = hint.cost.energy_pj
            elapsed = time.perf_counter() - start
            report = SolverReport(
                "cpsat", "OPTIMAL", value, value, 0.0, elapsed, 0, proof_work=proofs[-1].work
            )
            return SearchResult(hint.mapping, hint.cost, report)
    built = build_model(space, options)
    scale = built.form.scale
    nest, target = space.nest, space.target

    if hint is not None:
        built.hint(*decode(space, hint.mapping))
    solver, status = built.solve(options, CPSAT_SHARE if proving else 1.0)
    if status == cp_model.INFEASIBLE and hint is None:
        return None
    # INFEASIBLE with a warm start in hand (a valid point within the cap) would be a
    # solver fault: the warm start stands, reported FEASIBLE, not "no valid mapping".
    best = hint
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        mapping, cost = built.decoded(solver)
        found = SearchResult(mapping, cost, hint.report if hint else None)  # type: ignore[arg-type]
        # The warm start can beat a time-limited search; keep whichever is better.
        if (
            best is None
            or status == cp_model.OPTIMAL
            or rank_key(cost, options.objective) <= rank_key(best.cost, options.objective)
        ):
            best = found
    if best is None:
        # Out of time before any solution: sample instead (None only if nothing fits).
        return solve_random(
            space,
            SearchOptions(
                options.objective,
                options.max_cycles,
                options.min_utilization,
                samples=2000,
                seed=options.seed,
            ),
        )
    open_ = proving and status != cp_model.OPTIMAL  # the proof's bound is wanted
    # A proof from CP-SAT's point where it beat the proof's: a lower incumbent prunes more.
    improved = not proofs or best.cost.energy_pj < proofs[-1].energy_pj * (1 - IMPROVEMENT)
    if open_ and improved:
        proofs.append(prove(space, best.cost.energy_pj, budget, cap))
        best = _proven(space, best, proofs[-1], options, cap)
    value = objective_value(best.cost, options.objective)
    bound = 0.0
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = solver.BestObjectiveBound()
        if options.objective == "energy":
            bound = bound / scale + nest.macs * target.mac_energy_pj
        elif options.objective == "edp":
            bound = value if status == cp_model.OPTIMAL else 0.0
    # INFEASIBLE here means CP-SAT failed on a space the warm start has a point of.
    unsolved = (cp_model.UNKNOWN, cp_model.INFEASIBLE)
    name = "FEASIBLE" if status in unsolved else solver.StatusName(status)
    if open_:
        bound = max(bound, *(p.bound_pj for p in proofs))
        name = "OPTIMAL" if any(p.complete for p in proofs) else name
    bound = min(bound, value)  # map_layer raises it to the space's energy bound
    gap = 0.0 if name == "OPTIMAL" else max(0.0, (value - bound) / value)
    work = sum(p.work for p in proofs)
    elapsed = time.perf_counter() - start  # the warm start, CP-SAT and the proof
    report = SolverReport(
        "cpsat", name, value, bound, gap, elapsed, solver.NumBranches(), proof_work=work
    )
    return SearchResult(best.mapping, best.cost, report)


def _proven(
    space: MapSpace, best: SearchResult, proof: Proof, options: SearchOptions, cap: int | None
) -> SearchResult:
    """``best``, or the cheaper point the proof found, scored by the cost model. The proof
    takes the first point of the least energy; a descent from it moves only to ties with
    fewer cycles (``rank_key``), which the proof does not look for."""
    if proof.factors is None:
        return best
    mapping = space.mapping(proof.factors, proof.orders)  # type: ignore[arg-type]
    cost = score_point(space, mapping)
    assert cost is not None and abs(cost.energy_pj / proof.energy_pj - 1) < 1e-9
    return descend(space, SearchResult(mapping, cost, best.report), options, cap)


def _inside(space: MapSpace, level: int) -> list[Slot]:
    return [s for d in space.dims for s in space.slots[d] if s.level >= level]


def _capacity_constraints(form: Formulation, tile_of: Callable[..., Val]) -> None:
    space = form.space
    for i, lvl in enumerate(space.target.levels):
        tiles = []
        for t in space.nest.tensors:
            if t.role not in lvl.keeps:
                continue
            tile = tile_of(form, t, i)
            bits = lvl.bits_of(t.role)
            tiles.append((bits, tile))
            cap = lvl.capacity_bits_for(t.role)
            if cap is not None:
                form.model.Add(tile.expr * bits <= cap)
        cap = lvl.capacity_bits()
        if cap is not None and tiles:
            form.model.Add(sum(bits * v.expr for bits, v in tiles) <= cap)


def _extents(form: Formulation, tensor, level: int) -> list[Val]:  # noqa: ANN001
    """The box extents of ``tensor``'s tile at ``level``, built once per model."""
    key = ("box", tensor.role, level)
    if key not in form._memo:
        form._memo[key] = form.box(axis_terms(tensor), _inside(form.space, level))
    return form._memo[key]  # type: ignore[return-value]


def _tile(form: Formulation, tensor, level: int) -> Val:  # noqa: ANN001
    return form.mul(_extents(form, tensor, level), key=("tile", tensor.role, level))


def _fanout_constraints(form: Formulation) -> None:
    space = form.space
    for i in range(space.levels):
        fx, fy = space.fanout[i]
        for axis, limit in (("X", fx), ("Y", fy)):
            slots = [
                s for d in space.dims for s in space.slots[d] if s.level == i and s.axis == axis
            ]
            if len(slots) > 1:
                product = form.slot_product(slots)
                form.model.Add(product.expr <= limit)


def _energy(form: Formulation, blocks: Blocks[Val]) -> tuple[Val, dict]:
    """Scaled energy of the accesses for one choice of loop orders (``blocks``), and
    per-level traffic: the terms of ``joule.cost.terms``, each pJ coefficient rounded to
    ``form.scale`` units."""
    space = form.space
    terms: list[tuple[int, Val]] = []
    reads_at: dict[int, list[Val]] = {i: [] for i in range(space.levels)}
    writes_at: dict[int, list[Val]] = {i: [] for i in range(space.levels)}
    for term, count in cost_terms(space.nest, space.target).evaluate(blocks):
        terms.append((_c(term.energy_pj, form.scale), count))
        if term.kind == "read":
            reads_at[term.level].append(count)
        elif term.kind in ("fill", "update"):
            writes_at[term.level].append(count)
    energy = form.as_var(form.linear(terms))
    per_level = {
        i: (form.linear([(1, v) for v in reads_at[i]]), form.linear([(1, v) for v in writes_at[i]]))
        for i in range(space.levels)
    }
    return energy, per_level


class CpsatBlocks(Arithmetic):
    """The building blocks of ``joule.cost.terms`` as CP-SAT quantities, for one choice of
    loop orders (fills depend on it; everything is memoised across choices where not)."""

    def __init__(self, form: Formulation, combo: tuple[tuple[str, ...], ...]) -> None:
        self.form = form
        self.combo = combo

    def macs(self) -> Val:
        return const(self.form.space.nest.macs)

    def fills(self, tensor, level: int) -> Val:  # noqa: ANN001
        outer = outer_slots(self.combo, level)
        per_instance = _fills(self.form, tensor, level, outer)
        key = ("fills", tensor.role, level, tuple(outer))
        return self.form.mul([per_instance, self.form.instances(level)], key=key)

    def first(self, tensor, level: int) -> Val:  # noqa: ANN001
        return _first(self.form, tensor.relevant_dims, level)

    def grouped(self, tensor, outer: int, inner: int) -> None:  # noqa: ANN001
        return None  # perfect factors only: every child of a group is busy

    def shared(self, tensor, outer: int, inner: int) -> Val:  # noqa: ANN001
        space = self.form.space
        between = [
            s
            for d in space.dims
            if d not in tensor.relevant_dims
            for s in space.slots[d]
            if s.axis is not None and outer <= s.level < inner
        ]
        return self.form.slot_product(between)

    def links(self, tensor, level: int) -> Val:  # noqa: ANN001
        outer = outer_slots(self.combo, level)
        key = ("links", tensor.role, level, tuple(outer))
        if key not in self.form._memo:
            self.form._memo[key] = _links(self.form, tensor, level, outer)
        return self.form._memo[key]

    def lines(self, tensor, level: int) -> Val:  # noqa: ANN001
        along = set(self.form.space.link_slots(level))
        space = self.form.space
        across = [
            s
            for d in space.dims
            for s in space.slots[d]
            if s.axis is not None and s.level < level and s not in along
        ]
        return self.form.slot_product(across)


def _fills(form: Formulation, tensor, level: int, outer: list[Slot]) -> Val:  # noqa: ANN001
    """Per-instance fills of ``tensor`` at ``level`` (memoised across order choices)."""
    key = ("F", tensor.role, level, tuple(outer))
    if key in form._memo:
        return form._memo[key]
    at = axis_terms(tensor)
    tile = _tile(form, tensor, level)
    if all(len(axis) <= 1 for axis in at):
        out = form.as_var(form.fills_stationary(set(tensor.relevant_dims), tile, outer))
    else:
        out = form.fills(at, _extents(form, tensor, level), tile, outer)
    form._memo[key] = out
    return out


def _links(form: Formulation, tensor, level: int, outer: list[Slot]) -> Val:  # noqa: ANN001
    """Words all instances of ``level`` take from a neighbour (``joule.cost.nest.linked_words``).

    One candidate per (temporal slot k above, spatial slot m on the link axis): k is the
    innermost loop that moves, m the innermost moving one on the axis, k's tile shift
    equals m's tile offset up to sign (equal steps, scaled by the coefficients) and
    reaches past the tile on some axis. Pairs whose coefficients rule that out, or of
    one dim (a temporal loop above the fan-out steps over the spatial one), are dropped
    before the model sees them.
    """
    model = form.model
    space = form.space
    at = axis_terms(tensor)
    spatial = space.link_slots(level)
    extents = _extents(form, tensor, level)
    tile = _tile(form, tensor, level)
    above = [
        s for d in space.dims for s in space.slots[d] if s.axis is not None and s.level < level
    ]
    parts: list[tuple[int, Val]] = []
    for k, star in enumerate(outer):
        if star.dim not in tensor.relevant_dims or form.f(star).ub == 1:
            continue
        for m, link in enumerate(spatial):
            if link.dim == star.dim or form.f(link).ub == 1:
                continue
            pairs = scaled_steps(at, star.dim, link.dim)
            if pairs is None:
                continue
            conds = [form._moves(star), *[form._moves(s).Not() for s in outer[k + 1 :]]]
            conds += [form._moves(link), *[form._moves(s).Not() for s in spatial[m + 1 :]]]
            whole = []
            for axis_index, (ck, cm) in pairs:
                shift = form.mul([const(ck), form.step(star)])
                offset = form.mul([const(cm), form.step(link)])
                same = model.NewBoolVar("")
                model.Add(shift.expr == offset.expr).OnlyEnforceIf(same)
                model.Add(shift.expr != offset.expr).OnlyEnforceIf(same.Not())
                conds.append(same)
                past = model.NewBoolVar("")
                model.Add(shift.expr >= extents[axis_index].expr).OnlyEnforceIf(past)
                model.Add(shift.expr < extents[axis_index].expr).OnlyEnforceIf(past.Not())
                whole.append(past)
            reaches = model.NewBoolVar("")
            model.AddBoolOr(whole).OnlyEnforceIf(reaches)
            model.AddBoolAnd([w.Not() for w in whole]).OnlyEnforceIf(reaches.Not())
            conds.append(reaches)
            on = model.NewBoolVar("")
            model.AddBoolAnd(conds).OnlyEnforceIf(on)
            model.AddBoolOr([c.Not() for c in conds]).OnlyEnforceIf(on.Not())
            fk, fm = form.f(star), form.f(link)
            value = form.mul(
                [
                    form.slot_product([s for s in above if s != link]),
                    Val(fm.expr - 1, fm.lb - 1, fm.ub - 1),
                    form.slot_product(outer[:k]),
                    Val(fk.expr - 1, fk.lb - 1, fk.ub - 1),
                    tile,
                ]
            )
            gated = model.NewIntVar(0, max(0, value.ub), "")
            model.Add(gated == value.expr).OnlyEnforceIf(on)
            model.Add(gated == 0).OnlyEnforceIf(on.Not())
            parts.append((1, Val(gated, 0, max(0, value.ub))))
    return form.linear(parts) if parts else const(0)


def _first(form: Formulation, relevant: frozenset[str], level: int) -> Val:
    """Distinct output words all instances of ``level`` touch (first writes are free)."""
    space = form.space
    slots = [
        s
        for d in space.dims
        if d in relevant
        for s in space.slots[d]
        if not (s.axis is not None and s.level < level)
    ]
    per = form.slot_product(slots)
    return form.mul([per, form.instances(level)], key=("first", relevant, level))


def _c(pj: float, scale: float) -> int:
    return round(pj * scale)


def _compute_cycles(form: Formulation) -> Val:
    """Perfect factors: every PE busy on every step, ``MACs / spatial factors``."""
    space = form.space
    spatial = form.slot_product([s for d in space.dims for s in space.slots[d] if s.axis])
    macs = space.nest.macs
    compute = form.model.NewIntVar(1, macs, "compute")
    form.model.AddMultiplicationEquality(macs, [compute, spatial.expr])
    return Val(compute, 1, macs)


def _cycles(
    form: Formulation, choose: list, traffic: list[dict], cap: int | None, compute: Val
) -> Val:
    """Cycles = max(compute, each level's busier port / bandwidth), capped when asked."""
    space = form.space
    model = form.model
    macs = space.nest.macs
    ub = macs if cap is None else min(macs, cap)
    worst = max(ub, max((max(r.ub, w.ub) for per in traffic for r, w in per.values()), default=ub))
    cycles = model.NewIntVar(1, worst if cap is None else ub, "cycles")
    model.Add(cycles >= compute.expr)
    for b, per_level in zip(choose, traffic, strict=True):
        for i, (reads, writes) in per_level.items():
            bw = space.target.levels[i].bandwidth_words_per_cycle
            if bw is None:
                continue
            inst = form.instances(i)
            budget = form.mul([Val(cycles, 1, worst), inst], cap=2**62)
            # cycles * inst * bw >= words, written over integers (bw may be fractional).
            num, den = _fraction(bw)
            model.Add(budget.expr * num >= reads.expr * den).OnlyEnforceIf(b)
            model.Add(budget.expr * num >= writes.expr * den).OnlyEnforceIf(b)
    return Val(cycles, 1, worst)


def _fraction(x: float) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(x).limit_denominator(1000)
    return f.numerator, f.denominator


def solve_cpsat_imperfect(
    space: MapSpace, options: SearchOptions, start: SearchResult
) -> SearchResult | None:
    """Minimise over residual tiles too (every imperfect tuple of every dim), from
    ``start`` (the residual search's best); None where the formulation cannot model
    the layer (``residual.refusal``). Status OPTIMAL when CP-SAT proves it."""
    if residual.refusal(space) is not None:
        return None
    started = time.perf_counter()
    tuples = residual.imperfect_tuples(space)
    assert tuples is not None  # refusal() checked
    built = build_model(space, options, tuples)
    built.hint(*decode(space, start.mapping))
    solver, status = built.solve(options, 1.0)
    best = start
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        mapping, cost = built.decoded(solver)
        if rank_key(cost, options.objective) <= rank_key(start.cost, options.objective):
            best = SearchResult(mapping, cost, start.report)
    value = objective_value(best.cost, options.objective)
    proven = status == cp_model.OPTIMAL
    report = SolverReport(
        "cpsat-imperfect",
        "OPTIMAL" if proven else "FEASIBLE",
        value,
        value if proven else 0.0,
        0.0 if proven else 1.0,
        time.perf_counter() - started,
        solver.NumBranches(),
    )
    return SearchResult(best.mapping, best.cost, report)
