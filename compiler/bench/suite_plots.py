"""The suites' figures (matplotlib, Agg backend): PNG bytes, readable at a glance."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LEVEL_COLORS = {
    "MAC": "#4c72b0",
    "rf": "#55a868",
    "array": "#c4ad66",
    "global_buffer": "#dd8452",
    "DRAM": "#c44e52",
}
LEVEL_NAMES = {
    "MAC": "ALU",
    "rf": "RF",
    "array": "array",
    "global_buffer": "buffer",
    "DRAM": "DRAM",
}


def png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def dataflow_figure(
    rows: Sequence[Mapping[str, Any]], order: Sequence[str], labels: Mapping[str, str]
) -> bytes:
    """Paper-style stacked bars: per layer, one bar per dataflow split by level (energy/MAC).

    CONV and FC layers get separate panels (their scales differ by an order of magnitude).
    """
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    groups = [g for g in (["CONV"], ["FC"]) if any(lay.startswith(g[0]) for lay in layers)]
    widths = [sum(lay.startswith(g[0]) for lay in layers) for g in groups]
    fig, axes = plt.subplots(
        1,
        len(groups),
        figsize=(3.0 + 1.9 * len(layers), 4.6),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    cell = {(r["layer"], labels[r["dataflow"]]): r for r in rows}
    n = len(order)
    bar = 0.8 / n
    for ax, (prefix,) in zip(axes[0], groups, strict=True):
        mine = [lay for lay in layers if lay.startswith(prefix)]
        for li, lay in enumerate(mine):
            for di, df in enumerate(order):
                r = cell.get((lay, df))
                if r is None:
                    continue
                x = li + (di - (n - 1) / 2) * bar
                bottom = 0.0
                for lvl, color in LEVEL_COLORS.items():
                    v = r["breakdown"].get(lvl, 0.0)
                    ax.bar(
                        x,
                        v,
                        bar * 0.92,
                        bottom=bottom,
                        color=color,
                        label=LEVEL_NAMES[lvl] if (li, di) == (0, 0) else None,
                    )
                    bottom += v
                ax.text(
                    x, -0.012 * ax.get_ylim()[1], df, rotation=90, ha="center", va="top", fontsize=7
                )
        ax.set_xticks(range(len(mine)))
        ax.set_xticklabels(mine)
        ax.tick_params(axis="x", pad=34, length=0)
        ax.set_ylabel("energy per MAC (x one MAC)")
        ax.set_title(f"AlexNet {prefix} layers, batch 16")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_ylim(0, ax.get_ylim()[1])
    handles, names = axes[0][0].get_legend_handles_labels()
    axes[0][-1].legend(handles[::-1], names[::-1], loc="upper right", fontsize=8)
    fig.tight_layout()
    return png(fig)


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    *,
    ylabel: str,
    title: str,
    log: bool = False,
    fmt: str = "{:.2f}",
) -> bytes:
    """One group per outer key, one bar per inner key, each labelled with its value."""
    outer = list(values)
    inner = list(dict.fromkeys(k for v in values.values() for k in v))
    n = max(len(inner), 1)
    bar = 0.8 / n
    fig, ax = plt.subplots(figsize=(1.4 + 1.5 * len(outer), 4.2))
    colors = plt.get_cmap("tab10")
    for ii, name in enumerate(inner):
        xs = [oi + (ii - (n - 1) / 2) * bar for oi in range(len(outer))]
        ys = [values[o].get(name, float("nan")) for o in outer]
        bars = ax.bar(xs, ys, bar * 0.92, label=name, color=colors(ii))
        for b, y in zip(bars, ys, strict=True):
            if y == y:  # not NaN
                ax.annotate(
                    fmt.format(y),
                    (b.get_x() + b.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    ax.set_xticks(range(len(outer)))
    ax.set_xticklabels(outer, rotation=15)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.margins(y=0.15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def scatter_series(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = True,
) -> bytes:
    """One line with markers per named series of (x, y) points."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, points in series.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)
