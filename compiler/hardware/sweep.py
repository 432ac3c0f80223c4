"""``joule sweep``: map a set of networks on every design point of a target template.

A sweep file (YAML) names the template, the parameter grid, the networks, the
objectives and the constraints::

    template: eyeriss-template
    parameters: {mesh_x: [12, 14], glb_kib: [64, 128]}   # grid: every combination
    fixed: {dram: LPDDR4}                                 # optional, one value each
    networks: [alexnet, path/to/model.onnx]
    objectives: [energy, area]                            # energy | cycles | area | edp
    constraints: {area_mm2: 15}                           # area_mm2 | energy_pj | cycles <= value
    mapper: {time_limit: 0.5, objective: energy, dataflow: free, mapper: cpsat}

Every design point is mapped by Joule's full mapper (:func:`joule.compile_model`:
identical layer shapes within a design solved once, the result cache in
``OUT/cache.sqlite``), network by network; every layer's status and gap are kept
with the point. A point whose template instance is invalid or whose mapping fails
is recorded with the reason; one over the area limit is recorded without mapping.

Resume: each finished point is appended to ``OUT/points.jsonl`` as it completes and
is not run again by a sweep with the same ``--out``; a point killed half way finds
its finished layers in the cache (keyed by layer shape, target content hash, mapper
options and solver code), so no finished (layer, design) pair is solved twice.

Points run in a local process pool (``workers``), or as Ray tasks (``ray=True``, on a
local instance or the cluster at ``ray_address``). The mapper's time limit is in
deterministic units, so both give the same results.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import io
import itertools
import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joule.errors import JouleError
from joule.progress import Progress

OBJECTIVES = ("energy", "cycles", "area", "edp")
OBJECTIVE_KEYS = {"energy": "energy_pj", "cycles": "cycles", "area": "area_mm2", "edp": "edp"}
CONSTRAINT_KEYS = ("area_mm2", "energy_pj", "cycles")
SWEEP_KEYS = (
    "template",
    "parameters",
    "fixed",
    "networks",
    "objectives",
    "constraints",
    "mapper",
    "prune",
    "search",
)
SEARCH_METHODS = ("grid", "nsga2", "random")
SEARCH_KEYS = ("method", "evaluations", "seed", "population", "reference")
MAPPER_KEYS = ("time_limit", "objective", "dataflow", "mapper", "samples")
POINTS_LOG = "points.jsonl"
CACHE_FILE = "cache.sqlite"
TIME_FIELDS = frozenset({"time_s", "cache", "reused"})  # differ between runs by design


class SweepError(JouleError):
    """A sweep file that cannot be run as written."""


@dataclass(frozen=True)
class SweepSpec:
    template: str
    grid: dict[str, list[Any]]
    fixed: dict[str, Any]
    networks: list[str]
    objectives: list[str]
    constraints: dict[str, float]
    mapper: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    prune: bool = False  # skip points whose lower bounds a finished point dominates
    search: dict[str, Any] = field(default_factory=dict)  # {} or method grid: every point

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the grid, in the file's order (last parameter fastest)."""
        names = list(self.grid)
        return [
            {**self.fixed, **dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*(self.grid[n] for n in names))
        ]


def load_sweep(path: str | Path) -> SweepSpec:
    import yaml

    shown = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise SweepError(f"cannot read sweep file: {err.strerror}", where=shown, hint="") from None
    except yaml.YAMLError as err:
        raise SweepError(f"malformed YAML: {err}", where=shown, hint="fix the YAML") from None
    if not isinstance(data, dict):
        raise SweepError("must be a YAML mapping", where=shown, hint="see joule sweep --help")
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise SweepError(
            f"unknown key(s) {', '.join(unknown)}",
            where=shown,
            hint="allowed: " + ", ".join(SWEEP_KEYS),
        )
    for key in ("template", "parameters", "networks"):
        if key not in data:
            raise SweepError(f"'{key}' is missing", where=shown, hint="see joule sweep --help")
    grid = data["parameters"]
    if not isinstance(grid, dict) or not grid:
        raise SweepError("'parameters' must map names to lists of values", where=shown, hint="")
    grid = {k: list(v) if isinstance(v, list) else [v] for k, v in grid.items()}
    networks = data["networks"]
    if isinstance(networks, str):
        networks = [networks]
    if not isinstance(networks, list) or not networks:
        raise SweepError("'networks' must be a non-empty list", where=shown, hint="")
    objectives = data.get("objectives", ["energy", "area"])
    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad or len(objectives) < 1:
        raise SweepError(
            f"unknown objective(s) {bad}", where=shown, hint="use " + ", ".join(OBJECTIVES)
        )
    constraints = data.get("constraints") or {}
    bad = [c for c in constraints if c not in CONSTRAINT_KEYS]
    if bad:
        raise SweepError(
            f"unknown constraint(s) {bad}",
            where=shown,
            hint="constraints are upper limits on " + ", ".join(CONSTRAINT_KEYS),
        )
    mapper = data.get("mapper") or {}
    bad = [m for m in mapper if m not in MAPPER_KEYS]
    if bad:
        raise SweepError(
            f"unknown mapper option(s) {bad}", where=shown, hint="use " + ", ".join(MAPPER_KEYS)
        )
    search = _check_search(data.get("search"), objectives, shown)
    if search.get("method", "grid") != "grid" and data.get("prune"):
        raise SweepError(
            "'prune' works on a grid sweep only",
            where=shown,
            hint="drop 'prune: true' or use search method grid",
        )
    return SweepSpec(
        template=str(data["template"]),
        grid=grid,
        fixed=dict(data.get("fixed") or {}),
        networks=[str(n) for n in networks],
        objectives=list(objectives),
        constraints={k: float(v) for k, v in constraints.items()},
        mapper=dict(mapper),
        source=str(Path(path).resolve()),
        prune=bool(data.get("prune", False)),
        search=search,
    )


def _check_search(search: Any, objectives: list[str], shown: str) -> dict[str, Any]:
    """The sweep file's ``search`` block, checked: method grid (the default: every point of
    the parameter lists), nsga2 (pymoo's NSGA-II over the lists' indices) or random (that
    many distinct grid points drawn uniformly); ``evaluations`` is the number of distinct
    design points mapped, ``seed`` makes the search repeatable, ``population`` is
    NSGA-II's, ``reference`` (one value per objective, in its units) is the point the
    front's hypervolume is measured against."""
    if search is None:
        return {}
    if not isinstance(search, dict):
        raise SweepError("'search' must be a mapping", where=shown, hint="e.g. {method: nsga2}")
    unknown = sorted(set(search) - set(SEARCH_KEYS))
    if unknown:
        raise SweepError(
            f"unknown search key(s) {', '.join(unknown)}",
            where=shown,
            hint="allowed: " + ", ".join(SEARCH_KEYS),
        )
    method = search.get("method", "grid")
    if method not in SEARCH_METHODS:
        raise SweepError(
            f"unknown search method {method!r}",
            where=shown,
            hint="use " + ", ".join(SEARCH_METHODS),
        )
    checked: dict[str, Any] = {"method": method}
    if method != "grid":
        evaluations = search.get("evaluations")
        if not isinstance(evaluations, int) or evaluations < 1:
            raise SweepError(
                f"search method {method} needs 'evaluations', a positive integer",
                where=shown,
                hint="the number of design points to map, e.g. evaluations: 40",
            )
        checked["evaluations"] = evaluations
        checked["seed"] = int(search.get("seed", 0))
    if method == "nsga2":
        population = search.get("population", 10)
        if not isinstance(population, int) or population < 2:
            raise SweepError(
                "search 'population' must be an integer >= 2", where=shown, hint="e.g. 10"
            )
        checked["population"] = population
    reference = search.get("reference")
    if reference is not None:
        if not isinstance(reference, dict) or sorted(reference) != sorted(objectives):
            raise SweepError(
                "search 'reference' must give one value per objective",
                where=shown,
                hint="e.g. reference: {energy: 2.0e10, area: 60}  (pJ, mm^2)",
            )
        checked["reference"] = {o: float(reference[o]) for o in objectives}
    return checked


# --- one design point ----------------------------------------------------------------


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to evaluate one design point (picklable, also for Ray)."""

    index: int
    point_id: str
    params: dict[str, Any]
    yaml_text: str  # the instance's rendered target
    target_name: str
    networks: dict[str, Any]  # name -> lowered joule.ir.network.Network
    mapper: dict[str, Any]
    cache_path: str


def evaluate_point(task: PointTask) -> dict[str, Any]:
    """Map every network on the design; never raises for a bad design (the reason is kept)."""
    from joule import compile_model
    from joule.cache import ResultCache
    from joule.targets.schema import build_target
    from joule.targets.yaml_doc import parse_yaml

    start = time.perf_counter()
    digest = hashlib.sha256(task.yaml_text.encode()).hexdigest()
    record: dict[str, Any] = {"networks": {}}
    cache = ResultCache(task.cache_path)
    try:
        target = build_target(
            parse_yaml(task.yaml_text, task.target_name),
            source_file=task.target_name,
            content_hash=digest,
        )
        levels: dict[str, float] = {}
        for name, network in task.networks.items():
            with contextlib.redirect_stderr(io.StringIO()):  # the per-layer bar is the sweep's
                schedule = compile_model(
                    network,
                    target,
                    objective=task.mapper.get("objective", "energy"),
                    dataflow=task.mapper.get("dataflow", "free"),
                    mapper=task.mapper.get("mapper", "cpsat"),
                    time_limit=float(task.mapper.get("time_limit", 2.0)),
                    samples=int(task.mapper.get("samples", 10000)),
                    workers=1,
                    cache=cache,
                )
            layers = []
            for layer in schedule.layers:
                for level, pj in layer.cost.level_energy_pj().items():
                    levels[level] = levels.get(level, 0.0) + pj
                levels["MAC"] = levels.get("MAC", 0.0) + layer.cost.mac_energy_pj
                layers.append(
                    {
                        "name": layer.nest.name,
                        "status": layer.solver.get("status"),
                        "gap": layer.solver.get("gap"),
                        "energy_pj": layer.cost.energy_pj,
                        "cycles": layer.cost.cycles,
                        "bound_pj": layer.energy_bound_pj,
                        "shared_with": layer.shared_with,
                    }
                )
            totals = schedule.totals()
            record["networks"][name] = {
                "energy_pj": totals["energy_pj"],
                "cycles": totals["cycles"],
                "macs": totals["macs"],
                "lower_bound_pj": totals["lower_bound_pj"],
                "layers": layers,
            }
        record["level_energy_pj"] = levels
        record["status"] = "ok"
        record["reason"] = None
    except JouleError as err:
        record.update(status="failed", reason=_one_line(err.message()))
    except Exception as err:  # a bad design must never end the sweep
        where = traceback.format_exc(limit=3).splitlines()[-3].strip()
        record.update(status="failed", reason=f"{type(err).__name__}: {err} ({where})")
    finally:
        cache.close()
    # fresh solves vs cache hits: bookkeeping of this run, like time_s (see strip_times)
    record["cache"] = {"hits": cache.hits, "solved": cache.stored}
    record["time_s"] = time.perf_counter() - start
    return record


# --- the sweep -----------------------------------------------------------------------


@dataclass
class SweepResult:
    points: list[dict[str, Any]]
    front: list[int]  # indices of the Pareto-optimal points
    solved_now: int
    reused: int
    wall_s: float
    out: Path
    pruned: int = 0  # points skipped by their bounds (spec.prune)
    pruned_layer_solves: int = 0  # the distinct-layer solves that saved
    search: dict[str, Any] | None = None  # what a search (not grid) did, and its hypervolume


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int = 2,
    ray: bool = False,
    ray_address: str | None = None,
    progress_stream: Any = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    from joule.hardware.template import load_template

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    state = _SweepState(
        spec, out, load_template(spec.template), progress_stream=progress_stream, on_point=on_point
    )
    method = spec.search.get("method", "grid")
    search_summary: dict[str, Any] | None = None
    try:
        backend = _RayBackend(ray_address) if ray else _PoolBackend(workers)
        with backend:
            if method == "grid":
                tasks = [t for t in (state.add(p) for p in spec.points()) if t is not None]
                state.start_progress(len(tasks), f"sweep: {len(tasks)} design points")
                state.run(tasks, backend)
            else:
                from joule.hardware.search import run_search

                search_summary = run_search(spec, state, backend)
    finally:
        state.close()
    records = state.records
    for rec in records:
        _summarise(rec)
        _check_constraints(rec, spec.constraints)
    points = records
    front = pareto_front(points, spec.objectives)
    for p in points:
        p["pareto"] = p["index"] in front
    pruned = [p for p in points if p["status"] == "pruned"]
    if search_summary is not None and spec.search.get("reference"):
        from joule.hardware.search import hypervolume

        search_summary["hypervolume"] = hypervolume(
            [p for p in points if p["pareto"]], spec.objectives, spec.search["reference"]
        )
    result = SweepResult(
        points,
        front,
        state.submitted - len(pruned),
        sum(1 for p in points if p.get("reused")),
        time.perf_counter() - start,
        out,
        pruned=len(pruned),
        pruned_layer_solves=sum(state.bounds[p["index"]]["distinct_layers"] for p in pruned),
        search=search_summary,
    )
    from joule.hardware.sweep_report import write_outputs

    write_outputs(spec, result)
    return result


class _SweepState:
    """The records of one sweep, in the order their points were added (grid order, or the
    order a search proposed them), the resume log, and the dispatch of their tasks."""

    def __init__(
        self,
        spec: SweepSpec,
        out: Path,
        template: Any,
        *,
        progress_stream: Any = None,
        on_point: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.spec = spec
        self.out = out
        self.template = template
        self.networks = {name: _lower(name) for name in spec.networks}
        self.mapper = dict(spec.mapper)
        self.done = _read_log(out / POINTS_LOG)
        self.records: list[dict[str, Any]] = []
        self.bounds: dict[int, dict[str, float]] = {}
        self.submitted = 0  # tasks handed to run() (pruned ones included)
        self.progress_stream = progress_stream
        self.on_point = on_point
        self.progress: Progress | None = None
        self.log = (out / POINTS_LOG).open("a", encoding="utf-8")

    def start_progress(self, total: int, label: str) -> None:
        self.progress = Progress(total, label, stream=self.progress_stream)

    def close(self) -> None:
        self.log.close()

    def add(self, params: dict[str, Any], **extra: Any) -> PointTask | None:
        """Record the point ``params``; its task when it must be mapped, else None (invalid,
        over the area limit, finished in an earlier run, or over a limit by its bounds)."""
        spec = self.spec
        index = len(self.records)
        base: dict[str, Any] = {"index": index, "params": params, **extra}
        try:
            instance = self.template.instantiate(params)
        except JouleError as err:
            self.records.append(
                {
                    **base,
                    "id": _point_id(params, "", spec),
                    "status": "failed",
                    "reason": f"invalid target: {_one_line(err.message())}",
                    "networks": {},
                }
            )
            return None
        point_id = _point_id(params, instance.target.content_hash, spec)
        base.update(
            id=point_id,
            target=instance.target.name,
            target_hash=instance.target.content_hash,
            area_mm2=instance.area_mm2,
            area_um2={a.component: a.um2_total for a in instance.area},
            pes=instance.target.pes,
        )
        limit = spec.constraints.get("area_mm2")
        if limit is not None and instance.area_mm2 > limit:
            self.records.append(
                {
                    **base,
                    "status": "infeasible",
                    "networks": {},
                    "reason": f"area {instance.area_mm2:.3f} mm^2 > limit {limit:g} mm^2 "
                    "(not mapped)",
                }
            )
            return None
        if point_id in self.done:
            rec = {**base, **_outcome(self.done[point_id]), "reused": True}
            _summarise(rec)  # its totals now: a reused point prunes like a fresh one
            self.records.append(rec)
            return None
        if spec.prune:
            self.bounds[index] = _lower_bounds(self.networks, instance.target, instance.area_mm2)
            base["bound"] = self.bounds[index]
            over = _over_limit(self.bounds[index], spec.constraints)
            if over:
                self.records.append(
                    {**base, "status": "infeasible", "networks": {}, "reason": over}
                )
                return None
        self.records.append(base)  # the outcome is filled in when the task finishes
        return PointTask(
            index,
            point_id,
            params,
            instance.yaml_text,
            instance.target.name,
            self.networks,
            self.mapper,
            str(self.out / CACHE_FILE),
        )

    def run(self, tasks: list[PointTask], backend: Any) -> None:
        """Map ``tasks`` on ``backend``; their records are complete (summarised, constraints
        checked) when this returns, whatever order the tasks finished in."""
        spec = self.spec
        self.submitted += len(tasks)
        if spec.prune:  # the most promising first, so the front forms early and prunes more
            tasks = sorted(tasks, key=lambda t: (self.bounds[t.index]["energy_pj"], t.index))
        capacity = backend.capacity if spec.prune else len(tasks)
        _dispatch(tasks, backend, capacity, self._finished, self._skip)

    def settle(self, indices: list[int]) -> None:
        for index in indices:
            _summarise(self.records[index])
            _check_constraints(self.records[index], self.spec.constraints)

    def _finished(self, index: int, outcome: dict[str, Any]) -> None:
        rec = self.records[index]
        rec.update(_outcome(outcome))
        _summarise(rec)
        self.log.write(json.dumps({"id": rec["id"], **_outcome(outcome)}) + "\n")
        self.log.flush()
        if self.progress is not None:
            self.progress.advance(rec.get("target", ""))
        if self.on_point is not None:
            self.on_point(rec)

    def _skip(self, task: PointTask) -> str | None:
        """Why ``task`` cannot reach the front, judged by its bounds against finished points."""
        if not self.spec.prune:
            return None
        rec = self.records[task.index]
        reason = _dominated_by(self.bounds[task.index], self.records, self.spec)
        if reason is None:
            return None
        rec.update(status="pruned", reason=reason, networks={})
        if self.progress is not None:
            self.progress.advance(rec.get("target", ""))
        return reason


def _one_line(text: str) -> str:
    """A JouleError's what/where/what-to-do lines as one CSV-friendly line."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _outcome(data: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "reason", "networks", "level_energy_pj", "time_s", "cache")
    return {k: data[k] for k in keys if k in data}


def _summarise(rec: dict[str, Any]) -> None:
    nets = rec.get("networks") or {}
    if rec.get("status") != "ok" or not nets:
        return
    rec["energy_pj"] = sum(n["energy_pj"] for n in nets.values())
    rec["cycles"] = sum(n["cycles"] for n in nets.values())
    rec["macs"] = sum(n["macs"] for n in nets.values())
    rec["edp"] = rec["energy_pj"] * rec["cycles"]
    rec["pj_per_mac"] = rec["energy_pj"] / rec["macs"] if rec["macs"] else None
    layers = [lay for n in nets.values() for lay in n["layers"] if lay["shared_with"] is None]
    gaps = [lay["gap"] for lay in layers if lay["gap"] is not None]
    rec["solved_layers"] = len(layers)
    rec["optimal_layers"] = sum(1 for lay in layers if lay["status"] == "OPTIMAL")
    rec["max_gap"] = max(gaps) if gaps else None
    rec["lower_bound_pj"] = sum(n["lower_bound_pj"] for n in nets.values())


def _check_constraints(rec: dict[str, Any], constraints: dict[str, float]) -> None:
    if rec.get("status") != "ok":
        return
    for key, limit in constraints.items():
        value = rec.get(key)
        if value is not None and value > limit:
            rec["status"] = "infeasible"
            rec["reason"] = f"{key} {value:.6g} > limit {limit:g}"
            return


def pareto_front(points: list[dict[str, Any]], objectives: list[str]) -> list[int]:
    """Indices of the feasible points no other feasible point dominates (all minimised)."""
    keys = [OBJECTIVE_KEYS[o] for o in objectives]
    ok = [p for p in points if p.get("status") == "ok" and all(p.get(k) is not None for k in keys)]
    vec = {p["index"]: tuple(float(p[k]) for k in keys) for p in ok}
    front = []
    for i, v in vec.items():
        dominated = any(
            all(a <= b for a, b in zip(w, v, strict=True)) and w != v
            for j, w in vec.items()
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front)


def _point_id(params: dict[str, Any], target_hash: str, spec: SweepSpec) -> str:
    key = json.dumps(
        {"params": params, "target": target_hash, "networks": spec.networks, "mapper": spec.mapper},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    """Finished points of an earlier run; a line cut by a kill is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "id" in data and "status" in data:
            done[data["id"]] = data
    return done


def _lower(name: str) -> Any:
    from joule.lower import lower_model

    return lower_model(name)


RAY_MAX_RETRIES = 3  # a worker that dies has its task run again, this many times


def _dispatch(
    tasks: list[PointTask],
    backend: Any,
    capacity: int,
    finished: Callable[[int, dict[str, Any]], None],
    skip: Callable[[PointTask], str | None],
) -> None:
    """Keep up to ``capacity`` points in flight; ``skip`` is asked right before each submit,
    so pruning sees every point that finished before it."""
    queue = list(tasks)
    inflight = 0
    while queue or inflight:
        while queue and inflight < max(1, capacity):
            task = queue.pop(0)
            if skip(task) is None:
                backend.submit(task)
                inflight += 1
        if inflight:
            index, outcome = backend.wait_one()
            inflight -= 1
            finished(index, outcome)


class _PoolBackend:
    """The local process pool (the default)."""

    def __init__(self, workers: int) -> None:
        self.capacity = max(1, workers)
        self.pool: cf.ProcessPoolExecutor | None = None
        self.futures: dict[cf.Future, int] = {}

    def __enter__(self) -> _PoolBackend:
        return self

    def submit(self, task: PointTask) -> None:
        if self.pool is None:
            self.pool = cf.ProcessPoolExecutor(max_workers=self.capacity)
        self.futures[self.pool.submit(evaluate_point, task)] = task.index

    def wait_one(self) -> tuple[int, dict[str, Any]]:
        done, _ = cf.wait(self.futures, return_when=cf.FIRST_COMPLETED)
        fut = min(done, key=lambda f: self.futures[f])
        index = self.futures.pop(fut)
        try:
            return index, fut.result()
        except Exception as err:  # the worker process died (killed, out of memory)
            return index, {"status": "failed", "reason": f"worker died: {err!r}", "networks": {}}

    def __exit__(self, kind: object, *rest: object) -> None:
        if self.pool is None:
            return
        if kind is not None:  # interrupted: stop the workers now, a solve may run for minutes
            for fut in self.futures:
                fut.cancel()
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.kill()
        self.pool.shutdown(wait=True)


class _RayBackend:
    """Design points as Ray tasks: a local instance (``ray.init()``) or the cluster at
    ``address``; a task whose worker dies is retried ``RAY_MAX_RETRIES`` times."""

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise SweepError(
                "--ray needs the 'ray' package",
                where="joule sweep --ray",
                hint="pip install 'joule[sweep]' (or ray==2.60.0)",
            ) from None
        self.ray = ray
        self.address = address
        self.started_here = False
        self.refs: dict[Any, int] = {}
        self.capacity = 1

    def __enter__(self) -> _RayBackend:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self.started_here = True
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.remote = ray.remote(max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(
            evaluate_point
        )
        return self

    def submit(self, task: PointTask) -> None:
        self.refs[self.remote.remote(task)] = task.index

    def wait_one(self) -> tuple[int, dict[str, Any]]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        index = self.refs.pop(ready[0])
        try:
            return index, self.ray.get(ready[0])
        except Exception as err:  # retries exhausted (the worker kept dying)
            reason = f"ray task failed after {RAY_MAX_RETRIES} retries: {err!r}"
            return index, {"status": "failed", "networks": {}, "reason": reason}

    def __exit__(self, *exc: object) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        if self.started_here:
            self.ray.shutdown()


# --- pruning by bounds -------------------------------------------------------------------


def _lower_bounds(networks: dict[str, Any], target: Any, area_mm2: float) -> dict[str, float]:
    """What no mapping of the networks on ``target`` can beat: the cost model's compulsory
    energy per layer (every distinct word through every keeper, every MAC's operand
    reads and updates in the innermost keepers, the MACs; docs/cost-model.md "Lower
    bounds") and one cycle per MAC per PE. Area is exact."""
    from joule.cost import lower_bound_pj

    energy = 0.0
    cycles = 0
    distinct = 0
    for network in networks.values():
        seen = set()
        for nest in network.loopnests:
            energy += lower_bound_pj(nest, target)
            cycles += math.ceil(nest.macs / target.pes)
            seen.add(nest.signature())
        distinct += len(seen)
    return {
        "energy_pj": energy,
        "cycles": float(cycles),
        "edp": energy * cycles,
        "area_mm2": area_mm2,
        "distinct_layers": distinct,
    }


def _over_limit(bound: dict[str, float], constraints: dict[str, float]) -> str | None:
    for key in ("energy_pj", "cycles"):
        limit = constraints.get(key)
        if limit is not None and bound[key] > limit:
            return f"lower bound {key} {bound[key]:.6g} > limit {limit:g} (not mapped)"
    return None


def _dominated_by(
    bound: dict[str, float], records: list[dict[str, Any] | None], spec: SweepSpec
) -> str | None:
    """A finished feasible point at or below this point's bounds in every objective and
    strictly below in one dominates every mapping this point could have: skip it."""
    keys = [OBJECTIVE_KEYS[o] for o in spec.objectives]
    for rec in records:
        if rec is None or rec.get("status") != "ok" or "energy_pj" not in rec:
            continue
        if any(rec.get(k) is not None and rec[k] > v for k, v in spec.constraints.items()):
            continue
        mine = [bound[k] for k in keys]
        theirs = [float(rec[k]) for k in keys]
        if all(t <= m for t, m in zip(theirs, mine, strict=True)) and theirs != mine:
            shown = ", ".join(
                f"{o} bound {m:.4g} >= #{rec['index']}'s {t:.4g}"
                for o, m, t in zip(spec.objectives, mine, theirs, strict=True)
            )
            return f"dominated by #{rec['index']} ({shown})"
    return None


def strip_times(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points without wall-clock and resume bookkeeping: what must match across runs."""

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in TIME_FIELDS}
        if isinstance(x, list):
            return [clean(v) for v in x]
        if isinstance(x, float) and math.isnan(x):
            return None
        return x

    return [clean(p) for p in points]


__all__ = [
    "OBJECTIVES",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "evaluate_point",
    "load_sweep",
    "pareto_front",
    "run_sweep",
    "strip_times",
]
