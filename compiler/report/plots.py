"""Figures of a schedule: energy per layer stacked by level, by tensor, and PE utilisation."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from joule.schedule import Schedule  # noqa: E402


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def energy_by_level(schedule: Schedule) -> bytes:
    names = [_short(lay.nest.name) for lay in schedule.layers]
    levels = list(schedule.layers[0].cost.energy_breakdown_pj) if schedule.layers else []
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 4.5))
    bottom = [0.0] * len(names)
    for level in [*levels, "MAC"]:
        values = [
            (
                lay.cost.mac_energy_pj
                if level == "MAC"
                else sum(lay.cost.energy_breakdown_pj[level].values())
            )
            / 1e6
            for lay in schedule.layers
        ]
        ax.bar(names, values, bottom=bottom, label=level)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("energy (µJ)")
    ax.set_title(f"{schedule.model} on {schedule.target}: energy per layer by level")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.legend(fontsize=8)
    return _png(fig)


def energy_by_tensor(schedule: Schedule) -> bytes:
    totals: dict[str, float] = {}
    for lay in schedule.layers:
        for roles in lay.cost.energy_breakdown_pj.values():
            for role, pj in roles.items():
                totals[role] = totals.get(role, 0.0) + pj
        totals["MAC"] = totals.get("MAC", 0.0) + lay.cost.mac_energy_pj
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(list(totals), [v / 1e6 for v in totals.values()], color="tab:green")
    ax.set_ylabel("energy (µJ)")
    ax.set_title("energy by tensor (all layers)")
    return _png(fig)


def utilization(schedule: Schedule) -> bytes:
    names = [_short(lay.nest.name) for lay in schedule.layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 3.5))
    ax.bar(names, [100 * lay.cost.utilization for lay in schedule.layers], color="tab:purple")
    ax.set_ylabel("PE utilisation (%)")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    return _png(fig)


PLOTS = {
    "energy_by_level.png": energy_by_level,
    "energy_by_tensor.png": energy_by_tensor,
    "utilization.png": utilization,
}
