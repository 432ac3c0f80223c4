"""Regenerate tests/data/timeloop/ from shared/reference/timeloop (run from the repo root).

Copies the AlexNet problem shapes and the mappings Timeloop chose, and extracts
the numbers the fidelity test compares (per level and tensor: reads, fills,
updates, utilized instances; energy, cycles) from each run's stats.txt.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from joule.timeloop.stats import read_stats

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2].parent / "shared" / "reference" / "timeloop"

# run id -> (run folder, file prefix, layer shape, mapping file)
RUNS = {
    **{
        f"alexnet_conv{i}": (f"runs/alexnet_conv{i}", "timeloop-mapper", i, "map.yaml")
        for i in range(1, 6)
    },
    **{
        f"alexnet_conv{i}_energy": (
            f"runs/alexnet_conv{i}/energy_metric",
            "timeloop-mapper",
            i,
            "map.yaml",
        )
        for i in range(1, 6)
    },
    "alexnet_conv3_rs": (
        "runs/alexnet_conv3/rs_fixed_mapping_model",
        "timeloop-model",
        3,
        "map.txt",
    ),
}


def main() -> int:
    if not SHARED.is_dir():
        print(f"no reference data at {SHARED}", file=sys.stderr)
        return 1
    (HERE / "problems").mkdir(exist_ok=True)
    (HERE / "mappings").mkdir(exist_ok=True)
    for i in range(1, 6):
        src = SHARED / "inputs" / "layer_shapes" / "AlexNet" / f"AlexNet_layer{i}.yaml"
        shutil.copyfile(src, HERE / "problems" / f"alexnet_conv{i}.yaml")
    shutil.copyfile(
        SHARED / "inputs" / "rs_alexnet_conv3.mapping.yaml",
        HERE / "mappings" / "rs_alexnet_conv3.mapping.yaml",
    )
    expected = {}
    for run, (folder, prefix, layer, kind) in RUNS.items():
        src = SHARED / folder / f"{prefix}.{kind}"
        shutil.copyfile(src, HERE / "mappings" / f"{run}.{kind}")
        stats = read_stats(SHARED / folder / f"{prefix}.stats.txt")
        expected[run] = {
            "source": f"{folder}/{prefix}.stats.txt",
            "problem": f"problems/alexnet_conv{layer}.yaml",
            "mapping": f"mappings/{run}.{kind}",
            **stats,
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
