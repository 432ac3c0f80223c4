"""Wall time of ``joule compile`` on a whole network (goal: ResNet-50 on eyeriss in <= 60 s).

Lowering and mapping are timed separately; the pass timings come from the
schedule itself. Run on a quiet 2-core machine:

    .venv/bin/python benchmarks/bench_compile.py [--model resnet50] [--time-limit 2]
"""

from __future__ import annotations

import argparse
import time

from joule.defaults import DEFAULT_TIME_LIMIT_S, DEFAULT_WORKERS
from joule.driver import compile_model
from joule.lower import lower_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--target", default="eyeriss")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = parser.parse_args()
    start = time.perf_counter()
    network = lower_model(args.model)
    lowered = time.perf_counter() - start
    schedule = compile_model(network, args.target, time_limit=args.time_limit, workers=args.workers)
    total = time.perf_counter() - start
    unique = sum(lay.shared_with is None for lay in schedule.layers)
    print(
        f"{args.model} on {args.target}: {len(schedule.layers)} layers ({unique} distinct), "
        f"lowering {lowered:.1f} s, mapping {schedule.time_s:.1f} s, total {total:.1f} s; "
        f"passes {', '.join(f'{k} {v:.2f} s' for k, v in schedule.pass_times_s.items())}; "
        f"{schedule.energy_pj / 1e6:.1f} µJ"
    )


if __name__ == "__main__":
    main()
