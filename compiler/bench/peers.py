"""Joule side by side with ZigZag (KU Leuven; PyPI ``zigzag-dse``) on ZigZag's Eyeriss-like chip.

ZigZag runs its own mapping search (LOMA, objective energy) and its own cost
model on the bundled ``eyeriss_like`` hardware; Joule maps the same networks on
that hardware translated into a Joule target
(``benchmarks/study_targets/zigzag_eyeriss.yaml``). The table gives each tool's energy
in its own model and each tool's wall time.

ZigZag's chosen mappings are *not* re-scored in Joule's model: ZigZag unrolls
dims by non-divisors with padding (e.g. K = 384 as 13.71 x 28 over 14 columns)
and keeps a separate loop-level boundary per operand, neither of which a Joule
mapping can express exactly (perfect factorisation, one chain of levels).

ZigZag runs in a subprocess of the current interpreter (or ``JOULE_ZIGZAG_PYTHON``,
e.g. a separate venv); without it the suite says how to install it and exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from joule.bench.common import BENCH_TARGETS, BenchConfig, machine, md_table, pick, write_suite
from joule.defaults import DEFAULT_TIME_LIMIT_S

NETWORKS = ("alexnet", "resnet18", "mobilenet_v2")
INSTALL_HINT = (
    "ZigZag is not installed for this interpreter. Install the optional extra: "
    "`pip install -e '.[peers]'` (PyPI zigzag-dse and six), or point JOULE_ZIGZAG_PYTHON "
    "at a Python that has it (`python3 -m venv /tmp/zz && /tmp/zz/bin/pip install zigzag-dse "
    "six onnx`)."
)


def zigzag_python() -> str | None:
    """An interpreter that can import zigzag, or None."""
    python = os.environ.get("JOULE_ZIGZAG_PYTHON", sys.executable)
    probe = subprocess.run(
        [python, "-c", "import zigzag.api"], capture_output=True, text=True, check=False
    )
    return python if probe.returncode == 0 else None


def _zigzag_inputs(python: str) -> tuple[str, str]:
    code = (
        "import os, zigzag; d = os.path.join(os.path.dirname(zigzag.__file__), 'inputs'); "
        "print(os.path.join(d, 'hardware', 'eyeriss_like.yaml')); "
        "print(os.path.join(d, 'mapping', 'default.yaml'))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    hardware, mapping = out.stdout.split()
    return hardware, mapping


def run_zigzag(python: str, model: Path, dump: Path) -> dict[str, Any]:
    """ZigZag on ``model`` in a subprocess; its JSON summary plus the process's wall time."""
    hardware, mapping = _zigzag_inputs(python)
    runner = Path(__file__).with_name("zigzag_runner.py")
    start = time.perf_counter()
    proc = subprocess.run(
        [python, str(runner), str(model), hardware, mapping, str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    line = next((x for x in proc.stdout.splitlines() if x.startswith("ZIGZAG_JSON ")), None)
    if proc.returncode != 0 or line is None:
        from joule.errors import JouleError

        raise JouleError(
            f"ZigZag failed on {model.name} (exit {proc.returncode})",
            hint=(proc.stderr.strip().splitlines() or ["no output"])[-1],
        )
    data = json.loads(line[len("ZIGZAG_JSON ") :])
    data["process_wall_s"] = wall
    return data


def run(out: Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """ZigZag and Joule on each network; write peers.json/.md and a comparison plot."""
    config = config or BenchConfig()
    names = pick(config.networks, NETWORKS, "network")
    python = zigzag_python()
    if python is None:
        print(INSTALL_HINT, file=sys.stderr)
        data = {"suite": "peers", "available": False, "message": INSTALL_HINT, "results": []}
        write_suite(out, "peers", data, "# Peers: ZigZag\n\n" + INSTALL_HINT, {})
        return data

    import onnx
    from joule.driver import compile_model
    from joule.models import bundled_model
    from joule.targets import load_target

    target = load_target(BENCH_TARGETS / "zigzag_eyeriss.yaml")
    limit = config.time_limit_s if config.time_limit_s is not None else DEFAULT_TIME_LIMIT_S
    rows = []
    with tempfile.TemporaryDirectory(prefix="joule-peers-") as tmp:
        for net in names:
            model = Path(tmp) / f"{net}.onnx"
            onnx.save(bundled_model(net), model)
            zz = run_zigzag(python, model, Path(tmp) / f"zigzag-{net}")
            start = time.perf_counter()
            sched = compile_model(model, target, time_limit=limit, workers=config.workers)
            joule_wall = time.perf_counter() - start
            totals = sched.totals()
            rows.append(
                {
                    "network": net,
                    "macs": totals["macs"],
                    "zigzag": {
                        "energy_pj": zz["energy_pj"],
                        "latency_cycles": zz["latency_cycles"],
                        "search_wall_s": zz["wall_s"],
                        "wall_s": zz["process_wall_s"],
                        "layers": zz["layers"],
                    },
                    "joule": {
                        "energy_pj": totals["energy_pj"],
                        "cycles": totals["cycles"],
                        "lower_bound_pj": totals["lower_bound_pj"],
                        "wall_s": joule_wall,
                        "layers": [
                            {"name": ly.nest.name, "energy_pj": ly.cost.energy_pj}
                            for ly in sched.layers
                        ],
                    },
                    "zigzag_mapping_in_joule_pj": None,
                    "energy_ratio_joule_to_zigzag": totals["energy_pj"] / zz["energy_pj"],
                    "time_ratio_joule_to_zigzag": joule_wall / zz["process_wall_s"],
                }
            )
    data = {
        "suite": "peers",
        "available": True,
        "peer": "zigzag-dse " + _zigzag_version(python),
        "hardware": "zigzag/inputs/hardware/eyeriss_like.yaml",
        "joule_target": str(BENCH_TARGETS / "zigzag_eyeriss.yaml"),
        "joule_time_limit_s": limit,
        "workers": config.workers,
        "machine": machine(),
        "results": rows,
    }
    write_suite(out, "peers", data, markdown(data), _plots(rows))
    return data


def _zigzag_version(python: str) -> str:
    code = "import importlib.metadata as m; print(m.version('zigzag-dse'))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def markdown(data: dict[str, Any]) -> str:
    rows = data["results"]
    table = [
        [
            r["network"],
            f"{r['macs']:,}",
            f"{r['zigzag']['energy_pj']:.4g}",
            f"{r['joule']['energy_pj']:.4g}",
            f"{r['energy_ratio_joule_to_zigzag']:.2f}",
            f"{r['joule']['lower_bound_pj']:.4g}",
            f"{r['zigzag']['wall_s']:.1f}",
            f"{r['joule']['wall_s']:.1f}",
            f"{r['time_ratio_joule_to_zigzag']:.2f}",
            "n/a",
        ]
        for r in rows
    ]
    head = [
        "network",
        "MACs",
        "ZigZag pJ (ZigZag model)",
        "Joule pJ (Joule model)",
        "Joule/ZigZag",
        "Joule bound pJ",
        "ZigZag wall s",
        "Joule wall s",
        "time Joule/ZigZag",
        "ZigZag mapping in Joule",
    ]
    return "\n".join(
        [
            f"# Peers: Joule vs {data['peer']} on ZigZag's eyeriss_like",
            "",
            "ZigZag: its own search (LOMA, objective energy, defaults) and cost model on "
            "`eyeriss_like.yaml` with its `default.yaml` mapping hints. Joule: CP-SAT, "
            f"objective energy, {data['joule_time_limit_s']:g} s (deterministic) per distinct "
            f"layer, {data['workers']} worker processes, on `benchmarks/study_targets/"
            "zigzag_eyeriss.yaml` (the same hardware translated; approximations listed in the "
            "file). Wall times include each tool's model loading and parsing. ZigZag's "
            "mappings are not re-scored in Joule: they use padded (non-divisor) unrollings and "
            "per-operand level boundaries that a Joule mapping cannot express.",
            "",
            md_table(head, table),
            "",
            "![peers](peers.png)",
        ]
    )


def _plots(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    from joule.bench.suite_plots import grouped_bars

    energy = {
        r["network"]: {
            "ZigZag (own model)": r["zigzag"]["energy_pj"] / r["macs"],
            "Joule (own model)": r["joule"]["energy_pj"] / r["macs"],
            "Joule lower bound": r["joule"]["lower_bound_pj"] / r["macs"],
        }
        for r in rows
    }
    return {
        "peers.png": grouped_bars(
            energy, ylabel="pJ per MAC", title="ZigZag vs Joule on ZigZag's eyeriss_like"
        )
    }
