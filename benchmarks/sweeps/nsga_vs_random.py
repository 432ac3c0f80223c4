"""NSGA-II vs uniform random sampling at equal evaluations, compared by hypervolume.

Run: ``.venv/bin/python benchmarks/sweeps/nsga_vs_random.py [--evaluations 24]
[--population 8] [--seeds 0] [--time-limit 0.1] [--workers 2] [--out /tmp/nsga_vs_random]``

The design space is benchmarks/sweeps/nsga_vs_random.yaml (the eyeriss template, 640
grid points); each method maps ``--evaluations`` distinct design points of it with the
full mapper (``joule sweep``'s machinery, search method ``nsga2`` or ``random``, the
same seed). The hypervolume is pymoo's HV indicator on the (energy, area) front of the
points each method mapped, against one fixed reference point for every run: 1.1 x the
worst energy and the worst area over all points mapped by any run (stated in the
output). Writes benchmarks/results/nsga_vs_random.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "benchmarks" / "sweeps" / "nsga_vs_random.yaml"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> int:
    from joule.hardware.search import hypervolume
    from joule.hardware.sweep import load_sweep, pareto_front, run_sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=24)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-limit", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="/tmp/nsga_vs_random")
    args = parser.parse_args()

    base = load_sweep(SWEEP)
    base = replace(base, mapper={**base.mapper, "time_limit": args.time_limit})
    objectives = base.objectives
    runs = []
    for seed in args.seeds:
        for method in ("nsga2", "random"):
            search = {"method": method, "evaluations": args.evaluations, "seed": seed}
            if method == "nsga2":
                search["population"] = args.population
            spec = replace(base, search=search)
            out = Path(args.out) / f"{method}-seed{seed}"
            start = time.perf_counter()
            result = run_sweep(spec, out, workers=args.workers)
            wall = time.perf_counter() - start
            mapped = [p for p in result.points if p["status"] == "ok"]
            print(
                f"{method} seed {seed}: {len(result.points)} points "
                f"({len(mapped)} mapped), front {len(result.front)}, {wall:.0f} s",
                flush=True,
            )
            runs.append(
                {
                    "method": method,
                    "seed": seed,
                    "search": result.search,
                    "wall_s": wall,
                    "mapped_now": result.solved_now,
                    "points": result.points,
                    "front": result.front,
                }
            )
    everything = [p for r in runs for p in r["points"] if p["status"] == "ok"]
    reference = {
        "energy": 1.1 * max(p["energy_pj"] for p in everything),
        "area": 1.1 * max(p["area_mm2"] for p in everything),
    }
    reference = {o: reference[o] for o in objectives}
    union_front = [everything[i] for i in _front_positions(everything, objectives, pareto_front)]
    best = hypervolume(union_front, objectives, reference)
    rows = []
    for r in runs:
        front = [p for p in r["points"] if p["index"] in r["front"]]
        hv = hypervolume(front, objectives, reference)
        rows.append(
            {
                "method": r["method"],
                "seed": r["seed"],
                "evaluations": r["search"]["evaluations"],
                "generations": r["search"]["generations"],
                "front_size": len(r["front"]),
                "hypervolume": hv,
                "share_of_union_hv": hv / best if best else None,
                "wall_s": r["wall_s"],
                "mapped_now": r["mapped_now"],
                "front": [
                    {"params": p["params"], "energy_pj": p["energy_pj"], "area_mm2": p["area_mm2"]}
                    for p in front
                ],
            }
        )
    summary = {
        "sweep_file": str(SWEEP.relative_to(ROOT)),
        "networks": base.networks,
        "objectives": objectives,
        "grid_points": len(base.points()),
        "mapper": {**base.mapper},
        "reference_point": reference,
        "reference_rule": "1.1 x the worst energy and the worst area over every point "
        "mapped by any run; objectives divided by it, so HV is a share of [0, ref]",
        "union_front_hypervolume": best,
        "runs": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nsga_vs_random.json").write_text(json.dumps(summary, indent=1) + "\n")
    (RESULTS / "nsga_vs_random.md").write_text(_markdown(summary))
    _plot(runs, RESULTS / "nsga_vs_random.png")
    print(_markdown(summary))
    return 0


def _front_positions(points: list[dict], objectives: list[str], pareto_front) -> list[int]:
    relabelled = [{**p, "index": i} for i, p in enumerate(points)]
    return pareto_front(relabelled, objectives)


def _markdown(summary: dict) -> str:
    ref = ", ".join(
        f"{o} {v:.4g} {'pJ' if o == 'energy' else 'mm^2'}"
        for o, v in summary["reference_point"].items()
    )
    lines = [
        f"NSGA-II vs random sampling on `{summary['sweep_file']}` "
        f"({summary['grid_points']} grid points; networks {', '.join(summary['networks'])}; "
        f"mapper {json.dumps(summary['mapper'])}).",
        "",
        f"Reference point: {ref} ({summary['reference_rule']}). Hypervolume of the union "
        f"of all runs' fronts: {summary['union_front_hypervolume']:.4f}.",
        "",
        "| method | seed | evaluations | generations | front size | hypervolume "
        "| share of union HV | mapped in this run | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['evaluations']} | {r['generations']} "
            f"| {r['front_size']} | {r['hypervolume']:.4f} | {r['share_of_union_hv']:.3f} "
            f"| {r['mapped_now']} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    styles = {"nsga2": ("tab:red", "o"), "random": ("tab:blue", "s")}
    for r in runs:
        color, marker = styles[r["method"]]
        ok = [p for p in r["points"] if p["status"] == "ok"]
        ax.scatter(
            [p["area_mm2"] for p in ok],
            [p["energy_pj"] / 1e6 for p in ok],
            s=12,
            c=color,
            marker=marker,
            alpha=0.35,
        )
        front = sorted((p for p in ok if p["index"] in r["front"]), key=lambda p: p["area_mm2"])
        ax.step(
            [p["area_mm2"] for p in front],
            [p["energy_pj"] / 1e6 for p in front],
            where="post",
            c=color,
            label=f"{r['method']} seed {r['seed']} front",
        )
    ax.set_xlabel("area (mm$^2$)")
    ax.set_ylabel("energy (µJ)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
