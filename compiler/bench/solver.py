"""CP-SAT against the exhaustive and random mappers: solution quality and time to solution.

* Small layers (mapspaces of 27 k - 130 k points): the exhaustive mapper gives
  the true optimum over the space; CP-SAT (several budgets) and random search
  (1,000 and 10,000 valid samples) are scored against it.
* Real layers (AlexNet CONV1-5 and three ResNet-18 convolutions on
  ``eyeriss``): too large to enumerate; CP-SAT at several budgets against
  random-10000, relative to the best mapping any of them found.

Objective: energy. Every number is the cost model's score of the returned
mapping; times are wall seconds of one process (model building included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joule.bench.common import BenchConfig, Job, machine, md_table, pick, solve_all, write_suite
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.outcome import SearchOptions

CPSAT_LIMITS_S = (0.5, 2.0)
RANDOM_SAMPLES = (1_000, 10_000)


def small_cases() -> dict[str, tuple[LoopNest, str]]:
    """Layers whose whole mapspace the exhaustive mapper enumerates in about a minute."""
    mm = matmul("matmul_8x8x16", m=8, n=8, k=16)
    pw = conv2d("pointwise_16x16_7x7", k=16, c=16, p=7, q=7, r=1, s=1)
    c3 = conv2d("conv3x3_2x2_4x4", k=2, c=2, p=4, q=4, r=3, s=3)
    return {
        "matmul_8x8x16@eyeriss": (mm, "eyeriss"),
        "pointwise@eyeriss": (pw, "eyeriss"),
        "matmul_8x8x16@shidiannao-os": (mm, "shidiannao-os"),
        "pointwise@shidiannao-os": (pw, "shidiannao-os"),
        "conv3x3@eyeriss-isca16": (c3, "eyeriss-isca16"),
    }


def real_cases() -> dict[str, tuple[LoopNest, str]]:
    """AlexNet CONV1-5 (the Timeloop reference shapes, batch 1) and ResNet-18 convs on eyeriss."""
    layers = {
        "alexnet_conv1": conv2d("alexnet_conv1", k=96, c=3, p=55, q=55, r=11, s=11, stride=4),
        "alexnet_conv2": conv2d("alexnet_conv2", k=256, c=96, p=27, q=27, r=5, s=5, pad=2),
        "alexnet_conv3": conv2d("alexnet_conv3", k=384, c=256, p=13, q=13, r=3, s=3, pad=1),
        "alexnet_conv4": conv2d("alexnet_conv4", k=384, c=384, p=13, q=13, r=3, s=3, pad=1),
        "alexnet_conv5": conv2d("alexnet_conv5", k=256, c=384, p=13, q=13, r=3, s=3, pad=1),
        "resnet18_conv1": conv2d(
            "resnet18_conv1", k=64, c=3, p=112, q=112, r=7, s=7, stride=2, pad=3
        ),
        "resnet18_layer2": conv2d("resnet18_layer2", k=128, c=128, p=28, q=28, r=3, s=3, pad=1),
        "resnet18_layer4": conv2d("resnet18_layer4", k=512, c=512, p=7, q=7, r=3, s=3, pad=1),
    }
    return {f"{name}@eyeriss": (nest, "eyeriss") for name, nest in layers.items()}


def _methods(exhaustive: bool, limits: tuple[float, ...], samples: tuple[int, ...]) -> list:
    out: list[tuple[str, str, SearchOptions]] = []
    if exhaustive:
        out.append(("exhaustive", "exhaustive", SearchOptions()))
    out += [(f"cpsat-{t:g}s", "cpsat", SearchOptions(time_limit_s=t)) for t in limits]
    out += [(f"random-{n}", "random", SearchOptions(samples=n)) for n in samples]
    return out


def run(out: Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """Run every method on every case; write solver.json/.md and the quality-vs-time plot."""
    config = config or BenchConfig()
    from joule.targets import load_target

    limits = (config.time_limit_s,) if config.time_limit_s is not None else CPSAT_LIMITS_S
    samples = (config.samples,) if config.samples is not None else RANDOM_SAMPLES
    small, real = small_cases(), real_cases()
    cases = {
        **{k: (*v, True) for k, v in small.items()},
        **{k: (*v, False) for k, v in real.items()},
    }
    chosen = pick(config.layers, tuple(cases), "case")
    jobs = []
    for case in chosen:
        nest, tname, exhaustive = cases[case]
        target = load_target(tname)
        for method, mapper, options in _methods(exhaustive, limits, samples):
            jobs.append(Job((case, method), nest, target, "free", mapper, options))
    solved = solve_all(jobs, config.workers, f"solver suite: {len(jobs)} runs")
    rows = []
    for s in solved:
        case, method = s.job.key
        if s.result is None:
            rows.append(
                {
                    "case": case,
                    "kind": "small" if cases[case][2] else "real",
                    "method": method,
                    "error": s.error,
                    "wall_s": s.wall_s,
                }
            )
            continue
        rows.append(
            {
                "case": case,
                "kind": "small" if cases[case][2] else "real",
                "method": method,
                "energy_pj": s.result.cost.energy_pj,
                "status": s.result.report.status,
                "gap": s.result.report.gap,
                "bound_pj": s.result.report.bound,
                "evaluated": s.result.report.evaluated,
                "wall_s": s.wall_s,
            }
        )
    for case in chosen:
        mine = [r for r in rows if r["case"] == case and "error" not in r]
        exact = [r for r in mine if r["method"] == "exhaustive"]
        ref = exact[0]["energy_pj"] if exact else min(r["energy_pj"] for r in mine)
        for r in mine:
            r["reference"] = "exhaustive optimum" if exact else "best found"
            r["quality"] = r["energy_pj"] / ref
    data = {
        "suite": "solver",
        "objective": "energy",
        "cpsat_limits_s": list(limits),
        "random_samples": list(samples),
        "workers": config.workers,
        "machine": machine(),
        "results": rows,
        "summary": _summary(rows),
    }
    from joule.bench.suite_plots import scatter_series

    series: dict[str, list[tuple[float, float]]] = {}
    for kind in ("small", "real"):
        for method in dict.fromkeys(r["method"] for r in rows if r["kind"] == kind):
            pts = [
                r for r in rows if r["kind"] == kind and r["method"] == method and "error" not in r
            ]
            if method == "exhaustive" or not pts:
                continue
            family = method.split("-")[0]
            series.setdefault(f"{family} ({kind} layers)", []).append(
                (_mean([p["wall_s"] for p in pts]), _geomean([p["quality"] for p in pts]))
            )
    plot = scatter_series(
        series,
        xlabel="mean wall seconds per layer",
        ylabel="energy / reference (geometric mean)",
        title="Solution quality vs time (small: vs exhaustive optimum; real: vs best found)",
    )
    write_suite(out, "solver", data, markdown(data), {"solver_quality_time.png": plot})
    return data


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _geomean(xs: list[float]) -> float:
    import math

    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("small", "real"):
        for method in dict.fromkeys(r["method"] for r in rows if r["kind"] == kind):
            pts = [
                r for r in rows if r["kind"] == kind and r["method"] == method and "error" not in r
            ]
            crashed = sum("error" in r for r in rows if r["kind"] == kind and r["method"] == method)
            if not pts:
                continue
            out.setdefault(kind, {})[method] = {
                "geomean_quality": _geomean([p["quality"] for p in pts]),
                "worst_quality": max(p["quality"] for p in pts),
                "at_reference": sum(p["quality"] <= 1 + 1e-9 for p in pts),
                "cases": len(pts),
                "mean_wall_s": _mean([p["wall_s"] for p in pts]),
                "crashed": crashed,
            }
    return out


def markdown(data: dict[str, Any]) -> str:
    rows = data["results"]
    parts = [
        "# Solver: CP-SAT vs exhaustive and random mappers",
        "",
        "Objective energy. `quality` = energy / reference (1.000 = as good as the reference): "
        "the exhaustive optimum on the small layers, the best mapping any method found on the "
        "real ones. CP-SAT budgets are deterministic seconds; `wall s` is one process's wall "
        "time including building the model. Random search counts valid samples.",
        "",
        "## Summary",
        "",
    ]
    summary_rows = []
    for kind, methods in data["summary"].items():
        for method, s in methods.items():
            summary_rows.append(
                [
                    kind,
                    method,
                    f"{s['geomean_quality']:.3f}",
                    f"{s['worst_quality']:.3f}",
                    f"{s['at_reference']}/{s['cases']}",
                    f"{s['mean_wall_s']:.1f}",
                    s["crashed"],
                ]
            )
    parts.append(
        md_table(
            [
                "layers",
                "method",
                "geomean quality",
                "worst",
                "at reference",
                "mean wall s",
                "crashed",
            ],
            summary_rows,
        )
    )
    parts += ["", "## Per layer", ""]
    parts.append(
        md_table(
            ["case", "method", "energy pJ", "quality", "status", "gap", "evaluated", "wall s"],
            [
                [
                    r["case"],
                    r["method"],
                    f"{r['energy_pj']:.5g}",
                    f"{r['quality']:.3f}",
                    r["status"],
                    f"{r['gap']:.2f}",
                    r["evaluated"],
                    f"{r['wall_s']:.1f}",
                ]
                for r in rows
            ],
        )
    )
    parts += ["", "![quality vs time](solver_quality_time.png)"]
    return "\n".join(parts)
