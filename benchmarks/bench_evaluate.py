"""Cost-model throughput: mapping evaluations per second (target: >= 10,000/s).

Run: ``.venv/bin/python benchmarks/bench_evaluate.py [--seconds 3] [--profile]``.
Scores a realistic row-stationary mapping of a ResNet-50 3x3 convolution
(N1 K64 C64 P56 Q56 R3 S3) on ``eyeriss``: ``evaluate`` (validation included)
and ``score`` (the counts alone, as a mapper calls it on pre-validated
candidates). ``--profile`` prints the cProfile hot spots of ``evaluate``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joule.cost import evaluate, score  # noqa: E402
from joule.cost.nest import flatten  # noqa: E402
from joule.cost.validate import check_capacity, check_structure  # noqa: E402
from joule.ir.builders import conv2d  # noqa: E402
from joule.mapping import LevelLoops, Loop, Mapping  # noqa: E402
from joule.targets.loader import load_target  # noqa: E402

TARGET_PER_S = 10_000

NEST = conv2d("resnet50_3x3", n=1, k=64, c=64, p=56, q=56, r=3, s=3)
# Row stationary as on Eyeriss: a filter row (R) and 8 output channels per PE,
# output columns Q across the 14 PE columns, filter columns S and 4 input-channel
# groups down a column (12 PEs); output rows P and the rest in time.
MAPPING = Mapping(
    (
        LevelLoops("DRAM", (Loop("K", 2), Loop("C", 4), Loop("Q", 4))),
        LevelLoops(
            "shared_glb",
            (Loop("K", 4), Loop("C", 4), Loop("P", 56)),
            (Loop("Q", 14, "X"), Loop("S", 3, "Y"), Loop("C", 4, "Y")),
        ),
        LevelLoops("ifmap_spad"),
        LevelLoops("weights_spad", (Loop("R", 3),)),
        LevelLoops("psum_spad", (Loop("K", 8),)),
    )
)


def _rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second over at least ``seconds`` of wall time."""
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            call()
        count += 200
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    target = load_target("eyeriss")
    result = evaluate(NEST, target, MAPPING)
    print(
        f"layer {NEST.name}: {NEST.macs:,} MACs on {target.name}; "
        f"{result.energy_pj / NEST.macs:.3f} pJ/MAC, {result.cycles:,} cycles, "
        f"utilization {100 * result.utilization:.1f} %"
    )

    names = tuple(lvl.name for lvl in target.levels)
    check_structure(NEST, target, MAPPING)
    flat = flatten(MAPPING, names)
    check_capacity(NEST, target, flat)
    full = _rate(lambda: evaluate(NEST, target, MAPPING), args.seconds)
    counts = _rate(lambda: score(NEST, target, flat, check=False), args.seconds)
    print(f"evaluate (validate + score): {full:,.0f} evaluations/s")
    print(f"score (pre-validated):       {counts:,.0f} evaluations/s")
    ok = full >= TARGET_PER_S
    print(f"target {TARGET_PER_S:,}/s: {'met' if ok else 'MISSED'}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5000):
            evaluate(NEST, target, MAPPING)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
