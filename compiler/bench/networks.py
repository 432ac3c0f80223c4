"""Six networks on every bundled target: energy, energy/MAC, bound, cycles, utilisation, time.

Each (network, target) pair is one ``compile_model`` run (CP-SAT, objective
energy, dataflow ``free``): layers of the same shape are solved once, distinct
ones in parallel. The per-layer budget is chosen so that the whole suite
(6 networks x 4 targets, ~370 distinct layer solves) finishes within 15 minutes
on 2 cores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from joule.bench.common import BenchConfig, machine, md_table, pick, write_suite

NETWORKS = ("alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "bert_layer")
TIME_LIMIT_S = 0.5


def run(out: Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """Compile every network for every target and tabulate the totals."""
    config = config or BenchConfig()
    from joule.driver import compile_model
    from joule.errors import JouleError
    from joule.lower import lower_model
    from joule.targets import bundled_targets, load_target

    names = pick(config.networks, NETWORKS, "network")
    target_names = pick(config.targets, tuple(bundled_targets()), "target")
    limit = config.time_limit_s if config.time_limit_s is not None else TIME_LIMIT_S
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for net in names:
        network = lower_model(net)
        for tname in target_names:
            target = load_target(tname)
            row: dict[str, Any] = {"network": net, "target": tname, "macs": network.total_macs}
            try:
                sched = compile_model(network, target, time_limit=limit, workers=config.workers)
            except JouleError as err:
                row["error"] = err.message()
                rows.append(row)
                continue
            totals = sched.totals()
            cycles = totals["cycles"]
            solvers = [layer.solver for layer in sched.layers if layer.shared_with is None]
            row.update(
                {
                    "layers": len(sched.layers),
                    "unique_layers": len(solvers),
                    "energy_pj": totals["energy_pj"],
                    "energy_per_mac_pj": totals["energy_pj"] / totals["macs"],
                    "lower_bound_pj": totals["lower_bound_pj"],
                    "energy_over_bound": totals["energy_pj"] / totals["lower_bound_pj"],
                    "cycles": cycles,
                    "utilization": totals["macs"] / (cycles * target.pes),
                    "solve_time_s": sched.time_s,
                    "optimal_layers": sum(s["status"] == "OPTIMAL" for s in solvers),
                    "max_gap": max((s["gap"] for s in solvers), default=0.0),
                    "energy_by_level_pj": _by_level(sched),
                }
            )
            rows.append(row)
    data = {
        "suite": "networks",
        "mapper": "cpsat",
        "objective": "energy",
        "dataflow": "free",
        "time_limit_s": limit,
        "workers": config.workers,
        "total_time_s": time.perf_counter() - start,
        "machine": machine(),
        "results": rows,
    }
    write_suite(out, "networks", data, markdown(data), _plots(rows))
    return data


def _by_level(sched: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer in sched.layers:
        for lvl, roles in layer.cost.energy_breakdown_pj.items():
            out[lvl] = out.get(lvl, 0.0) + sum(roles.values())
    out["MAC"] = sum(layer.cost.mac_energy_pj for layer in sched.layers)
    return out


def markdown(data: dict[str, Any]) -> str:
    rows = data["results"]
    table = []
    for r in rows:
        if "error" in r:
            table.append(
                [r["network"], r["target"], f"{r['macs']:,}", "error: " + r["error"], *[""] * 8]
            )
            continue
        table.append(
            [
                r["network"],
                r["target"],
                f"{r['macs']:,}",
                f"{r['energy_pj']:.4g}",
                f"{r['energy_per_mac_pj']:.3f}",
                f"{r['lower_bound_pj']:.4g}",
                f"{r['energy_over_bound']:.2f}",
                f"{r['cycles']:,}",
                f"{r['utilization']:.1%}",
                f"{r['unique_layers']}/{r['layers']}",
                f"{r['optimal_layers']}",
                f"{r['solve_time_s']:.1f}",
            ]
        )
    head = [
        "network",
        "target",
        "MACs",
        "energy pJ",
        "pJ/MAC",
        "bound pJ",
        "x bound",
        "cycles",
        "util",
        "solved/layers",
        "optimal",
        "time s",
    ]
    return "\n".join(
        [
            "# Networks on every bundled target",
            "",
            f"CP-SAT, objective energy, dataflow free, {data['time_limit_s']:g} s (deterministic) "
            f"per distinct layer, {data['workers']} worker processes; whole suite "
            f"{data['total_time_s']:.0f} s wall on {data['machine']['cpus']} CPUs. "
            "`bound` is the sum of every layer's certified energy bound (its optimum where the "
            "proof search completes, else the best of the proof's, CP-SAT's and the compulsory, "
            "spatial and off-chip bounds of docs/cost-model.md); `x bound` = energy / bound. "
            "Energies of `eyeriss` are pJ (Accelergy 65 nm); the other targets use normalised "
            "costs (1 MAC = 1). `util` = MACs / (cycles x PEs).",
            "",
            md_table(head, table),
            "",
            "![energy per MAC](networks_energy.png)",
            "",
            "![utilisation](networks_utilization.png)",
        ]
    )


def _plots(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    from joule.bench.suite_plots import grouped_bars

    ok = [r for r in rows if "error" not in r]
    epm: dict[str, dict[str, float]] = {}
    util: dict[str, dict[str, float]] = {}
    for r in ok:
        epm.setdefault(r["network"], {})[r["target"]] = r["energy_over_bound"]
        util.setdefault(r["network"], {})[r["target"]] = 100 * r["utilization"]
    return {
        "networks_energy.png": grouped_bars(
            epm,
            ylabel="energy / certified lower bound",
            title="Mapped energy relative to the lower bound, per network and target",
        ),
        "networks_utilization.png": grouped_bars(
            util,
            ylabel="PE utilisation (%)",
            title="PE utilisation per network and target",
            fmt="{:.0f}",
        ),
    }
