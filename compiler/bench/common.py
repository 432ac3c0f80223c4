"""What every suite shares: its options, parallel layer solves, level breakdowns, output files."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joule.cost import CostResult
from joule.defaults import DEFAULT_WORKERS
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.outcome import SearchOptions, SearchResult
from joule.progress import Progress
from joule.report.files import prepare_dir, write_atomic
from joule.targets.spec import Target

REPO = Path(__file__).resolve().parents[2]
BENCH_TARGETS = REPO / "benchmarks" / "study_targets"


@dataclass(frozen=True)
class BenchConfig:
    """Options of one suite run; empty filters and ``None`` mean the suite's defaults."""

    time_limit_s: float | None = None
    workers: int = DEFAULT_WORKERS
    layers: tuple[str, ...] = ()
    dataflows: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    samples: int | None = None


def pick(chosen: Sequence[str], default: Sequence[str], what: str) -> tuple[str, ...]:
    """The ``chosen`` subset of ``default`` (all of it when nothing was chosen)."""
    from joule.errors import JouleError

    if not chosen:
        return tuple(default)
    unknown = [c for c in chosen if c not in default]
    if unknown:
        raise JouleError(
            f"unknown {what}: {', '.join(unknown)}", hint=f"choose among {', '.join(default)}"
        )
    return tuple(c for c in default if c in chosen)


@dataclass(frozen=True)
class Job:
    """One layer to map: the nest, the target, the dataflow and the mapper with its options."""

    key: tuple[str, ...]
    nest: LoopNest
    target: Target
    dataflow: str = "free"
    mapper: str = "cpsat"
    options: SearchOptions = SearchOptions()


@dataclass(frozen=True)
class Solved:
    job: Job
    result: SearchResult | None  # None: the solver process died (``error`` says how)
    wall_s: float
    error: str | None = None


def solve_job(job: Job) -> Solved:
    from joule.passes.dataflow import space_constraints
    from joule.passes.mapper.map_layer import map_layer

    start = time.perf_counter()
    constraints = space_constraints(job.nest, job.target, job.dataflow)
    result = map_layer(job.nest, job.target, constraints, mapper=job.mapper, options=job.options)
    return Solved(job, result, time.perf_counter() - start)


def _isolated(job: Job) -> Solved:
    """Solve ``job`` in its own process, so that a native crash (CP-SAT abort) costs one job."""
    start = time.perf_counter()
    with cf.ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(solve_job, job).result()
        except cf.process.BrokenProcessPool:
            return Solved(job, None, time.perf_counter() - start, "solver process crashed")


def solve_all(jobs: Sequence[Job], workers: int, label: str) -> list[Solved]:
    """Solve ``jobs``, ``workers`` at a time, each in its own process; results in job order."""
    progress = Progress(len(jobs), label)
    workers = max(1, min(workers, len(jobs), os.cpu_count() or 1))
    results: list[Solved | None] = [None] * len(jobs)
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_isolated, job): k for k, job in enumerate(jobs)}
        for fut in cf.as_completed(futures):
            k = futures[fut]
            results[k] = fut.result()
            progress.advance(" ".join(jobs[k].key))
    return results  # type: ignore[return-value]


def level_breakdown_pj(cost: CostResult, target: Target) -> dict[str, float]:
    """Energy by level as the paper splits it: storage levels, the array network, the MACs.

    The cost model charges network hops (and words forwarded between neighbours) to the
    level that sends the data; here they are moved to their own ``array`` entry.
    """
    out: dict[str, float] = {}
    network = 0.0
    for lvl in target.levels:
        hops = sum(cost.network_words.get(lvl.name, {}).values()) * lvl.network.hop_energy_pj
        if lvl.network.links is not None:
            forwarded = sum(cost.link_words.get(lvl.name, {}).values())
            hops += forwarded * lvl.network.links.energy_pj
        network += hops
        out[lvl.name] = sum(cost.energy_breakdown_pj[lvl.name].values()) - hops
    out["array"] = network
    out["MAC"] = cost.mac_energy_pj
    return out


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_suite(
    out: Path, suite: str, data: dict[str, Any], markdown: str, plots: dict[str, bytes]
) -> list[Path]:
    """Write ``SUITE.json``, ``SUITE.md`` and the PNG plots into ``out``; returns the paths."""
    prepare_dir(out)
    paths = [out / f"{suite}.json", out / f"{suite}.md"]
    write_atomic(paths[0], json.dumps(data, indent=1) + "\n")
    write_atomic(paths[1], markdown.rstrip() + "\n")
    for name, png in plots.items():
        path = out / name
        write_atomic(path, png)
        paths.append(path)
    return paths


def machine() -> dict[str, Any]:
    """Where the numbers were measured (wall times depend on it)."""
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
