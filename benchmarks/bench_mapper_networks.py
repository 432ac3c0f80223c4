"""CP-SAT vs Timeloop-like random sampling on whole networks: energy, bound, gap, time.

For every model (the shape-only torchvision exports in ../shared/models when
present, else the bundled ResNet-18 and transformer block) on one target, the
same layers are mapped by ``--mapper cpsat`` (per-layer limit in deterministic
seconds) and by ``--mapper random --samples N``, side by side in one run.

    .venv/bin/python benchmarks/bench_mapper_networks.py [--time-limit 10] [--samples 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from compiler.driver import compile_model
from compiler.lower import lower_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def models() -> list[tuple[str, object]]:
    if SHARED.is_dir():
        return [(p.stem, p) for p in sorted(SHARED.glob("*.onnx"))]
    return [("resnet18", "resnet18"), ("transformer", "transformer")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="eyeriss")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="model names to run")
    args = parser.parse_args()
    print(
        f"target {args.target}; CP-SAT {args.time_limit} det-s/layer; "
        f"random {args.samples} samples/layer; {args.workers} workers"
    )
    header = (
        f"{'network':14} {'layers':>6} {'CP-SAT µJ':>11} {'bound µJ':>10} {'max gap':>8} "
        f"{'optimal':>8} {'CP-SAT s':>9} {'random µJ':>11} {'random s':>9} {'ratio':>6}"
    )
    print(header)
    for name, source in models():
        if args.only and name not in args.only:
            continue
        network = lower_model(source)
        start = time.perf_counter()
        exact = compile_model(
            network, args.target, time_limit=args.time_limit, workers=args.workers
        )
        exact_s = time.perf_counter() - start
        start = time.perf_counter()
        sampled = compile_model(
            network, args.target, mapper="random", samples=args.samples, workers=args.workers
        )
        sampled_s = time.perf_counter() - start
        solved = [lay for lay in exact.layers if lay.shared_with is None]
        gap = max(lay.solver["gap"] for lay in solved)
        optimal = sum(lay.solver["status"] == "OPTIMAL" for lay in solved)
        t = exact.totals()
        print(
            f"{name:14} {len(exact.layers):6} {t['energy_pj'] / 1e6:11.1f} "
            f"{t['lower_bound_pj'] / 1e6:10.1f} {100 * gap:7.1f}% {optimal:4}/{len(solved):<3} "
            f"{exact_s:9.1f} {sampled.energy_pj / 1e6:11.1f} {sampled_s:9.1f} "
            f"{exact.energy_pj / sampled.energy_pj:6.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
