"""Numbers and the Pareto plot of a finished ``joule sweep``, and the front comparison of
two runs (process pool vs Ray).

Run::

    .venv/bin/python benchmarks/sweeps/sweep_stats.py summary OUT [--name NAME] [--wall S]
    .venv/bin/python benchmarks/sweeps/sweep_stats.py compare OUT_A OUT_B

``summary`` reads OUT/points.json and writes benchmarks/results/NAME.{json,md} and
NAME_front.png: design points (mapped, pruned, failed), throughput (design points and
mapped points per minute of wall time; ``--wall`` when the sweep ran in pieces, e.g.
killed and resumed), the distribution of per-layer gaps over every distinct layer solve
(median, p90, max, share proven OPTIMAL) and the Pareto front.

``compare`` checks that two runs of one sweep file have the same Pareto front (same
design points, same energy, cycles and area) and that every point mapped by both has
the same mapping results (every layer's status, gap, energy, cycles); exit 1 if not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SAME = ("energy_pj", "cycles", "area_mm2")


def _load(out: str) -> tuple[dict, list[dict]]:
    data = json.loads((Path(out) / "points.json").read_text())
    return data["summary"], data["points"]


def summary(out: str, name: str, wall: float | None) -> dict:
    head, points = _load(out)
    ok = [p for p in points if p["status"] == "ok"]
    layers = [
        lay
        for p in ok
        for net in p["networks"].values()
        for lay in net["layers"]
        if lay["shared_with"] is None
    ]
    gaps = np.array([lay["gap"] for lay in layers if lay["gap"] is not None], dtype=float)
    wall_s = wall if wall is not None else head["wall_s"]
    front = sorted((p for p in ok if p["pareto"]), key=lambda p: p["area_mm2"])
    stats = {
        "sweep": {k: head[k] for k in ("template", "networks", "objectives", "mapper")},
        "design_points": len(points),
        "by_status": {s: sum(1 for p in points if p["status"] == s) for s in _statuses(points)},
        "pruned_layer_solves": head["pruned_layer_solves"],
        "wall_s": wall_s,
        "design_points_per_minute": 60 * len(points) / wall_s,
        "mapped_points_per_minute": 60 * len(ok) / wall_s,
        "layer_solves": len(layers),
        "gap": {
            "median": float(np.median(gaps)),
            "p90": float(np.percentile(gaps, 90)),
            "max": float(gaps.max()),
            "share_optimal": sum(1 for lay in layers if lay["status"] == "OPTIMAL") / len(layers),
        },
        "front": [
            {
                "index": p["index"],
                "params": {k: v for k, v in p["params"].items() if k not in ("technology_nm",)},
                "area_mm2": p["area_mm2"],
                "energy_uj": p["energy_pj"] / 1e6,
                "lower_bound_uj": p["lower_bound_pj"] / 1e6,
                "cycles": p["cycles"],
                "pj_per_mac": p["pj_per_mac"],
                "optimal_layers": f"{p['optimal_layers']}/{p['solved_layers']}",
                "max_gap": p["max_gap"],
            }
            for p in front
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(stats, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(_markdown(stats))
    _plot(points, RESULTS / f"{name}_front.png", head)
    print(_markdown(stats))
    return stats


def _statuses(points: list[dict]) -> list[str]:
    return sorted({p["status"] for p in points})


def _markdown(s: dict) -> str:
    g = s["gap"]
    status = ", ".join(f"{n} {k}" for k, n in s["by_status"].items())
    lines = [
        f"{s['design_points']} design points ({status}; {s['pruned_layer_solves']} "
        f"distinct-layer solves saved by pruning), {s['wall_s'] / 60:.1f} min wall: "
        f"{s['design_points_per_minute']:.2f} design points/min, "
        f"{s['mapped_points_per_minute']:.2f} mapped points/min.",
        "",
        f"Per-layer gaps over {s['layer_solves']} distinct-layer solves: median "
        f"{g['median']:.2%}, p90 {g['p90']:.2%}, max {g['max']:.2%}; "
        f"{g['share_optimal']:.1%} proven OPTIMAL.",
        "",
        "| # | mesh | GLB KiB | weights spad | word bits | area mm² | energy µJ "
        "| bound µJ | pJ/MAC | cycles | optimal layers | max gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in s["front"]:
        q = p["params"]
        lines.append(
            f"| {p['index']} | {q.get('mesh_x')}x{q.get('mesh_y')} | {q.get('glb_kib')} "
            f"| {q.get('weights_spad_depth')} | {q.get('word_bits')} | {p['area_mm2']:.2f} "
            f"| {p['energy_uj']:.1f} | {p['lower_bound_uj']:.1f} | {p['pj_per_mac']:.3f} "
            f"| {p['cycles']:,} "
            f"| {p['optimal_layers']} | {p['max_gap']:.2%} |"
        )
    return "\n".join(lines) + "\n"


def _plot(points: list[dict], path: Path, head: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in points if p["status"] == "ok"]
    front = sorted((p for p in ok if p["pareto"]), key=lambda p: p["area_mm2"])
    pruned = [p for p in points if p["status"] == "pruned" and p.get("bound")]
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(9, 3.4))
    for bits, marker in ((8, "o"), (16, "^")):
        mine = [p for p in ok if p["params"].get("word_bits") == bits]
        if mine:
            ax.scatter(
                [p["area_mm2"] for p in mine],
                [p["energy_pj"] / 1e6 for p in mine],
                s=14,
                marker=marker,
                c="tab:blue",
                alpha=0.6,
                label=f"mapped, {bits}-bit words",
            )
    if pruned:
        ax.scatter(
            [p["area_mm2"] for p in pruned],
            [p["bound"]["energy_pj"] / 1e6 for p in pruned],
            s=10,
            marker="x",
            c="0.6",
            label="pruned (at its energy lower bound)",
        )
    ax.step(
        [p["area_mm2"] for p in front],
        [p["energy_pj"] / 1e6 for p in front],
        where="post",
        c="tab:red",
        label="Pareto front",
    )
    ax.scatter([p["area_mm2"] for p in front], [p["energy_pj"] / 1e6 for p in front], c="tab:red")
    nets = " + ".join(Path(n).stem for n in head["networks"])
    ax.set_title(f"{head['template']}: {nets}", fontsize=9)
    ax.set_xlabel("area (mm$^2$)")
    ax.set_ylabel("energy (µJ, batch 1, all networks)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    # the mapped points only: energy with its certified lower bound (the mapper's bound)
    for p in ok:
        zoom.plot([p["area_mm2"]] * 2, [p["lower_bound_pj"] / 1e6, p["energy_pj"] / 1e6], c="0.8")
    zoom.scatter(
        [p["area_mm2"] for p in ok], [p["energy_pj"] / 1e6 for p in ok], s=14, c="tab:blue"
    )
    zoom.step(
        [p["area_mm2"] for p in front],
        [p["energy_pj"] / 1e6 for p in front],
        where="post",
        c="tab:red",
    )
    zoom.scatter([p["area_mm2"] for p in front], [p["energy_pj"] / 1e6 for p in front], c="tab:red")
    zoom.set_title("mapped points; grey: down to the certified lower bound", fontsize=8)
    zoom.set_xlabel("area (mm$^2$)")
    zoom.set_ylabel("energy (µJ)")
    zoom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def compare(a: str, b: str) -> int:
    _, pa = _load(a)
    _, pb = _load(b)
    fa = {p["id"]: p for p in pa if p["pareto"]}
    fb = {p["id"]: p for p in pb if p["pareto"]}
    same_front = set(fa) == set(fb) and all(all(fa[i][k] == fb[i][k] for k in SAME) for i in fa)
    ok_a = {p["id"]: p for p in pa if p["status"] == "ok"}
    ok_b = {p["id"]: p for p in pb if p["status"] == "ok"}
    both = sorted(set(ok_a) & set(ok_b))
    differ = [i for i in both if _mapping(ok_a[i]) != _mapping(ok_b[i])]
    print(
        f"front A {len(fa)} points, front B {len(fb)} points: "
        f"{'the same' if same_front else 'DIFFERENT'} (design points and energy, cycles, area); "
        f"{len(both)} points mapped by both, {len(differ)} with different mapping results; "
        f"mapped only by A: {len(set(ok_a) - set(ok_b))}, only by B: {len(set(ok_b) - set(ok_a))}"
    )
    return 0 if same_front and not differ else 1


def _mapping(p: dict) -> list:
    return [
        (lay["name"], lay["status"], lay["gap"], lay["energy_pj"], lay["cycles"])
        for net in p["networks"].values()
        for lay in net["layers"]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary")
    s.add_argument("out")
    s.add_argument("--name", default="resnet18_mobilenet_sweep")
    s.add_argument("--wall", type=float, default=None, help="total wall seconds of all pieces")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = parser.parse_args()
    if args.cmd == "summary":
        summary(args.out, args.name, args.wall)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
