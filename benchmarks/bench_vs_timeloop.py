"""Joule vs Timeloop on AlexNet CONV1-5, same layers, same eyeriss model, side by side.

Timeloop's results (energy, cycles: tests/data/timeloop/expected.json, taken
from the stats files in shared/reference/timeloop) and its mapper wall times
(shared/reference/timeloop/README.md, 2-core host; default settings, victory
condition 100) are the reference. Joule maps each layer with
``--objective energy`` and ``--objective edp`` and reports energy, EDP and wall
time, and the ratios. Timeloop's energies are its own model's; Joule's model
reproduces them within 0.12 % on these runs (tests/test_timeloop_fidelity.py).

    .venv/bin/python benchmarks/bench_vs_timeloop.py [--time-limit 0.3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions
from joule.targets import load_target
from joule.timeloop import load_problem

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop"
# Mapper wall seconds from shared/reference/timeloop/README.md (default EDP, energy-only).
TIMELOOP_WALL_S = {
    "alexnet_conv1": (11.3, 9.6),
    "alexnet_conv2": (17.7, 23.0),
    "alexnet_conv3": (12.9, 10.3),
    "alexnet_conv4": (13.6, 13.1),
    "alexnet_conv5": (9.9, 15.6),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--time-limit", type=float, default=0.3, help="CP-SAT deterministic seconds per layer"
    )
    args = parser.parse_args()
    expected = json.loads((DATA / "expected.json").read_text())
    target = load_target("eyeriss")
    print(
        f"{'layer':14} {'metric':7} {'Timeloop pJ/MAC':>15} {'Joule pJ/MAC':>13} "
        f"{'ratio':>6} {'Timeloop EDP':>13} {'Joule EDP':>11} {'ratio':>6} "
        f"{'TL wall s':>9} {'Joule s':>8} {'speed-up':>8}"
    )
    for layer, (edp_wall, energy_wall) in TIMELOOP_WALL_S.items():
        nest = load_problem(DATA / expected[layer]["problem"])
        constraints = space_constraints(nest, target)
        for metric, ref_key, wall in (
            ("energy", f"{layer}_energy", energy_wall),
            ("edp", layer, edp_wall),
        ):
            ref = expected[ref_key]
            start = time.perf_counter()
            result = map_layer(
                nest,
                target,
                constraints,
                options=SearchOptions(objective=metric, time_limit_s=args.time_limit),
            )
            seconds = time.perf_counter() - start
            cost = result.cost
            ref_edp = ref["energy_pj"] * ref["cycles"]
            print(
                f"{layer:14} {metric:7} {ref['energy_pj'] / nest.macs:15.3f} "
                f"{cost.energy_pj / nest.macs:13.3f} {cost.energy_pj / ref['energy_pj']:6.3f} "
                f"{ref_edp:13.3e} {cost.edp:11.3e} {cost.edp / ref_edp:6.3f} "
                f"{wall:9.1f} {seconds:8.2f} {wall / seconds:7.1f}x"
            )


if __name__ == "__main__":
    main()
