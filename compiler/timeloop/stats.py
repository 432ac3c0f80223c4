"""Read the numbers Joule compares against out of a Timeloop ``*.stats.txt``.

Timeloop prints, per storage level and data space, per-instance scalar reads,
fills and updates and the number of utilized instances; the totals Joule
reports are their products. The summary gives cycles, utilization and the
energy per compute of every level (fJ), whose product with the compute count is
the energy in pJ at full precision (the printed "Energy: ... uJ" is rounded).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from joule.errors import MappingError

_ROLES = {"Weights": "weight", "Inputs": "input", "Outputs": "output"}
_KEYS = {
    "Utilized instances (max)": "instances",
    "Scalar reads (per-instance)": "reads",
    "Scalar fills (per-instance)": "fills",
    "Scalar updates (per-instance)": "updates",
    "Energy (total)": "energy_pj",
}


def read_stats(path: str | Path) -> dict[str, Any]:
    """``{"levels": {level: {role: {reads, fills, updates, instances, energy_pj}}}, "macs",
    "cycles", "utilization", "energy_pj", "level_energy_pj": {level: pJ}}``; counts are totals
    over the utilized instances."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingError(f"cannot read Timeloop stats: {exc.strerror}", where=str(path)) from None
    levels: dict[str, dict[str, dict[str, float]]] = {}
    level = role = None
    in_summary = False
    per_compute: dict[str, float] = {}
    summary: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        head = re.fullmatch(r"=== (\S+) ===", line)
        if head:
            level, role = head.group(1), None
            continue
        if line.rstrip(":") in _ROLES and line.endswith(":") and level is not None:
            role = _ROLES[line.rstrip(":")]
            levels.setdefault(level, {})[role] = {}
            continue
        if ":" in line and role is not None and level is not None:
            key, _, value = line.partition(":")
            field = _KEYS.get(key.strip())
            if field:
                levels[level][role][field] = float(value.split()[0])
        if line.startswith("Summary Stats"):
            in_summary, level, role = True, None, None
        if in_summary:
            m = re.fullmatch(r"(Cycles|Utilization|Computes)\s*[:=]\s*([\d.]+)%?", line)
            if m:
                summary[m.group(1)] = float(m.group(2))
            m = re.fullmatch(r"(\S+)\s*=\s*([\d.]+)", line)
            if m and m.group(1) != "Computes":
                per_compute[m.group(1)] = float(m.group(2))
    if not levels or "Computes" not in summary or "Total" not in per_compute:
        raise MappingError(
            "not a Timeloop stats file (no per-level stats or summary)", where=str(path)
        )
    macs = int(summary["Computes"])
    out_levels = {
        lvl: {
            r: {
                "reads": round(v.get("reads", 0) * v.get("instances", 1)),
                "fills": round(v.get("fills", 0) * v.get("instances", 1)),
                "updates": round(v.get("updates", 0) * v.get("instances", 1)),
                "instances": int(v.get("instances", 1)),
                "energy_pj": v.get("energy_pj", 0.0),
            }
            for r, v in roles.items()
        }
        for lvl, roles in levels.items()
    }
    return {
        "macs": macs,
        "cycles": int(summary.get("Cycles", 0)),
        "utilization": summary.get("Utilization", 0.0) / 100,
        "energy_pj": per_compute["Total"] * macs / 1000,
        "level_energy_pj": {k: v * macs / 1000 for k, v in per_compute.items() if k != "Total"},
        "levels": out_levels,
    }
