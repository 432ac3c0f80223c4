"""The outputs of ``joule sweep``: points.csv, points.json, front.json, report.html + plots."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

COLUMNS = (
    "index",
    "id",
    "status",
    "pareto",
    "target",
    "area_mm2",
    "energy_pj",
    "cycles",
    "edp",
    "pj_per_mac",
    "solved_layers",
    "optimal_layers",
    "max_gap",
    "lower_bound_pj",
    "time_s",
    "reason",
)


def write_outputs(spec: Any, result: Any) -> None:
    out: Path = result.out
    points = result.points
    params = list(spec.fixed) + [k for k in spec.grid if k not in spec.fixed]
    with (out / "points.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS[:4], *params, *COLUMNS[4:]])
        for p in points:
            row = [p.get(c) for c in COLUMNS]
            writer.writerow([*row[:4], *(p["params"].get(k) for k in params), *row[4:]])
    summary = {
        "template": spec.template,
        "networks": spec.networks,
        "objectives": spec.objectives,
        "constraints": spec.constraints,
        "mapper": spec.mapper,
        "points": len(points),
        "ok": sum(1 for p in points if p["status"] == "ok"),
        "failed": sum(1 for p in points if p["status"] == "failed"),
        "infeasible": sum(1 for p in points if p["status"] == "infeasible"),
        "pruned": result.pruned,
        "pruned_layer_solves": result.pruned_layer_solves,
        "solved_now": result.solved_now,
        "reused": result.reused,
        "wall_s": result.wall_s,
        "points_per_minute": 60 * result.solved_now / result.wall_s if result.wall_s else None,
        "front": result.front,
        "search": result.search,
    }
    (out / "points.json").write_text(
        json.dumps({"summary": summary, "points": points}, indent=1, default=str) + "\n",
        encoding="utf-8",
    )
    front = [p for p in points if p.get("pareto")]
    (out / "front.json").write_text(json.dumps(front, indent=1, default=str) + "\n", "utf-8")
    plots = _plots(out, points, spec)
    (out / "report.html").write_text(_html(spec, summary, points, plots), encoding="utf-8")


def _plots(out: Path, points: list[dict[str, Any]], spec: Any) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in points if p["status"] == "ok"]
    front = sorted((p for p in ok if p.get("pareto")), key=lambda p: p["area_mm2"])
    files = []
    for x_key, x_label, name in (
        ("area_mm2", "area (mm$^2$)", "energy_vs_area.png"),
        ("cycles", "latency (cycles, all networks)", "energy_vs_latency.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        ax.scatter(
            [p[x_key] for p in ok],
            [p["energy_pj"] / 1e6 for p in ok],
            s=18,
            c="0.6",
            label="design points",
        )
        if front:
            ax.scatter(
                [p[x_key] for p in front],
                [p["energy_pj"] / 1e6 for p in front],
                s=36,
                c="tab:red",
                label=f"Pareto front ({', '.join(spec.objectives)})",
            )
            if x_key == "area_mm2":
                ax.plot(
                    [p[x_key] for p in front], [p["energy_pj"] / 1e6 for p in front], c="tab:red"
                )
        ax.set_xlabel(x_label)
        ax.set_ylabel("energy (µJ, all networks)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    shown = front or ok
    if shown:
        shown = sorted(shown, key=lambda p: p["energy_pj"])[:12]
        levels: list[str] = []
        for p in shown:
            for lvl in p.get("level_energy_pj", {}):
                if lvl not in levels:
                    levels.append(lvl)
        fig, ax = plt.subplots(figsize=(7, 4.2))
        bottom = [0.0] * len(shown)
        labels = [f"#{p['index']}" for p in shown]
        for lvl in levels:
            vals = [p.get("level_energy_pj", {}).get(lvl, 0.0) / 1e6 for p in shown]
            ax.bar(labels, vals, bottom=bottom, label=lvl)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_ylabel("energy (µJ)")
        ax.set_xlabel("design point (front, lowest energy first)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "energy_by_level.png", dpi=110)
        plt.close(fig)
        files.append("energy_by_level.png")
    return files


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _html(
    spec: Any, summary: dict[str, Any], points: list[dict[str, Any]], plots: list[str]
) -> str:
    params = list(spec.fixed) + [k for k in spec.grid if k not in spec.fixed]
    head = [
        "#",
        "status",
        *params,
        "area mm²",
        "energy µJ",
        "cycles",
        "pJ/MAC",
        "optimal",
        "max gap",
        "front",
        "reason",
    ]
    rows = []
    for p in points:
        gap = p.get("max_gap")
        cells = [
            p["index"],
            p["status"],
            *(p["params"].get(k) for k in params),
            p.get("area_mm2"),
            p["energy_pj"] / 1e6 if p.get("energy_pj") is not None else None,
            p.get("cycles"),
            p.get("pj_per_mac"),
            f"{p['optimal_layers']}/{p['solved_layers']}" if "solved_layers" in p else None,
            f"{gap:.2%}" if gap is not None else None,
            "★" if p.get("pareto") else "",
            p.get("reason"),
        ]
        style = ' style="background:#fde2e2"' if p.get("pareto") else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    ppm = summary["points_per_minute"]
    rate = "" if ppm is None else f", {ppm:.2f} design points per minute"
    esc = html.escape
    setup = (
        f"networks: {esc(', '.join(spec.networks))}; "
        f"objectives: {esc(', '.join(spec.objectives))}; "
        f"constraints: {esc(json.dumps(spec.constraints))}; mapper: {esc(json.dumps(spec.mapper))}"
    )
    counts = (
        f"{summary['points']} design points: {summary['ok']} mapped, "
        f"{summary['infeasible']} infeasible, {summary['failed']} failed; "
        f"{summary['solved_now']} run now, {summary['reused']} reused from an earlier run; "
        f"{summary['wall_s']:.1f} s wall{rate}; Pareto front: {len(summary['front'])} points."
    )
    search = summary.get("search")
    if search:
        counts += (
            f" Search: {esc(search['method'])}, seed {search['seed']}, "
            f"{search['evaluations']} evaluations in {search['generations']} generation(s)"
        )
        if "hypervolume" in search:
            ref = ", ".join(f"{k} {v:g}" for k, v in spec.search["reference"].items())
            counts += f"; hypervolume {search['hypervolume']:.4f} (reference point: {esc(ref)})"
        counts += "."
    if summary["pruned"]:
        counts += (
            f" Pruned by bounds: {summary['pruned']} points, {summary['pruned_layer_solves']} "
            "distinct-layer solves saved. A point is skipped only when a finished feasible "
            "point is at or below its lower bounds (compulsory energy, one cycle per MAC per "
            "PE, exact area) in every objective and strictly below in one; that point then "
            "dominates every mapping the skipped one could have, and everything the skipped "
            "one would dominate, so no Pareto point is lost and none is added."
        )
    images = "".join(f'<img src="{f}" alt="{f}"> ' for f in plots)
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>joule sweep</title>\n'
        "<style>body{font-family:sans-serif;margin:2em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;font-size:13px}</style>\n"
        f"</head><body><h1>joule sweep: {esc(spec.template)}</h1>\n"
        f"<p>{setup}</p>\n<p>{counts}</p>\n{images}\n"
        f"<table><tr>{header}</tr>\n{''.join(rows)}</table></body></html>\n"
    )
