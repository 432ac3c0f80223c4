"""Imperfect factors (``--factors imperfect``) against perfect ones, side by side in one run.

Three studies, each compiling the same lowered network both ways with the same
options (``compile_model(..., factors=...)``):

* ``llama``: the bundled Llama-2-7B block, prefill and decode, on ``eyeriss`` at
  ``--objective latency`` (PE utilisation per layer) and ``energy`` (the energy
  of every layer may not exceed the perfect optimum);
* ``edp``: ResNet-50 and MobileNetV2 (../shared/models) at ``--objective edp``:
  network EDP = total energy x total cycles (layers run one after the other);
* ``networks``: the five shared networks at ``--objective energy``: compile time,
  energy, layers improved, and how many distinct layers each space proves (the
  imperfect one where a layer's energy meets the imperfect bound).

Plus the count of candidate factors per extent the search tries for one slot.
Writes ``--out``/imperfect_<study>.md and .json.

    .venv/bin/python benchmarks/bench_imperfect.py llama edp networks [--time-limit 2]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from joule.defaults import DEFAULT_TIME_LIMIT_S, DEFAULT_WORKERS
from joule.driver import compile_model
from joule.lower import lower_model
from joule.passes.mapper.search.imperfect import candidate_factors
from joule.report.files import write_atomic
from joule.schedule import Schedule

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
RESULTS = Path(__file__).resolve().parent / "results"


def both(source: object, objective: str, limit: float, workers: int) -> dict[str, Any]:
    """Compile ``source`` with perfect and with imperfect factors; wall time of each."""
    network = lower_model(source)
    out: dict[str, Any] = {}
    for factors in ("perfect", "imperfect"):
        start = time.perf_counter()
        schedule = compile_model(
            network,
            "eyeriss",
            objective=objective,
            time_limit=limit,
            workers=workers,
            cache=False,
            factors=factors,
        )
        out[factors] = (schedule, time.perf_counter() - start)
    return out


def layer_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    perfect: Schedule = runs["perfect"][0]
    imperfect: Schedule = runs["imperfect"][0]
    rows = []
    for p, i in zip(perfect.layers, imperfect.layers, strict=True):
        if p.shared_with is not None:
            continue
        rows.append(
            {
                "layer": p.nest.name,
                "dims": dict(p.nest.dims),
                "count": sum(o.nest.signature() == p.nest.signature() for o in perfect.layers),
                "perfect_energy_pj": p.cost.energy_pj,
                "imperfect_energy_pj": i.cost.energy_pj,
                "perfect_cycles": p.cost.cycles,
                "imperfect_cycles": i.cost.cycles,
                "perfect_utilization": p.cost.utilization,
                "imperfect_utilization": i.cost.utilization,
                "perfect_status": p.solver["status"],
                "imperfect_status": i.solver["status"],
                "imperfect_gap": i.solver["gap"],
                "imperfect_mapping_perfect": i.tiling.perfect,
            }
        )
    return rows


def totals(runs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for factors, (schedule, seconds) in runs.items():
        energy = schedule.energy_pj
        cycles = sum(layer.cost.cycles for layer in schedule.layers)
        distinct = [lay for lay in schedule.layers if lay.shared_with is None]
        out[factors] = {
            "energy_pj": energy,
            "cycles": cycles,
            "edp": energy * cycles,
            "seconds": seconds,
            "distinct": len(distinct),
            "proven": sum(
                (lay.solver["perfect_status"] or lay.solver["status"]) == "OPTIMAL"
                for lay in distinct
            ),
            # Imperfect runs: proven over residual tiles (energy meets their bound).
            "proven_imperfect": sum(lay.solver["status"] == "OPTIMAL" for lay in distinct),
            "improved": sum(
                lay.solver["perfect_status"] != ""
                and lay.solver["objective"] < lay.solver["perfect_objective"]
                for lay in distinct
            ),
        }
    return out


def study(name: str, jobs: list[tuple[str, object, str]], limit: float, workers: int) -> dict:
    results = {}
    for label, source, objective in jobs:
        print(f"{name}: {label} at {objective} ...", flush=True)
        runs = both(source, objective, limit, workers)
        results[f"{label}/{objective}"] = {"totals": totals(runs), "layers": layer_rows(runs)}
    return results


def markdown(name: str, results: dict, limit: float) -> str:
    lines = [f"# Imperfect factors: {name} (eyeriss, {limit:g} s per layer)", ""]
    lines += [
        "| run | perfect energy µJ | imperfect | perfect cycles | imperfect | EDP ratio "
        "| distinct layers | proven (perfect space) | proven (imperfect space) | improved "
        "| time perfect s | imperfect s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, res in results.items():
        p, i = res["totals"]["perfect"], res["totals"]["imperfect"]
        lines.append(
            f"| {key} | {p['energy_pj'] / 1e6:.2f} | {i['energy_pj'] / 1e6:.2f} | {p['cycles']:,} "
            f"| {i['cycles']:,} | {i['edp'] / p['edp']:.3f} | {p['distinct']} | {p['proven']} "
            f"| {i['proven_imperfect']} | {i['improved']} | {p['seconds']:.1f} "
            f"| {i['seconds']:.1f} |"
        )
    for key, res in results.items():
        lines += ["", f"## {key}", ""]
        lines += [
            "| layer | dims | x | energy µJ perfect → imperfect | cycles perfect → imperfect "
            "| utilisation perfect → imperfect | status (perfect space) "
            "| status, gap (imperfect space) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in res["layers"]:
            dims = " ".join(f"{d}{e}" for d, e in r["dims"].items())
            lines.append(
                f"| {r['layer']} | {dims} | {r['count']} "
                f"| {r['perfect_energy_pj'] / 1e6:.3f} → {r['imperfect_energy_pj'] / 1e6:.3f} "
                f"| {r['perfect_cycles']:,} → {r['imperfect_cycles']:,} "
                f"| {r['perfect_utilization']:.1%} → {r['imperfect_utilization']:.1%} "
                f"| {r['perfect_status']} | {r['imperfect_status']}, {r['imperfect_gap']:.2%} |"
            )
    return "\n".join(lines) + "\n"


def candidates_table() -> str:
    lines = [
        "| extent | all factors | candidate factors (one per count) | 2 sqrt(extent) |",
        "|---|---|---|---|",
    ]
    for extent in (4096, 11008, 32000, 50257):
        n = len(candidate_factors(extent, extent))
        lines.append(f"| {extent} | {extent} | {n} | {2 * math.isqrt(extent)} |")
    return "\n".join(lines) + "\n"


STUDIES = {
    "llama": lambda: [
        (m, m, obj)
        for m in ("llama2_block_prefill", "llama2_block_decode")
        for obj in ("latency", "energy")
    ],
    "edp": lambda: [(net, SHARED / f"{net}.onnx", "edp") for net in ("resnet50", "mobilenet_v2")],
    "networks": lambda: [(p.stem, p, "energy") for p in sorted(SHARED.glob("*.onnx"))],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", choices=sorted(STUDIES))
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "imperfect_candidates.md", candidates_table())
    for name in args.studies:
        results = study(name, STUDIES[name](), args.time_limit, args.workers)
        write_atomic(args.out / f"imperfect_{name}.json", json.dumps(results, indent=1))
        write_atomic(args.out / f"imperfect_{name}.md", markdown(name, results, args.time_limit))
        print(markdown(name, results, args.time_limit).split("\n## ")[0])


if __name__ == "__main__":
    main()
