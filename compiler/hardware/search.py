"""Searching a sweep's design space instead of mapping every grid point.

The sweep file's ``parameters`` lists are the choices; a search maps ``evaluations``
distinct design points, each by the full mapper through the sweep's own machinery
(:class:`joule.hardware.sweep._SweepState`: resume log, result cache, process pool or
Ray), so a search point is the same record, with the same id, as the grid point::

    search: {method: nsga2, evaluations: 40, population: 8, seed: 0,
             reference: {energy: 6.0e9, area: 40}}     # optional: hypervolume reference

* ``nsga2``: pymoo's NSGA-II (Deb et al. 2002) over one integer variable per parameter
  (the index into its list): a first population of distinct grid points drawn
  uniformly (as ``random`` draws them), SBX crossover and polynomial mutation with
  rounding repair (eta 3, as in pymoo's integer-variable example), duplicates
  eliminated also against every point mapped so far, so each evaluation is a new design
  point; pymoo's ask-and-tell loop, one generation (``population`` points) mapped in
  parallel at a time. A point over a constraint is infeasible for NSGA-II (constraint
  violation = relative excess), a failed one maximally so. When pymoo's mating finds no
  new point the search stops early (the summary's ``evaluations`` says how many).
* ``random``: ``evaluations`` distinct grid points drawn uniformly without replacement
  (numpy's ``default_rng(seed)``), the baseline a search must beat.

Both are deterministic for a seed: pymoo 0.6.2 draws from the algorithm's own
``numpy.random.Generator``, and the mapper's time limit is in deterministic units, so
the objective values it is told are the same on every run.

:func:`hypervolume` is pymoo's HV indicator on the feasible front, each objective
divided by the reference point's value (so the reference is (1, ..., 1) and a front's
hypervolume is the share of the box [0, reference] it dominates).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from joule.hardware.sweep import OBJECTIVE_KEYS, SweepSpec

FAILED_F = 1e30  # objective value told to NSGA-II for a point that has none
FAILED_G = 1e6  # constraint violation of a failed point: worse than any over-limit one
MAX_IDLE_GENERATIONS = 50  # stop when NSGA-II proposes nothing new this many times


def run_search(spec: SweepSpec, state: Any, backend: Any) -> dict[str, Any]:
    names = list(spec.grid)
    sizes = [len(spec.grid[n]) for n in names]
    total = math.prod(sizes)
    method = spec.search["method"]
    budget = min(int(spec.search["evaluations"]), total)
    seed = int(spec.search.get("seed", 0))
    state.start_progress(budget, f"sweep ({method}): {budget} design points")
    evaluated: dict[tuple[int, ...], int] = {}  # choice indices -> record index

    def evaluate(xs: list[tuple[int, ...]], step: int) -> None:
        new = [x for x in dict.fromkeys(xs) if x not in evaluated][: budget - len(evaluated)]
        tasks = []
        for x in new:
            params = {**spec.fixed, **{n: spec.grid[n][i] for n, i in zip(names, x, strict=True)}}
            task = state.add(params, generation=step)
            evaluated[x] = len(state.records) - 1
            if task is not None:
                tasks.append(task)
        state.run(tasks, backend)
        state.settle([evaluated[x] for x in new])

    summary: dict[str, Any] = {"method": method, "seed": seed, "budget": budget}
    if method == "random":
        rng = np.random.default_rng(seed)
        flat = rng.choice(total, size=budget, replace=False)
        evaluate([tuple(int(i) for i in np.unravel_index(f, sizes)) for f in flat], 0)
    elif method == "nsga2":
        summary["population"] = _nsga2(spec, state, evaluate, evaluated, sizes, budget, seed)
    else:  # load_sweep allows no other
        raise AssertionError(method)
    summary["evaluations"] = len(evaluated)  # fewer than asked if NSGA-II found no new point
    summary["generations"] = len({state.records[i]["generation"] for i in evaluated.values()})
    return summary


def _nsga2(
    spec: SweepSpec,
    state: Any,
    evaluate: Any,
    evaluated: dict[tuple[int, ...], int],
    sizes: list[int],
    budget: int,
    seed: int,
) -> int:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.problems.static import StaticProblem

    population = int(spec.search.get("population", 10))
    problem = Problem(
        n_var=len(sizes),
        n_obj=len(spec.objectives),
        n_ieq_constr=1,
        xl=np.zeros(len(sizes)),
        xu=np.array(sizes, dtype=float) - 1,
        vtype=int,
    )
    algorithm = NSGA2(
        pop_size=population,
        sampling=_distinct_sample(sizes, min(population, budget), seed),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=_unseen(evaluated, sizes),
    )
    # the budget is counted here (distinct points mapped), not by pymoo's termination
    algorithm.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
    generation = idle = 0
    while len(evaluated) < budget and idle < MAX_IDLE_GENERATIONS:
        pop = algorithm.ask()
        if pop is None:  # pymoo has nothing more to propose
            break
        rows = np.clip(np.rint(pop.get("X")).astype(int), 0, np.array(sizes) - 1)
        xs = [tuple(int(v) for v in row) for row in rows]
        before = len(evaluated)
        evaluate(xs, generation)
        idle = idle + 1 if len(evaluated) == before else 0
        if any(x not in evaluated for x in xs):
            break  # the budget ran out inside this generation: nothing more to tell
        told = [_told(state.records[evaluated[x]], spec) for x in xs]
        objectives = np.array([f for f, _ in told], dtype=float)
        violation = np.array([[g] for _, g in told], dtype=float)
        Evaluator().eval(StaticProblem(problem, F=objectives, G=violation), pop)
        algorithm.tell(infills=pop)
        generation += 1
    return population


def _unseen(evaluated: dict[tuple[int, ...], int], sizes: list[int]) -> Any:
    """pymoo's duplicate elimination, which also drops offspring already mapped in an
    earlier generation, so that pymoo's mating keeps breeding until it has new points
    and every evaluation of the budget is a new design point."""
    from pymoo.core.duplicate import DefaultDuplicateElimination

    upper = np.array(sizes) - 1

    class Unseen(DefaultDuplicateElimination):
        def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
            is_duplicate = super()._do(pop, other, is_duplicate)
            rows = np.clip(np.rint(np.asarray(pop.get("X"), dtype=float)).astype(int), 0, upper)
            for i, row in enumerate(rows):
                if tuple(int(v) for v in row) in evaluated:
                    is_duplicate[i] = True
            return is_duplicate

    return Unseen()


def _distinct_sample(sizes: list[int], count: int, seed: int) -> np.ndarray:
    """NSGA-II's first population: ``count`` distinct grid points drawn uniformly (pymoo's
    IntegerRandomSampling draws with replacement, and on a small grid its duplicates,
    which pymoo then drops, can shrink the first population to a single point)."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(math.prod(sizes), size=min(count, math.prod(sizes)), replace=False)
    return np.array([np.unravel_index(f, sizes) for f in flat], dtype=float)


def _told(rec: dict[str, Any], spec: SweepSpec) -> tuple[list[float], float]:
    """What NSGA-II is told about a point: its objectives and its constraint violation
    (<= 0 feasible; the largest relative excess over a limit; FAILED_G when it failed)."""
    keys = [OBJECTIVE_KEYS[o] for o in spec.objectives]
    values = [rec.get(k) for k in keys]
    objectives = [FAILED_F if v is None else float(v) for v in values]
    if rec.get("status") == "failed" or rec.get("status") == "pruned":
        return [FAILED_F] * len(keys), FAILED_G
    excess = [
        (float(rec[k]) - limit) / limit
        for k, limit in spec.constraints.items()
        if rec.get(k) is not None and limit > 0
    ]
    if rec.get("status") == "infeasible":
        return objectives, max([e for e in excess if e > 0], default=FAILED_G / 2)
    return objectives, max([*excess, 0.0])


def hypervolume(
    points: list[dict[str, Any]], objectives: list[str], reference: dict[str, float]
) -> float:
    """pymoo's HV of the feasible ``points`` with each objective divided by its reference
    value; points not strictly inside the reference box add nothing."""
    from pymoo.indicators.hv import HV

    keys = [OBJECTIVE_KEYS[o] for o in objectives]
    scale = np.array([reference[o] for o in objectives], dtype=float)
    rows = [
        [float(p[k]) for k in keys]
        for p in points
        if p.get("status") == "ok" and all(p.get(k) is not None for k in keys)
    ]
    if not rows:
        return 0.0
    return float(HV(ref_point=np.ones(len(keys)))(np.array(rows) / scale))


__all__ = ["hypervolume", "run_search"]
