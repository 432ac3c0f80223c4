"""Map one layer: pick the mapper, run it, and explain a layer that cannot fit the target."""

from __future__ import annotations

import dataclasses
import math

from joule.errors import JouleError, TargetError
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.bounds.spatial import energy_bound_pj, imperfect_energy_bound_pj
from joule.passes.mapper.cpsat.solve import solve_cpsat, solve_cpsat_imperfect
from joule.passes.mapper.mapspace.space import MapSpace, SpaceConstraints
from joule.passes.mapper.outcome import (
    FACTORS,
    OBJECTIVES,
    SearchOptions,
    SearchResult,
    SolverReport,
    objective_value,
)
from joule.passes.mapper.search.exhaustive import solve_exhaustive
from joule.passes.mapper.search.imperfect import refine_imperfect
from joule.passes.mapper.search.random_sampling import solve_random
from joule.targets.spec import Target

BOUND_MET = 1e-9  # relative: the bound and the model sum the same terms in another order
MAPPERS = {"cpsat": solve_cpsat, "exhaustive": solve_exhaustive, "random": solve_random}


def map_layer(
    nest: LoopNest,
    target: Target,
    constraints: SpaceConstraints,
    *,
    mapper: str = "cpsat",
    options: SearchOptions | None = None,
) -> SearchResult:
    """The best mapping the chosen mapper finds; TargetError when none is valid."""
    options = options or SearchOptions()
    if mapper not in MAPPERS:
        raise JouleError(f"unknown mapper {mapper!r}", hint=f"choose one of {', '.join(MAPPERS)}")
    if options.objective not in OBJECTIVES:
        raise JouleError(
            f"unknown objective {options.objective!r}",
            hint=f"choose one of {', '.join(OBJECTIVES)}",
        )
    if options.factors not in FACTORS:
        raise JouleError(
            f"unknown factor space {options.factors!r}", hint=f"choose one of {', '.join(FACTORS)}"
        )
    space = MapSpace(nest, target, constraints)
    result = MAPPERS[mapper](space, options)
    if result is None:
        raise _no_mapping(space, options)
    imperfect = options.factors == "imperfect"
    space_bound = imperfect_energy_bound_pj(space) if imperfect else energy_bound_pj(space)
    floor = objective_floor(space, options, space_bound)
    report = _with_energy_bound(result.report, space_bound, floor, options)
    result = dataclasses.replace(result, report=report)
    if imperfect and mapper != "exhaustive":
        refined = refine_imperfect(space, result, options)
        # Where CP-SAT can tabulate every imperfect tuple it goes on from there.
        exact = solve_cpsat_imperfect(space, options, refined) if mapper == "cpsat" else None
        proven = exact is not None and exact.report.status == "OPTIMAL"
        refined = exact or refined
        report = _imperfect_report(report, refined, space_bound, floor, options, proven)
        result = dataclasses.replace(refined, report=report)
    return result


def objective_floor(space: MapSpace, options: SearchOptions, energy_bound_pj: float) -> float:
    """No mapping's objective is lower: the energy bound; for latency the cycles of every
    PE busy every cycle (each runs at most one MAC per cycle); for EDP their product."""
    if options.objective == "energy":
        return energy_bound_pj
    cycles = -(-space.nest.macs // space.target.pes)
    return cycles if options.objective == "latency" else cycles * energy_bound_pj


def _imperfect_report(
    perfect: SolverReport,
    refined: SearchResult,
    space_bound: float,
    floor: float,
    options: SearchOptions,
    proven: bool,
) -> SolverReport:
    """OPTIMAL over residual tiles where CP-SAT proved it (``proven``) or the objective
    meets the imperfect space's floor (``objective_floor``); else FEASIBLE with the gap to
    it. The perfect space's own status and objective are kept."""
    value = objective_value(refined.cost, options.objective)
    energy = refined.cost.energy_pj
    bound = min(value, floor)
    gap = _gap(value, bound)
    proven = proven or gap <= BOUND_MET
    if proven:
        bound, gap = value, 0.0
    energy_proven = proven and options.objective == "energy"
    return dataclasses.replace(
        perfect,
        status="OPTIMAL" if proven else "FEASIBLE",
        objective=value,
        bound=bound,
        gap=gap,
        energy_bound_pj=energy if energy_proven else min(space_bound, energy),
        perfect_status=perfect.status,
        perfect_objective=perfect.objective,
    )


def _with_energy_bound(
    report: SolverReport, bound_pj: float, floor: float, options: SearchOptions
) -> SolverReport:
    """Record the energy no mapping of the layer can beat, and raise the mapper's bound
    to the objective's ``floor`` (never past the objective), which sets the gap; a layer
    whose objective meets it is OPTIMAL. For energy the floor is that energy bound, and
    for an OPTIMAL layer it is the objective."""
    bound = min(report.objective, max(report.bound, floor))
    energy_bound = bound if options.objective == "energy" else bound_pj
    if report.status == "OPTIMAL":
        return dataclasses.replace(report, energy_bound_pj=energy_bound)
    gap = _gap(report.objective, bound)
    status = "OPTIMAL" if gap <= BOUND_MET else report.status
    return dataclasses.replace(
        report, status=status, bound=bound, gap=gap, energy_bound_pj=energy_bound
    )


def _gap(value: float, bound: float) -> float:
    """How far above ``bound`` (at most ``value``) the objective ``value`` may be, relative."""
    return (value - bound) / value if value else 0.0


def _no_mapping(space: MapSpace, options: SearchOptions) -> JouleError:
    """Name the level and tensor whose smallest possible tile does not fit."""
    nest, target = space.nest, space.target
    for i, level in enumerate(target.levels):
        # Dims with no slot above this level must sit wholly inside its tile.
        pinned = {d for d in space.dims if not any(s.level < i for s in space.slots[d])}
        sizes = {}
        for t in nest.tensors:
            if t.role not in level.keeps:
                continue
            extents = nest.extents
            sizes[t.role] = math.prod(
                sum(abs(c) * (extents[d] - 1) for d, c in axis.terms if d in pinned) + 1
                for axis in t.projection
            )
            cap = level.capacity_for(t.role)
            if cap is not None and sizes[t.role] * level.bits_of(t.role) > cap * level.word_bits:
                return TargetError(
                    f"layer @{nest.name} cannot be mapped: its {t.role} needs at least "
                    f"{sizes[t.role]} words at level {level.name}, which holds {cap}",
                    where=target.source_file or target.name,
                    hint=f"enlarge {level.name} or allow more loops above it",
                )
        needed = sum(w * level.bits_of(r) for r, w in sizes.items())  # type: ignore[arg-type]
        if level.capacity_words is not None and needed > level.capacity_words * level.word_bits:
            detail = ", ".join(f"{r} {w}" for r, w in sizes.items())
            return TargetError(
                f"layer @{nest.name} cannot be mapped: level {level.name} holds "
                f"{level.capacity_words} words but the smallest tiles need {detail}",
                where=target.source_file or target.name,
                hint=f"enlarge {level.name} or allow more loops above it",
            )
    cap = options.cycle_cap(nest.macs, target.pes)
    if cap is not None:
        return JouleError(
            f"layer @{nest.name}: no mapping meets the latency cap of {cap} cycles",
            hint="relax --max-cycles / --min-utilization",
        )
    return TargetError(
        f"layer @{nest.name} has no valid mapping on {target.name} "
        f"(dataflow {space.constraints.dataflow})",
        where=target.source_file or target.name,
        hint="try --dataflow free or a target with larger buffers",
    )
