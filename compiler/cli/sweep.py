"""``joule sweep SWEEPFILE --out DIR``: map networks on every design point of a target template.

The sweep file format is in :mod:`joule.hardware.sweep` (and docs/hardware-model.md).
Writes DIR/points.csv, points.json, front.json, report.html with its plots, and keeps
DIR/points.jsonl and DIR/cache.sqlite so that a killed sweep, run again with the same
--out, re-solves nothing that finished.
"""

from __future__ import annotations

import argparse

from joule.defaults import DEFAULT_WORKERS
from joule.option_checks import check_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweepfile", help="the sweep file (YAML): template, parameters, networks")
    parser.add_argument("--out", required=True, help="output folder (also the resume state)")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"design points mapped in parallel by the local process pool "
        f"(default {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="per-layer mapper budget in deterministic units "
        "(overrides the file's mapper.time_limit)",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="skip design points whose lower bounds a finished point dominates "
        "(same as 'prune: true' in the sweep file)",
    )
    parser.add_argument(
        "--ray", action="store_true", help="run the design points as Ray tasks (ray.init())"
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="join the Ray cluster at ADDR (implies --ray)",
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from joule.hardware.sweep import load_sweep, run_sweep

    check_options("joule sweep", flags=True, workers=args.workers)
    spec = load_sweep(args.sweepfile)
    if args.prune:
        spec = replace(spec, prune=True)
    if args.time_limit is not None:
        check_options("joule sweep", flags=True, time_limit=args.time_limit)
        spec = replace(spec, mapper={**spec.mapper, "time_limit": args.time_limit})
    result = run_sweep(
        spec,
        args.out,
        workers=args.workers,
        ray=args.ray or args.ray_address is not None,
        ray_address=args.ray_address,
    )
    ok = [p for p in result.points if p["status"] == "ok"]
    bad = [p for p in result.points if p["status"] != "ok"]
    rate = 60 * result.solved_now / result.wall_s if result.wall_s else 0.0
    print(
        f"sweep {spec.template}: {len(result.points)} design points, {len(ok)} mapped, "
        f"{len(bad)} failed, infeasible or pruned ({result.pruned} pruned, "
        f"{result.pruned_layer_solves} layer solves saved), {result.reused} reused; Pareto front "
        f"{len(result.front)} points; {result.wall_s:.1f} s ({rate:.2f} points/min) -> "
        f"{result.out}/points.csv, points.json, front.json, report.html"
    )
    if result.search:
        s = result.search
        line = f"search {s['method']} (seed {s['seed']}): {s['evaluations']} evaluations, "
        line += f"{s['generations']} generation(s)"
        if "hypervolume" in s:
            ref = ", ".join(f"{k} {v:g}" for k, v in spec.search["reference"].items())
            line += f"; hypervolume {s['hypervolume']:.4f} (reference point: {ref})"
        print(line)
    for p in bad:
        if p["status"] != "pruned":
            print(f"  #{p['index']} {p['status']}: {p.get('reason')}")
    if result.pruned:  # one line, not one per point: a big grid prunes most of its points
        example = next(p for p in bad if p["status"] == "pruned")
        print(
            f"  {result.pruned} pruned by bounds (each point's reason in points.csv), "
            f"e.g. #{example['index']}: {example['reason']}"
        )
    return 0
