"""The ISCA'16 dataflow comparison at equal area, with energies and areas from the model.

Chen, Emer, Sze (ISCA 2016, Sec. VI-VII) compare RS, WS, three OS variants and NLR on
256 PEs with the same total storage area (RS: 512 B RF per PE + 128 kB buffer). The
``dataflows`` suite sets that split by hand (an assumed 2x RF/SRAM area ratio) and uses
the paper's normalised costs. Here every dataflow is an instance of
``benchmarks/study_targets/isoarea_template.yaml``, priced by
:mod:`joule.hardware.components`:

* per-PE storage: one ``regfile`` per tensor, RS 12/224/20 words (512 B), the others
  one-word operand registers (depth 1) that pay the regfile law's energy and area;
* the global buffer's depth is *solved* so that PEs x RF area + buffer area equals
  RS's (the SRAM law is linear in capacity, so two instantiations give the slope);
* MAC, RF, SRAM and DRAM energies per access from the component laws (65 nm, 16 bit);
  the array hop is 2 x the model's MAC energy (ISCA'16 Table IV; the model has no NoC
  law).

The mapping reuses the ``dataflows`` driver: the same AlexNet layers (batch 16), the
same ``--dataflow`` constraints per dataflow (:func:`joule.passes.dataflow.space_constraints`),
CP-SAT with objective energy, :func:`joule.bench.common.solve_all`.
"""

from __future__ import annotations

import math
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
from joule.bench.dataflows import (
    BATCH,
    LABELS,
    LEVEL_LABELS,
    LEVELS,
    layer_cells,
    solver_cells,
    study_layers,
    summarise,
)
from joule.hardware import DesignInstance, components, load_template
from joule.passes.mapper.outcome import SearchOptions

TEMPLATE = BENCH_TARGETS / "isoarea_template.yaml"
TIME_LIMIT_S = 10.0  # as the dataflows suite
WORD_BITS = 16
NODE_NM = 65.0
# Per-PE register files (input, weight, output words) by dataflow. RS: the 512 B split of
# dataflow_rs.yaml (JSSC'17-like spads); the others: one-word operand registers.
RS_RF = (12, 224, 20)
ONE_WORD = (1, 1, 1)
PE_STORAGE = {
    "ws": ONE_WORD,
    "os_a": ONE_WORD,
    "os_b": ONE_WORD,
    "os_c": ONE_WORD,
    "nlr": ONE_WORD,
    "rs": RS_RF,
}
RS_GLB_BYTES = 128 * 1024  # the RS baseline's buffer (ISCA'16: 128 kB)
RF_LEVELS = ("ifmap_rf", "weights_rf", "psum_rf")
HOP_TO_MAC = 2.0  # ISCA'16 Table IV: array (inter-PE) hop = 2x a MAC
ISO_TOLERANCE = 1e-3  # relative storage-area mismatch allowed (one buffer row is ~5e-6)
PAPER = {"conv": (1.4, 2.5), "fc": 1.3}


def hop_pj() -> float:
    mac = components.intmac(WORD_BITS, WORD_BITS, NODE_NM)
    return HOP_TO_MAC * mac.read_pj


def storage_um2(inst: DesignInstance) -> float:
    """On-chip storage area: every level but the MAC (DRAM has none)."""
    return sum(a.um2_total for a in inst.area if a.component != "mac")


def _params(rf: tuple[int, int, int], glb_depth: int) -> dict[str, Any]:
    return {
        "ifmap_rf_depth": rf[0],
        "weights_rf_depth": rf[1],
        "psum_rf_depth": rf[2],
        "glb_depth": glb_depth,
        "hop_pj": round(hop_pj(), 6),
    }


def iso_designs(dataflows: tuple[str, ...] = tuple(PE_STORAGE)) -> dict[str, DesignInstance]:
    """Each dataflow's instance, its buffer depth solved for RS's storage area."""
    template = load_template(TEMPLATE)
    width = int(template.parameters["glb_width_bits"])
    rs_depth = RS_GLB_BYTES * 8 // width
    reference = storage_um2(template.instantiate(_params(RS_RF, rs_depth)))
    designs: dict[str, DesignInstance] = {}
    solved: dict[tuple[int, int, int], DesignInstance] = {}
    for df in dataflows:
        rf = PE_STORAGE[df]
        if rf not in solved:
            a0 = storage_um2(template.instantiate(_params(rf, rs_depth)))
            a1 = storage_um2(template.instantiate(_params(rf, 2 * rs_depth)))
            slope = (a1 - a0) / rs_depth  # um^2 per buffer row (the SRAM law is linear)
            depth = rs_depth + math.floor((reference - a0) / slope + 1e-9)
            inst = template.instantiate(_params(rf, depth))
            mismatch = abs(storage_um2(inst) - reference) / reference
            if mismatch > ISO_TOLERANCE:
                raise AssertionError(f"{df}: storage area off RS's by {mismatch:.2%}")
            solved[rf] = inst
        designs[df] = solved[rf]
    return designs


def design_row(df: str, inst: DesignInstance, reference_um2: float) -> dict[str, Any]:
    area = {a.component: a.um2_total / 1e6 for a in inst.area}
    glb = inst.target.level("global_buffer")
    return {
        "dataflow": df,
        "target": inst.target.name,
        "rf_words": dict(zip(("input", "weight", "output"), PE_STORAGE[df], strict=True)),
        "rf_bytes_per_pe": sum(PE_STORAGE[df]) * WORD_BITS // 8,
        "glb_depth": inst.parameters["glb_depth"],
        "glb_kib": glb.capacity_words * WORD_BITS / 8 / 1024,
        "area_mm2": {
            "mac": area.get("mac", 0.0),
            "rf": sum(area.get(n, 0.0) for n in RF_LEVELS),
            "global_buffer": area.get("global_buffer", 0.0),
            "storage": storage_um2(inst) / 1e6,
            "total": inst.area_mm2,
        },
        "storage_vs_rs": storage_um2(inst) / reference_um2 - 1.0,
        "energy_pj": {
            "mac": inst.target.mac_energy_pj,
            "glb_read": glb.read_pj,
            **{f"{n}_read": inst.target.level(n).read_pj for n in RF_LEVELS},
            "dram_read": inst.target.level("DRAM").read_pj,
            "hop": glb.network.hop_energy_pj,
        },
    }


def run(out: Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """Solve the iso-area designs, map every (layer, dataflow), write isoarea.json/.md/.png."""
    config = config or BenchConfig()
    layers = study_layers()
    names = pick(config.layers, tuple(layers), "layer")
    dataflows = pick(config.dataflows, tuple(PE_STORAGE), "dataflow")
    limit = config.time_limit_s if config.time_limit_s is not None else TIME_LIMIT_S
    options = SearchOptions(objective="energy", time_limit_s=limit)
    designs = iso_designs(tuple(dict.fromkeys((*dataflows, "rs"))))
    reference = storage_um2(designs["rs"])
    jobs = [
        Job((name, df), layers[name], designs[df].target, df, "cpsat", options)
        for name in names
        for df in dataflows
    ]
    solved = solve_all(jobs, config.workers, f"iso-area study: {len(jobs)} mappings")
    mac_pj = designs["rs"].target.mac_energy_pj
    rows, failures = [], []
    for s in solved:
        name, df = s.job.key
        if s.result is None:
            failures.append({"layer": name, "dataflow": df, "error": s.error})
            continue
        cost = s.result.cost
        macs = cost.macs
        by_level = level_breakdown_pj(cost, s.job.target)
        by_level["rf"] = sum(by_level.pop(n) for n in RF_LEVELS)
        rows.append(
            {
                "layer": name,
                "dataflow": df,
                "target": s.job.target.name,
                "energy_pj": cost.energy_pj,
                "macs": macs,
                "energy_per_mac": cost.energy_pj / macs,
                # in units of one MAC's energy (the paper's normalisation), by level
                "breakdown": {lv: by_level[lv] / macs / mac_pj for lv in LEVELS},
                "cycles": cost.cycles,
                "utilization": cost.utilization,
                "lower_bound_per_mac": cost.lower_bound_pj / macs,
                "mapping": s.result.mapping.to_dict(),
                "solver": {**s.result.report.to_dict(), "wall_s": s.wall_s},
            }
        )
    data: dict[str, Any] = {
        "suite": "isoarea",
        "batch": BATCH,
        "time_limit_s": limit,
        "mapper": "cpsat",
        "objective": "energy",
        "template": str(TEMPLATE),
        "technology_nm": NODE_NM,
        "word_bits": WORD_BITS,
        "mac_pj": mac_pj,
        "designs": [design_row(df, designs[df], reference) for df in dataflows],
        "machine": machine(),
        "layers": rows,
        "failures": failures,
        "summary": summarise(rows),
        "paper": {"conv_ratio_range": list(PAPER["conv"]), "fc_ratio_min": PAPER["fc"]},
    }
    from joule.bench.suite_plots import dataflow_figure

    plots = {"isoarea.png": dataflow_figure(rows, [LABELS[d] for d in dataflows], LABELS)}
    write_suite(out, "isoarea", data, markdown(data), plots)
    return data


def _paper(group: str, df: str) -> str:
    if df == "rs":
        return "1.00"
    lo, hi = PAPER["conv"]
    return f"{lo}-{hi}" if group == "conv" else f">= {PAPER['fc']}"


def markdown(data: dict[str, Any]) -> str:
    """Designs (storage split, area), energy per layer normalised to RS, the paper's ratios."""
    rows = data["layers"]
    designs = data["designs"]
    dfs = [d["dataflow"] for d in designs]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    cell = {(r["layer"], r["dataflow"]): r for r in rows}
    summary = data["summary"]

    def ratio(layer: str, df: str) -> str:
        r, rs = cell.get((layer, df)), cell.get((layer, "rs"))
        return "-" if r is None or rs is None else f"{r['energy_pj'] / rs['energy_pj']:.2f}"

    def total(group: str, df: str) -> str:
        v = summary.get(group, {}).get("ratio_to_rs", {}).get(df)
        return "-" if v is None else f"**{v:.2f}**"

    e = designs[0]["energy_pj"]
    parts = [
        "# Iso-area dataflow study: AlexNet, batch 16 (ISCA'16 setup, area model)",
        "",
        f"256 PEs, {data['word_bits']}-bit words, {data['technology_nm']:g} nm; every energy "
        "and area from `compiler/hardware/components.py` via "
        "`benchmarks/study_targets/isoarea_template.yaml`; the buffer depth solved for "
        "equal storage area. CP-SAT, objective energy, "
        f"{data['time_limit_s']:g} s (deterministic) per mapping. MAC = {data['mac_pj']:.3f} pJ; "
        f"array hop = {e['hop']:.3f} pJ (2x MAC); DRAM = {e['dram_read']:g} pJ/word.",
        "",
        "## Designs: storage split and area (mm^2)",
        "",
        md_table(
            [
                "dataflow",
                "RF words/PE (in/w/out)",
                "RF B/PE",
                "buffer kB",
                "buffer pJ/read",
                "RF area",
                "buffer area",
                "storage area",
                "vs RS",
                "MAC area",
            ],
            [
                [
                    LABELS[d["dataflow"]],
                    "/".join(str(v) for v in d["rf_words"].values()),
                    d["rf_bytes_per_pe"],
                    f"{d['glb_kib']:.1f}",
                    f"{d['energy_pj']['glb_read']:.2f}",
                    f"{d['area_mm2']['rf']:.3f}",
                    f"{d['area_mm2']['global_buffer']:.3f}",
                    f"{d['area_mm2']['storage']:.3f}",
                    f"{d['storage_vs_rs']:+.2e}",
                    f"{d['area_mm2']['mac']:.3f}",
                ]
                for d in designs
            ],
        ),
        "",
        "## Energy normalised to RS (per layer; CONV and FC totals MAC-weighted)",
        "",
        md_table(
            ["layer", *[LABELS[d] for d in dfs]],
            [[lay, *[ratio(lay, d) for d in dfs]] for lay in layers]
            + [
                [f"**{title}**", *[total(g, d) for d in dfs]]
                for g, title in (("conv", "CONV1-5"), ("fc", "FC6-8"))
                if summary.get(g, {}).get("ratio_to_rs")
            ]
            + [
                [f"paper, {title}", *[_paper(g, d) for d in dfs]]
                for g, title in (("conv", "CONV"), ("fc", "FC"))
                if summary.get(g, {}).get("ratio_to_rs")
            ],
        ),
        "",
        "## Breakdown by level (energy per MAC, in units of one MAC)",
        "",
        md_table(
            [
                "layer",
                "dataflow",
                *[LEVEL_LABELS[lv] for lv in LEVELS],
                "total",
                "pJ/MAC",
                "util",
                "solver",
                "gap",
                "wall s",
            ],
            [
                [
                    *layer_cells(r),
                    f"{sum(r['breakdown'].values()):.3f}",
                    f"{r['energy_per_mac']:.2f}",
                    *solver_cells(r),
                ]
                for r in rows
            ],
        ),
        "",
        "![iso-area study](isoarea.png)",
    ]
    if data["failures"]:
        parts += [
            "",
            "Failures: "
            + "; ".join(f"{f['layer']} {f['dataflow']}: {f['error']}" for f in data["failures"]),
        ]
    return "\n".join(parts)
