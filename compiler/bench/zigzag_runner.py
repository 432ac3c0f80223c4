"""Run ZigZag on one ONNX model and print a JSON summary (no Joule imports: any venv with zigzag).

Usage: ``python -m joule.bench.zigzag_runner MODEL.onnx HARDWARE.yaml MAPPING.yaml DUMP_DIR``
(or run the file directly). Prints ``{"energy_pj", "latency_cycles", "wall_s", "layers":
[{"name", "energy_pj", "mac_energy_pj", "mem_energy_pj", "latency_cycles", "spatial",
"temporal"}]}``; ZigZag optimises energy.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


def run(model: str, hardware: str, mapping: str, dump: str) -> dict[str, Any]:
    """ZigZag's own search (LOMA, energy) and its own cost model, on ``model``."""
    from zigzag.api import get_hardware_performance_zigzag

    start = time.perf_counter()
    energy, latency, cmes = get_hardware_performance_zigzag(
        model,
        hardware,
        mapping,
        opt="energy",
        dump_folder=dump,
        loma_show_progress_bar=False,
    )
    wall = time.perf_counter() - start
    layers = []
    for cme in cmes[0][1]:
        best = cme[0]
        layers.append(
            {
                "name": str(best.layer.name),
                "energy_pj": float(best.energy_total),
                "mac_energy_pj": float(best.mac_energy),
                "mem_energy_pj": float(best.mem_energy),
                "latency_cycles": float(best.latency_total2),
                "spatial": str(best.spatial_mapping.mapping_dict_origin),
                "temporal": str(best.temporal_mapping.mapping_dic_origin),
            }
        )
    return {
        "energy_pj": float(energy),
        "latency_cycles": float(latency),
        "wall_s": wall,
        "layers": layers,
    }


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)
    result = run(*argv[:4])
    print("ZIGZAG_JSON " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
