"""CP-SAT vs Timeloop-like random sampling on whole networks: energy, bound, gap, time.

For every model (the shape-only torchvision exports in ../shared/models when
present, else the bundled ResNet-18 and transformer block) on one target, the
same layers are mapped by ``--mapper cpsat`` (per-layer limit in deterministic
units, roughly seconds) and by ``--mapper random --samples N``, side by side in one run.

Besides the ratio CP-SAT / random it prints bound / random: every layer's
certified energy bound (the optimum where the layer is proven OPTIMAL, else the
best of the proof's, CP-SAT's and passes/bound.py's) summed over the network,
divided by random's total. No mapper can reach a ratio below it.

Writes ``--out``/mapper_networks.md (a summary and one per-layer table per
network: energy, bound, gap, status, time, random's energy) and .json.

    .venv/bin/python benchmarks/bench_mapper_networks.py [--time-limit 10] [--samples 10000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from joule.defaults import DEFAULT_SAMPLES, DEFAULT_WORKERS
from joule.driver import compile_model
from joule.lower import lower_model
from joule.report.files import write_atomic

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def models() -> list[tuple[str, object]]:
    if SHARED.is_dir():
        return [(p.stem, p) for p in sorted(SHARED.glob("*.onnx"))]
    return [("resnet18", "resnet18"), ("transformer", "transformer")]


def run_network(source: object, target: str, time_limit: float, samples: int, workers: int):
    network = lower_model(source)
    start = time.perf_counter()
    exact = compile_model(network, target, time_limit=time_limit, workers=workers, cache=False)
    exact_s = time.perf_counter() - start
    start = time.perf_counter()
    sampled = compile_model(
        network, target, mapper="random", samples=samples, workers=workers, cache=False
    )
    sampled_s = time.perf_counter() - start
    random_energy = {lay.nest.name: lay.cost.energy_pj for lay in sampled.layers}
    layers = [
        {
            "name": lay.nest.name,
            "macs": lay.nest.macs,
            "count": sum(other.nest.signature() == lay.nest.signature() for other in exact.layers),
            "energy_pj": lay.cost.energy_pj,
            "bound_pj": lay.energy_bound_pj,
            "gap": lay.solver["gap"],
            "status": lay.solver["status"],
            "time_s": lay.solver["time_s"],
            "random_pj": random_energy[lay.nest.name],
        }
        for lay in exact.layers
        if lay.shared_with is None
    ]
    totals = exact.totals()
    summary = {
        "layers": len(exact.layers),
        "distinct": len(layers),
        "energy_pj": totals["energy_pj"],
        "bound_pj": totals["lower_bound_pj"],
        "max_gap": max(row["gap"] for row in layers),
        "within_1pct": sum(row["gap"] <= 0.01 for row in layers),
        "optimal": sum(row["status"] == "OPTIMAL" for row in layers),
        "cpsat_s": exact_s,
        "random_pj": sampled.energy_pj,
        "random_s": sampled_s,
    }
    return summary, layers


def markdown(args: argparse.Namespace, results: dict[str, Any]) -> str:
    lines = [
        f"# CP-SAT vs random-{args.samples} on `{args.target}`",
        "",
        f"`python benchmarks/bench_mapper_networks.py --time-limit {args.time_limit:g} "
        f"--samples {args.samples}` ({args.workers} workers). Energies in µJ; the bound is "
        "the sum of every layer's certified energy bound (its optimum where OPTIMAL); "
        "no mapper can go below bound / random.",
        "",
        "| network | layers | CP-SAT µJ | bound µJ | CP-SAT / bound | max layer gap | "
        "gap ≤ 1 % | OPTIMAL | CP-SAT s | random µJ | random s | CP-SAT / random | "
        "bound / random |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (s, _) in results.items():
        lines.append(
            f"| {name} | {s['layers']} ({s['distinct']} distinct) | {s['energy_pj'] / 1e6:.1f} | "
            f"{s['bound_pj'] / 1e6:.1f} | {s['energy_pj'] / s['bound_pj']:.3f} | "
            f"{100 * s['max_gap']:.1f} % | {s['within_1pct']}/{s['distinct']} | "
            f"{s['optimal']}/{s['distinct']} | {s['cpsat_s']:.0f} | {s['random_pj'] / 1e6:.1f} | "
            f"{s['random_s']:.0f} | {s['energy_pj'] / s['random_pj']:.3f} | "
            f"{s['bound_pj'] / s['random_pj']:.3f} |"
        )
    for name, (_, layers) in results.items():
        lines += [
            "",
            f"## {name}",
            "",
            "| layer | × | MACs | CP-SAT pJ/MAC | bound pJ/MAC | gap | status | time s | "
            "random pJ/MAC |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in layers:
            macs = row["macs"]
            lines.append(
                f"| {row['name']} | {row['count']} | {macs:,} | {row['energy_pj'] / macs:.4f} | "
                f"{row['bound_pj'] / macs:.4f} | {100 * row['gap']:.2f} % | {row['status']} | "
                f"{row['time_s']:.1f} | {row['random_pj'] / macs:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="eyeriss")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--only", nargs="*", default=None, help="model names to run")
    parser.add_argument("--out", type=Path, default=None, help="directory for .md and .json")
    args = parser.parse_args()
    print(
        f"target {args.target}; CP-SAT {args.time_limit} s/layer (deterministic); "
        f"random {args.samples} samples/layer; {args.workers} workers"
    )
    print(
        f"{'network':14} {'layers':>6} {'CP-SAT µJ':>11} {'bound µJ':>10} {'max gap':>8} "
        f"{'<=1%':>7} {'CP-SAT s':>9} {'random µJ':>11} {'random s':>9} {'ratio':>6} "
        f"{'bound/random':>12}"
    )
    results: dict[str, Any] = {}
    for name, source in models():
        if args.only and name not in args.only:
            continue
        s, layers = run_network(source, args.target, args.time_limit, args.samples, args.workers)
        results[name] = (s, layers)
        print(
            f"{name:14} {s['layers']:6} {s['energy_pj'] / 1e6:11.1f} {s['bound_pj'] / 1e6:10.1f} "
            f"{100 * s['max_gap']:7.1f}% {s['within_1pct']:3}/{s['distinct']:<3} "
            f"{s['cpsat_s']:9.1f} {s['random_pj'] / 1e6:11.1f} {s['random_s']:9.1f} "
            f"{s['energy_pj'] / s['random_pj']:6.3f} {s['bound_pj'] / s['random_pj']:12.3f}",
            flush=True,
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "mapper_networks.md", markdown(args, results))
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "networks": results}
        write_atomic(args.out / "mapper_networks.json", json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
