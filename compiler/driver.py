"""``compile_model``: ONNX model + target -> a Schedule (the Python face of ``joule compile``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from joule.cache import ResultCache, open_cache
from joule.defaults import DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT_S, DEFAULT_WORKERS
from joule.errors import OptionError
from joule.ir.network import Network
from joule.option_checks import check_options
from joule.passmanager import PassManager
from joule.pipeline import MappingModule
from joule.schedule import LayerSchedule, Schedule
from joule.targets.precision import PrecisionPlan, with_precision
from joule.targets.spec import Target

if TYPE_CHECKING:
    from joule.passes.mapper.outcome import SolverReport

GAP_WARNING = 0.01


class CompileInterrupted(KeyboardInterrupt):
    """Ctrl-C while mapping: ``schedule`` holds the layers solved so far, ``complete=False``."""

    def __init__(self, schedule: Schedule) -> None:
        super().__init__("interrupted while mapping layers")
        self.schedule = schedule


def compile_model(
    model: str | Path | object,
    target: str | Path | Target,
    *,
    objective: str = "energy",
    dataflow: str = "free",
    mapper: str = "cpsat",
    time_limit: float = DEFAULT_TIME_LIMIT_S,
    workers: int = DEFAULT_WORKERS,
    samples: int = DEFAULT_SAMPLES,
    max_cycles: int | None = None,
    min_utilization: float | None = None,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    print_after: frozenset[str] = frozenset(),
    log: TextIO | None = None,
    cache: ResultCache | str | Path | bool | None = None,
    precision: str | Path | PrecisionPlan | None = None,
    factors: str = "perfect",
) -> Schedule:
    """Map every MAC layer of ``model`` on ``target``.

    ``model`` is an ONNX path, a ModelProto, a bundled model name or an already
    lowered :class:`Network`; ``target`` a bundled name, a YAML path or a Target.
    ``time_limit`` is the per-layer solver budget in deterministic units
    (CP-SAT's deterministic seconds and the proof's work units: reproducible
    on any machine load; roughly wall seconds).

    ``cache``: None/False solves everything; True uses the default result cache
    (``joule.cache.default_cache_path``); a path or a ``ResultCache`` uses
    that one. Cached and fresh solves give the same schedule.
    ``precision``: bits per tensor for every layer (``"w4a8"``), or per layer (a
    :class:`PrecisionPlan` or its YAML file); None keeps the target's own widths.
    ``factors``: ``"perfect"`` (every loop divides its dim; optimal over that space
    with a certificate) or ``"imperfect"`` (then improved with residual tiles; proven
    only where CP-SAT covers the layer or the objective meets the imperfect space's
    floor, else with its gap;
    docs/cost-model.md, "Imperfect factors").
    Ctrl-C raises :class:`CompileInterrupted` with the partial schedule.
    """
    from joule.passes.canonicalize import Canonicalize
    from joule.passes.dataflow import AssignDataflow
    from joule.passes.mapper.outcome import SearchOptions
    from joule.passes.tile import TileAndOrder, TileInterrupted
    from joule.targets import load_target

    check_options(
        "compile_model",
        time_limit=time_limit,
        workers=workers,
        samples=samples,
        max_cycles=max_cycles,
        min_utilization=min_utilization,
    )
    start = time.perf_counter()
    tgt = target if isinstance(target, Target) else load_target(target)
    network = model if isinstance(model, Network) else _lower(model, batch, dims)
    options = SearchOptions(
        objective=objective,
        max_cycles=max_cycles,
        min_utilization=min_utilization,
        time_limit_s=time_limit,
        samples=samples,
        factors=factors,
    )
    passes = [
        Canonicalize(),
        AssignDataflow(dataflow),
        TileAndOrder(mapper=mapper, options=options, workers=workers, cache=open_cache(cache)),
    ]
    manager = PassManager(passes, print_after=print_after, **({"out": log} if log else {}))
    module = _with_precision(MappingModule.from_network(network, tgt), precision)
    try:
        module = manager.run(module)
    except TileInterrupted as stop:
        schedule = _schedule(stop.module, objective, dataflow, mapper)
        schedule.pass_times_s = {t.name: t.seconds for t in manager.timings}
        schedule.time_s = time.perf_counter() - start
        raise CompileInterrupted(schedule) from None
    schedule = _schedule(module, objective, dataflow, mapper)
    schedule.pass_times_s = {t.name: t.seconds for t in manager.timings}
    schedule.time_s = time.perf_counter() - start
    return schedule


def _with_precision(
    module: MappingModule, precision: str | Path | PrecisionPlan | None
) -> MappingModule:
    """Give each layer whose precision differs from the target's its own target."""
    if precision is None:
        return module
    plan = precision if isinstance(precision, PrecisionPlan) else PrecisionPlan.parse(precision)
    known = {layer.original.name for layer in module.layers}
    unknown = sorted(name for name, _ in plan.layers if name not in known)
    if unknown:
        raise OptionError(
            f"the precision file names layers the model does not have: {', '.join(unknown)}",
            hint=f"layer names are the ONNX nodes 'joule lower' prints, e.g. {min(known)}",
        )
    layers = []
    for layer in module.layers:
        chosen = plan.for_layer(layer.original.name)
        own = with_precision(module.target, chosen)
        note = (
            (f"precision {chosen.label} (target {own.name})",) if own is not module.target else ()
        )
        layers.append(
            layer.with_(target=own if own is not module.target else None, notes=layer.notes + note)
        )
    return module.with_layers(layers)


def _lower(model: object, batch: int | None, dims: Mapping[str, int] | None) -> Network:
    from joule.lower import lower_model

    return lower_model(model, batch=batch, dims=dims)  # type: ignore[arg-type]


def _schedule(module: MappingModule, objective: str, dataflow: str, mapper: str) -> Schedule:
    from joule.cost import evaluate

    layers = []
    warnings = []
    stopped: list[tuple[float, str]] = []
    refined: list[SolverReport] = []  # --factors imperfect: its gap is to the imperfect bound
    first_of: dict[str, str] = {}
    unsolved = [layer.original.name for layer in module.layers if layer.result is None]
    for layer in module.layers:
        result = layer.result
        if result is None:  # interrupted before this layer was solved
            continue
        # Re-score on the original nest: the reported numbers are the model's.
        cost = evaluate(layer.original, module.target_of(layer), result.mapping)
        signature = layer.nest.signature()
        shared = first_of.setdefault(signature, layer.original.name)
        report = result.report
        if report.perfect_status and shared == layer.original.name:
            refined.append(report)
        elif mapper == "cpsat" and report.gap > GAP_WARNING and shared == layer.original.name:
            stopped.append((report.gap, layer.original.name))
        layers.append(
            LayerSchedule(
                nest=layer.original,
                mapping=result.mapping,
                cost=cost,
                solver=report.to_dict(),
                dataflow=getattr(layer.constraints, "dataflow", dataflow),
                shared_with=None if shared == layer.original.name else shared,
                notes=layer.notes,
            )
        )
    if stopped:
        gap, name = max(stopped, key=lambda item: item[0])
        solved = len(first_of)
        warnings.append(
            f"{len(stopped)} of {solved} distinct layers stopped at the time limit with a gap "
            f"over {GAP_WARNING:.0%} (largest: layer {name}, {gap:.1%}); their best mappings "
            "are used (solver.gap per layer in schedule.json; raise --time-limit to narrow)"
        )
    if refined:
        better = sum(r.objective < r.perfect_objective for r in refined)
        proven = sum(r.perfect_status == "OPTIMAL" for r in refined)
        certified = sum(r.status == "OPTIMAL" for r in refined)
        warnings.append(
            f"--factors imperfect: residual tiles improved {better} of {len(refined)} distinct "
            f"layers on the perfect-factor optimum (proven on {proven} of them); proven "
            f"optimal over residual tiles too: {certified} (by CP-SAT over every imperfect "
            "tuple, or an objective meeting the imperfect space's floor), the rest report "
            "their gap (solver.gap and solver.perfect_objective per layer)"
        )
    if unsolved:
        shown = ", ".join(unsolved[:10]) + (", ..." if len(unsolved) > 10 else "")
        warnings.append(
            f"interrupted: {len(unsolved)} of {len(module.layers)} layers were not mapped "
            f"({shown}); this schedule is incomplete"
        )
    return Schedule(
        model=module.network.model,
        target=module.target.name,
        target_hash=module.target.content_hash,
        objective=objective,
        dataflow=dataflow,
        mapper=mapper,
        layers=layers,
        unmapped_ops=list(module.network.unmapped_ops),
        warnings=warnings,
        complete=not unsolved,
    )
