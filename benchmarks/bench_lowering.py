"""Time ONNX import + lowering of ResNet-50 (bundled builder), against the cost of ``import tvm``.

Run: ``.venv/bin/python benchmarks/bench_lowering.py [--runs 5]``. Prints the
median seconds of read+check+import+LegalizeOps+lowering and its ratio to the
time ``import tvm`` took in this process (target: well under 3 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="resnet50")
    args = parser.parse_args()

    start = time.perf_counter()
    import tvm  # noqa: F401  (timed on purpose)
    import tvm.relax.frontend.onnx  # noqa: F401

    import_s = time.perf_counter() - start

    from joule.lower import lower_model
    from joule.models import bundled_model

    model = bundled_model(args.model)
    times, network = [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        network = lower_model(model)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    assert network is not None
    print(
        f"{args.model}: {len(network.loopnests)} loop nests, {network.total_macs:,} MACs, "
        f"{len(network.unmapped_ops)} unmapped ops"
    )
    print(f"import tvm (+relax onnx frontend): {import_s:.3f} s")
    print(
        f"import + lowering, median of {args.runs}: {median:.3f} s "
        f"({median / import_s:.2f}x import tvm; min {min(times):.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
