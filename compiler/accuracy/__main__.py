"""``python -m joule.accuracy``: measure the table of docs/accuracy.md (and the search).

python -m joule.accuracy                      # the accuracy table, seeds 0-4
python -m joule.accuracy --search             # plus the mixed-precision search (toy energy)
python -m joule.accuracy --json rows.json     # the study() rows as JSON too
"""

from __future__ import annotations

import argparse
import json
import time

from joule.accuracy.measure import DEFAULT_SEEDS, float_model_path, study
from joule.accuracy.search import search, toy_energy

_UNIFORM = (8, 6, 5, 4, 3, 2)
_ONE_SIDED = ("w4a8", "w2a8", "w8a4", "w8a2", "w4af", "w2af", "wfa4", "wfa2")
_GRAINS = ("tensor", "channel")
TABLE = (
    ["float"]
    + [f"w{b}a{b}-{g}-{c}" for c in ("mse", "max") for g in _GRAINS for b in _UNIFORM]
    + [f"{p}-{g}-mse" for g in _GRAINS for p in _ONE_SIDED]
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m joule.accuracy", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--configs", nargs="+", default=TABLE)
    parser.add_argument("--search", action="store_true", help="also run the search")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = study(args.configs, args.seeds)
    print(f"float model (seed 0, batch 1): {float_model_path(0)}")
    print(f"seeds {args.seeds}, held-out split, {time.perf_counter() - start:.1f} s\n")
    print("| config | granularity | clipping | accuracy % (mean ± std) | drop vs float |")
    print("|---|---|---|---|---|")
    for r in rows:
        name = r["config"].split("-")[0]
        gran, clip = ("-", "-") if name == "float" else (r["granularity"], r["calibration"])
        print(
            f"| {name} | {gran} | {clip} | {r['accuracy_mean']:.2f} ± {r['accuracy_std']:.2f} "
            f"| {r['drop_mean']:+.2f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.search:
        start = time.perf_counter()
        seeds = args.seeds[:3]
        result = search(toy_energy, args.max_drop, seeds=seeds)
        print(f"\nsearch (toy energy, max drop {args.max_drop} on val, seeds {seeds}): "
              f"{result.evaluations} configurations measured, "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        print(f"bits (weights, activations): {result.bits}")
        print(f"energy ratio vs uniform 8-bit: {result.energy_ratio:.2f}x")
        print(
            f"val: {result.val_accuracy:.2f} vs {result.baseline_val_accuracy:.2f}; "
            f"test: {result.test['accuracy_mean']:.2f} ± {result.test['accuracy_std']:.2f} vs "
            f"{result.baseline_test['accuracy_mean']:.2f} ± "
            f"{result.baseline_test['accuracy_std']:.2f}"
        )


if __name__ == "__main__":
    main()
