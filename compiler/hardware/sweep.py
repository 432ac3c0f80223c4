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
SWEEP_KEYS = ("template", "parameters", "fixed", "networks", "objectives", "constraints", "mapper")
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
    return SweepSpec(
        template=str(data["template"]),
        grid=grid,
        fixed=dict(data.get("fixed") or {}),
        networks=[str(n) for n in networks],
        objectives=list(objectives),
        constraints={k: float(v) for k, v in constraints.items()},
        mapper=dict(mapper),
        source=str(Path(path).resolve()),
    )


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
    template = load_template(spec.template)
    networks = {name: _lower(name) for name in spec.networks}
    mapper = dict(spec.mapper)
    done = _read_log(out / POINTS_LOG)
    records: list[dict[str, Any] | None] = []
    tasks: list[PointTask] = []
    for index, params in enumerate(spec.points()):
        base = {"index": index, "params": params}
        try:
            instance = template.instantiate(params)
        except JouleError as err:
            records.append(
                {
                    **base,
                    "id": _point_id(params, "", spec),
                    "status": "failed",
                    "reason": f"invalid target: {_one_line(err.message())}",
                    "networks": {},
                }
            )
            continue
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
            records.append(
                {
                    **base,
                    "status": "infeasible",
                    "networks": {},
                    "reason": f"area {instance.area_mm2:.3f} mm^2 > limit {limit:g} mm^2 "
                    "(not mapped)",
                }
            )
            continue
        if point_id in done:
            records.append({**base, **_outcome(done[point_id]), "reused": True})
            continue
        records.append(base)  # the outcome is filled in when the task finishes
        tasks.append(
            PointTask(
                index,
                point_id,
                params,
                instance.yaml_text,
                instance.target.name,
                networks,
                mapper,
                str(out / CACHE_FILE),
            )
        )
    pending = {t.index: t for t in tasks}
    progress = Progress(len(tasks), f"sweep: {len(tasks)} design points", stream=progress_stream)
    log = (out / POINTS_LOG).open("a", encoding="utf-8")

    def finished(index: int, outcome: dict[str, Any]) -> None:
        rec = records[index]
        assert rec is not None
        rec.update(_outcome(outcome))
        _summarise(rec)
        log.write(json.dumps({"id": rec["id"], **_outcome(outcome)}) + "\n")
        log.flush()
        progress.advance(rec.get("target", ""))
        if on_point is not None:
            on_point(rec)

    try:
        if ray:
            _run_ray(tasks, finished, ray_address)
        else:
            _run_pool(tasks, finished, workers)
    finally:
        log.close()
    for rec in records:
        assert rec is not None
        _summarise(rec)
        _check_constraints(rec, spec.constraints)
    points = [r for r in records if r is not None]
    front = pareto_front(points, spec.objectives)
    for p in points:
        p["pareto"] = p["index"] in front
    result = SweepResult(
        points,
        front,
        len(pending),
        sum(1 for p in points if p.get("reused")),
        time.perf_counter() - start,
        out,
    )
    from joule.hardware.sweep_report import write_outputs

    write_outputs(spec, result)
    return result


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


def _run_pool(tasks: list[PointTask], finished: Callable, workers: int) -> None:
    if not tasks:
        return
    with cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        futures = {pool.submit(evaluate_point, t): t.index for t in tasks}
        try:
            for fut in cf.as_completed(futures):
                try:
                    outcome = fut.result()
                except Exception as err:  # the worker process died (killed, out of memory)
                    outcome = {
                        "status": "failed",
                        "reason": f"worker died: {err!r}",
                        "networks": {},
                    }
                finished(futures[fut], outcome)
        except BaseException:
            for fut in futures:
                fut.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
            raise


RAY_MAX_RETRIES = 3  # a worker that dies has its task run again, this many times


def _run_ray(tasks: list[PointTask], finished: Callable, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise SweepError(
            "--ray needs the 'ray' package",
            where="joule sweep --ray",
            hint="pip install 'joule[sweep]' (or ray==2.60.0)",
        ) from None
    if not tasks:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    try:
        remote = ray.remote(max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(evaluate_point)
        refs = {remote.remote(t): t.index for t in tasks}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            ref = ready[0]
            try:
                outcome = ray.get(ref)
            except Exception as err:  # retries exhausted (worker kept dying)
                outcome = {
                    "status": "failed",
                    "networks": {},
                    "reason": f"ray task failed after {RAY_MAX_RETRIES} retries: {err!r}",
                }
            finished(refs[ref], outcome)
    finally:
        if started_here:
            ray.shutdown()


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
