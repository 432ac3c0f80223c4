"""report.md / report.html: the per-layer table, breakdowns, each mapping as loops, the plots."""

from __future__ import annotations

import html
from pathlib import Path

from joule.report.files import prepare_dir, write_atomic
from joule.report.plots import PLOTS
from joule.schedule import Schedule
from joule.tiling import DimTiling, LoopTiling


def write_outputs(schedule: Schedule, out: str | Path) -> Path:
    """Write schedule.json, report.md, report.html and the PNG plots into ``out``."""
    directory = prepare_dir(Path(out))
    for name, plot in PLOTS.items():
        if schedule.layers:
            write_atomic(directory / name, plot(schedule))
    write_atomic(directory / "report.md", markdown(schedule))
    write_atomic(directory / "report.html", to_html(schedule))
    write_atomic(directory / "schedule.json", schedule.to_json())  # last: marks completion
    return directory


def _layer_rows(schedule: Schedule) -> list[list[str]]:
    rows = []
    for lay in schedule.layers:
        c, s = lay.cost, lay.solver
        rows.append(
            [
                lay.nest.name,
                lay.nest.op,
                f"{lay.nest.macs:,}",
                lay.dataflow,
                f"{c.energy_pj / 1e6:.3f}",
                f"{c.energy_pj / lay.nest.macs:.3f}",
                f"{lay.energy_bound_pj / lay.nest.macs:.3f}",
                f"{c.cycles:,}",
                f"{100 * c.utilization:.1f}",
                s["status"] + (f" (same as {lay.shared_with})" if lay.shared_with else ""),
                f"{100 * s['gap']:.2f}",
                f"{s['time_s']:.2f}",
            ]
        )
    return rows


HEADER = [
    "layer",
    "op",
    "MACs",
    "dataflow",
    "energy (µJ)",
    "pJ/MAC",
    "bound pJ/MAC",
    "cycles",
    "util %",
    "solver",
    "gap %",
    "solve s",
]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _breakdown_rows(schedule: Schedule) -> tuple[list[str], list[list[str]]]:
    levels = list(schedule.layers[0].cost.energy_breakdown_pj) if schedule.layers else []
    header = ["layer", *[f"{lvl} (pJ/MAC)" for lvl in levels], "MAC (pJ/MAC)"]
    rows = []
    for lay in schedule.layers:
        b = lay.cost.energy_breakdown_pj
        per = [
            ", ".join(f"{r} {v / lay.nest.macs:.3f}" for r, v in b[lvl].items()) or "-"
            for lvl in levels
        ]
        rows.append([lay.nest.name, *per, f"{lay.cost.mac_energy_pj / lay.nest.macs:.3f}"])
    return header, rows


TILING_HEADER = [
    "layer",
    "imperfect dims (loops outermost first)",
    "PEs used",
    "util of used PEs %",
    "util of array %",
    "computes lost to idle PEs",
]


def _loop_text(lp: LoopTiling) -> str:
    """``shared_glb/Y 4 (last run 1)``: the run and tile of the residual where they differ."""
    where = lp.level + (f"/{lp.axis}" if lp.axis else "")
    extra = []
    if lp.residual != lp.factor:
        extra.append(f"last run {lp.residual}")
    if lp.residual_tile != lp.tile:
        extra.append(f"tile {lp.tile}, last {lp.residual_tile}")
    return f"{where} {lp.factor}" + (f" ({'; '.join(extra)})" if extra else "")


def _dim_text(dim: DimTiling) -> str:
    return f"{dim.dim}={dim.extent}: " + ", ".join(_loop_text(lp) for lp in dim.loops)


def _tiling_rows(schedule: Schedule) -> list[list[str]]:
    """Per layer its imperfect dims (perfect ones say nothing) and how full the array is."""
    rows = []
    for lay in schedule.layers:
        t = lay.tiling
        rows.append(
            [
                lay.nest.name,
                "; ".join(_dim_text(d) for d in t.dims if not d.perfect) or "none (perfect)",
                f"{t.pes_used:,} of {t.pes:,}",
                f"{100 * t.used_pe_utilization:.1f}",
                f"{100 * t.array_utilization:.1f}",
                f"{t.lost_computes:,}",
            ]
        )
    return rows


def _verification_lines(schedule: Schedule) -> list[str]:
    """One line per verified emission (``--emit tvm``): passed or not, and the worst errors."""
    lines = []
    for tool, rec in schedule.verification.items():
        status = "passed" if rec.get("passed") else "FAILED"
        lines.append(
            f"{tool}: {status} against the unscheduled model and onnxruntime "
            f"(rtol {rec.get('rtol', 1e-4):g}): max abs err {rec.get('max_abs_err')}, "
            f"max rel err {rec.get('max_rel_err')}"
        )
    return lines


def _verification_md(schedule: Schedule) -> list[str]:
    lines = _verification_lines(schedule)
    return ["## Verification", "", *[f"- {line}" for line in lines], ""] if lines else []


def markdown(schedule: Schedule) -> str:
    t = schedule.totals()
    parts = [
        f"# Joule schedule: {schedule.model} on {schedule.target}",
        "",
        f"Objective **{schedule.objective}**, dataflow **{schedule.dataflow}**, mapper "
        f"**{schedule.mapper}**{'' if schedule.complete else ' — **incomplete**'}.",
        "",
        f"Total energy **{t['energy_pj'] / 1e6:.3f} µJ** for {t['macs']:,} MACs "
        f"({t['energy_pj'] / max(t['macs'], 1):.3f} pJ/MAC); energy bound "
        f"{t['lower_bound_pj'] / 1e6:.3f} µJ; {t['cycles']:,} cycles; "
        f"compiled in {t['time_s']:.1f} s.",
        "",
    ]
    if schedule.warnings:
        parts += ["## Warnings", "", *[f"- {w}" for w in schedule.warnings], ""]
    parts += _verification_md(schedule)
    parts += ["## Layers", "", _md_table(HEADER, _layer_rows(schedule)), ""]
    parts += [
        "![energy per layer by level](energy_by_level.png)",
        "",
        "![energy by tensor](energy_by_tensor.png)",
        "",
        "![PE utilisation](utilization.png)",
        "",
    ]
    header, rows = _breakdown_rows(schedule)
    parts += ["## Energy breakdown by level and tensor", "", _md_table(header, rows), ""]
    parts += [
        "## Tiling and PE utilisation",
        "",
        "Residual tiles of imperfect factors leave PEs idle: utilisation over the compute "
        "cycles, and the PE-cycles the spatial loops claim but do not compute.",
        "",
        _md_table(TILING_HEADER, _tiling_rows(schedule)),
        "",
    ]
    parts += ["## Mappings", ""]
    for lay in schedule.layers:
        if lay.shared_with:
            continue
        parts += [
            f"### {lay.nest.name}",
            "",
            "```",
            lay.mapping.loops_text(extents=lay.nest.extents),
            "```",
            "",
        ]
    parts += ["## Unmapped ops", ""]
    if schedule.unmapped_ops:
        parts += _md_table(
            ["op", "type", "elements"],
            [[u.name, u.op, f"{u.elements:,}"] for u in schedule.unmapped_ops],
        ).splitlines()
    else:
        parts.append("None.")
    return "\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(schedule: Schedule) -> str:
    t = schedule.totals()
    header, rows = _breakdown_rows(schedule)
    mappings = "".join(
        f"<h3>{html.escape(lay.nest.name)}</h3><pre>{html.escape(lay.mapping.loops_text(extents=lay.nest.extents))}</pre>"
        for lay in schedule.layers
        if not lay.shared_with
    )
    unmapped = _html_table(
        ["op", "type", "elements"],
        [[u.name, u.op, f"{u.elements:,}"] for u in schedule.unmapped_ops],
    )
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in schedule.warnings)
    verification = "".join(f"<li>{html.escape(v)}</li>" for v in _verification_lines(schedule))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Joule: {html.escape(schedule.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child{{text-align:left}}
pre{{background:#f6f6f6;padding:8px}}</style></head><body>
<h1>Joule schedule: {html.escape(schedule.model)} on {html.escape(schedule.target)}</h1>
<p>Objective <b>{schedule.objective}</b>, dataflow <b>{schedule.dataflow}</b>, mapper
<b>{schedule.mapper}</b>. Total energy <b>{t["energy_pj"] / 1e6:.3f} µJ</b> for
{t["macs"]:,} MACs; energy bound {t["lower_bound_pj"] / 1e6:.3f} µJ;
{t["cycles"]:,} cycles.</p>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
{f"<h2>Verification</h2><ul>{verification}</ul>" if verification else ""}
<h2>Layers</h2>{_html_table(HEADER, _layer_rows(schedule))}
<h2>Plots</h2><img src="energy_by_level.png" alt="energy per layer by level">
<img src="energy_by_tensor.png" alt="energy by tensor"><img src="utilization.png" alt="utilisation">
<h2>Energy breakdown by level and tensor</h2>{_html_table(header, rows)}
<h2>Tiling and PE utilisation</h2>{_html_table(TILING_HEADER, _tiling_rows(schedule))}
<h2>Mappings</h2>{mappings}
<h2>Unmapped ops</h2>{unmapped}
</body></html>
"""
