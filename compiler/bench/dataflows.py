"""The Eyeriss dataflow study (Chen, Emer, Sze, ISCA 2016, Sec. VII): AlexNet at batch 16.

Every dataflow maps CONV1-5 and FC6-8 on its own equal-area target
(``benchmarks/study_targets/dataflow_*.yaml``: 256 PEs; RS with 512 B of RF per PE and
a 128 kB buffer, the others with one-word registers and the RF area moved to
the buffer). ``free`` maps on the RS hardware with no dataflow constraint: the
best the mapper finds when it may choose. Energies are normalised to one MAC
(1/1/2/6/200); the result is energy per MAC per layer, split by level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joule.bench.common import (
    BENCH_TARGETS,
    BenchConfig,
    Job,
    level_breakdown_pj,
    machine,
    md_table,
    pick,
    solve_all,
    write_suite,
)
from joule.ir.builders import conv2d
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.outcome import SearchOptions

BATCH = 16
TIME_LIMIT_S = 10.0
# dataflow -> the study target it runs on (benchmarks/study_targets/dataflow_<name>.yaml)
DATAFLOW_TARGETS = {
    "ws": "ws",
    "os_a": "os",
    "os_b": "os",
    "os_c": "os",
    "nlr": "nlr",
    "rs": "rs",
    "free": "rs",
}
LABELS = {
    "ws": "WS",
    "os_a": "OS_A",
    "os_b": "OS_B",
    "os_c": "OS_C",
    "nlr": "NLR",
    "rs": "RS",
    "free": "free",
}
LEVELS = ("MAC", "rf", "array", "global_buffer", "DRAM")
LEVEL_LABELS = {
    "MAC": "ALU",
    "rf": "RF",
    "array": "array",
    "global_buffer": "buffer",
    "DRAM": "DRAM",
}
PAPER_CONV_MARGIN = (1.4, 2.5)


def study_layers(batch: int = BATCH) -> dict[str, LoopNest]:
    """AlexNet as in the paper's Table I (Krizhevsky's two-tower shapes), 16-bit words.

    CONV2, CONV4 and CONV5 are grouped (2 groups); FC6 is a 6x6 convolution over
    the 6x6x256 map and FC7/FC8 are 1x1 convolutions, as the paper treats them.
    """

    def conv(name: str, **shape: int) -> LoopNest:
        return conv2d(name, n=batch, bits=16, **shape)

    return {
        "CONV1": conv("CONV1", k=96, c=3, p=55, q=55, r=11, s=11, stride=4),
        "CONV2": conv("CONV2", k=128, c=48, p=27, q=27, r=5, s=5, pad=2, groups=2),
        "CONV3": conv("CONV3", k=384, c=256, p=13, q=13, r=3, s=3, pad=1),
        "CONV4": conv("CONV4", k=192, c=192, p=13, q=13, r=3, s=3, pad=1, groups=2),
        "CONV5": conv("CONV5", k=128, c=192, p=13, q=13, r=3, s=3, pad=1, groups=2),
        "FC6": conv("FC6", k=4096, c=256, p=1, q=1, r=6, s=6),
        "FC7": conv("FC7", k=4096, c=4096, p=1, q=1, r=1, s=1),
        "FC8": conv("FC8", k=1000, c=4096, p=1, q=1, r=1, s=1),
    }


def run(out: Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """Map every (layer, dataflow) pair, write dataflows.json/.md and the figure."""
    config = config or BenchConfig()
    from joule.targets import load_target

    layers = study_layers()
    names = pick(config.layers, tuple(layers), "layer")
    dataflows = pick(config.dataflows, tuple(DATAFLOW_TARGETS), "dataflow")
    limit = config.time_limit_s if config.time_limit_s is not None else TIME_LIMIT_S
    options = SearchOptions(objective="energy", time_limit_s=limit)
    targets = {
        df: load_target(BENCH_TARGETS / f"dataflow_{DATAFLOW_TARGETS[df]}.yaml") for df in dataflows
    }
    jobs = [
        Job((name, df), layers[name], targets[df], df, "cpsat", options)
        for name in names
        for df in dataflows
    ]
    solved = solve_all(jobs, config.workers, f"dataflow study: {len(jobs)} mappings")
    rows = []
    failures = []
    for s in solved:
        name, df = s.job.key
        if s.result is None:
            failures.append({"layer": name, "dataflow": df, "error": s.error})
            continue
        cost = s.result.cost
        macs = cost.macs
        by_level = level_breakdown_pj(cost, s.job.target)
        report = s.result.report
        rows.append(
            {
                "layer": name,
                "dataflow": df,
                "target": s.job.target.name,
                "energy_per_mac": cost.energy_pj / macs,
                "breakdown": {lvl: by_level[lvl] / macs for lvl in LEVELS},
                "macs": macs,
                "energy_pj": cost.energy_pj,
                "dram_accesses_per_mac": _dram_words(cost) / macs,
                "cycles": cost.cycles,
                "utilization": cost.utilization,
                "lower_bound_per_mac": cost.lower_bound_pj / macs,
                "mapping": s.result.mapping.to_dict(),
                "solver": {**report.to_dict(), "wall_s": s.wall_s},
            }
        )
    data: dict[str, Any] = {
        "suite": "dataflows",
        "batch": BATCH,
        "time_limit_s": limit,
        "mapper": "cpsat",
        "objective": "energy",
        "targets": {
            df: str(BENCH_TARGETS / f"dataflow_{DATAFLOW_TARGETS[df]}.yaml") for df in dataflows
        },
        "machine": machine(),
        "layers": rows,
        "failures": failures,
        "summary": summarise(rows),
    }
    from joule.bench.suite_plots import dataflow_figure

    plots = {"dataflows.png": dataflow_figure(rows, [LABELS[d] for d in dataflows], LABELS)}
    write_suite(out, "dataflows", data, markdown(data), plots)
    return data


def _dram_words(cost: Any) -> int:
    return sum(c.total for c in cost.accesses.get("DRAM", {}).values())


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MAC-weighted energy per MAC over the CONV and the FC layers, and ratios to RS."""
    out: dict[str, Any] = {}
    for group, prefix in (("conv", "CONV"), ("fc", "FC")):
        per_df: dict[str, dict[str, float]] = {}
        for r in rows:
            if not r["layer"].startswith(prefix):
                continue
            acc = per_df.setdefault(r["dataflow"], {"energy_pj": 0.0, "macs": 0})
            acc["energy_pj"] += r["energy_pj"]
            acc["macs"] += r["macs"]
        epm = {df: v["energy_pj"] / v["macs"] for df, v in per_df.items() if v["macs"]}
        ratios = {df: e / epm["rs"] for df, e in epm.items()} if "rs" in epm else {}
        layer_ratios: dict[str, dict[str, float]] = {}
        for r in rows:
            if r["layer"].startswith(prefix):
                rs = next(
                    (x for x in rows if x["layer"] == r["layer"] and x["dataflow"] == "rs"), None
                )
                if rs is not None:
                    layer_ratios.setdefault(r["dataflow"], {})[r["layer"]] = (
                        r["energy_per_mac"] / rs["energy_per_mac"]
                    )
        out[group] = {
            "energy_per_mac": epm,
            "ratio_to_rs": ratios,
            "layer_ratio_to_rs": layer_ratios,
        }
    return out


def markdown(data: dict[str, Any]) -> str:
    """The study as tables: energy per MAC, the breakdown, and RS's margin."""
    rows = data["layers"]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    dfs = list(dict.fromkeys(r["dataflow"] for r in rows))
    cell = {(r["layer"], r["dataflow"]): r for r in rows}
    parts = [
        "# Dataflow study: AlexNet, batch 16, equal area (ISCA'16 setup)",
        "",
        f"CP-SAT, objective energy, {data['time_limit_s']:g} s (deterministic) per mapping. "
        "Energy per MAC in units of one MAC (RF 1, array hop 2, buffer 6, DRAM 200). "
        "Targets: `benchmarks/study_targets/dataflow_*.yaml` (`free` runs on the RS hardware).",
        "",
        "## Energy per MAC",
        "",
        md_table(
            ["layer", *[LABELS[d] for d in dfs]],
            [[lay, *[_f(cell, lay, d) for d in dfs]] for lay in layers],
        ),
    ]
    for group, title in (("conv", "CONV1-5"), ("fc", "FC6-8")):
        s = data["summary"].get(group, {})
        if not s.get("energy_per_mac"):
            continue
        parts += [
            "",
            f"## {title}: MAC-weighted energy per MAC and ratio to RS",
            "",
            md_table(
                ["", *[LABELS[d] for d in dfs if d in s["energy_per_mac"]]],
                [
                    [
                        "energy/MAC",
                        *[f"{s['energy_per_mac'][d]:.2f}" for d in dfs if d in s["energy_per_mac"]],
                    ],
                    [
                        "x RS",
                        *[
                            f"{s['ratio_to_rs'].get(d, float('nan')):.2f}"
                            for d in dfs
                            if d in s["energy_per_mac"]
                        ],
                    ],
                ],
            ),
        ]
    parts += ["", "## Breakdown by level (energy per MAC)", ""]
    parts.append(
        md_table(
            [
                "layer",
                "dataflow",
                *[LEVEL_LABELS[lv] for lv in LEVELS],
                "total",
                "DRAM acc/MAC",
                "util",
                "solver",
                "gap",
                "wall s",
            ],
            [
                [
                    *layer_cells(r),
                    f"{r['energy_per_mac']:.3f}",
                    f"{r['dram_accesses_per_mac']:.4f}",
                    *solver_cells(r),
                ]
                for r in rows
            ],
        )
    )
    parts += ["", "![dataflow study](dataflows.png)"]
    return "\n".join(parts)


def layer_cells(r: dict) -> list[str]:
    """A per-layer table row's first cells: layer, dataflow, pJ/MAC per level."""
    return [r["layer"], LABELS[r["dataflow"]], *[f"{r['breakdown'][lv]:.3f}" for lv in LEVELS]]


def solver_cells(r: dict) -> list[str]:
    """A per-layer table row's last cells: utilisation and how the solve ended."""
    solver = r["solver"]
    return [
        f"{r['utilization']:.2f}",
        solver["status"],
        f"{solver['gap']:.2f}",
        f"{solver['wall_s']:.1f}",
    ]


def _f(cell: dict, layer: str, df: str) -> str:
    r = cell.get((layer, df))
    return "-" if r is None else f"{r['energy_per_mac']:.2f}"
