"""Peak memory of ``joule compile``: ResNet-50 and one BERT-base encoder layer.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--time-limit 5]``. Each
network is compiled in a fresh child process (no cache) and its peak resident
set size is read from ``getrusage``: the compiling process itself and, apart,
the largest solver worker. Memory must stay bounded: the parent holds the
lowered network, and each worker one layer's CP-SAT model at a time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from joule.defaults import DEFAULT_WORKERS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BERT_BASE = {"seq": 128, "d_model": 768, "heads": 12, "d_ff": 3072}  # one encoder layer


def _measure(model: str, time_limit: float, workers: int) -> dict[str, float]:
    """Compile ``model`` in this process (called in a child) and report peak RSS in MiB."""
    import time

    from joule.driver import compile_model

    source: object = model
    if model == "bert-layer":
        from joule.models import transformer

        source = transformer(**BERT_BASE)
    start = time.perf_counter()
    schedule = compile_model(source, "eyeriss", time_limit=time_limit, workers=workers)
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "layers": len(schedule.layers),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(own, 1),
        "worker_peak_rss_mib": round(workers_peak, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--models", nargs="*", default=["resnet50", "bert-layer"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.time_limit, args.workers)))
        return 0
    for model in args.models:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                model,
                "--time-limit",
                str(args.time_limit),
                "--workers",
                str(args.workers),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        record = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{model:12s} {record['layers']:3d} layers {record['seconds']:7.1f} s  "
            f"peak RSS {record['peak_rss_mib']:7.1f} MiB (largest worker "
            f"{record['worker_peak_rss_mib']:.1f} MiB)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
