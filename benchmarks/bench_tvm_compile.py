"""TVM compile time of ResNet-18 scheduled by Joule's pass vs the unscheduled module, side by side.

Run: ``.venv/bin/python benchmarks/bench_tvm_compile.py [--image 224] [--runs 3]``.
Maps ResNet-18 on eyeriss once (random mapper: the mapping's quality does not
matter for compile time, its loop structure does), applies the mappings with
``JouleSchedule``, then alternates ``tvm.compile(..., "llvm")`` of the
unscheduled and the scheduled module ``--runs`` times each and prints the
medians and their ratio (scheduled / unscheduled).
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
    parser.add_argument("--image", type=int, default=224, help="input height = width")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", default="eyeriss")
    args = parser.parse_args()

    import tvm
    from joule.driver import compile_model
    from joule.frontend import load_onnx
    from joule.models.resnet import resnet18
    from joule.passes.tvm.emit_module import site_mappings
    from joule.passes.tvm.module_pass import MAPPING_ATTR, JouleSchedule

    model = resnet18(image=args.image)
    start = time.perf_counter()
    schedule = compile_model(model, args.target, mapper="random", samples=200)
    map_s = time.perf_counter() - start
    mod, info = load_onnx(model)
    start = time.perf_counter()
    scheduled = JouleSchedule(args.target, mappings=site_mappings(schedule, mod, info))(mod)
    pass_s = time.perf_counter() - start
    mapped = sum(
        1
        for _gv, f in scheduled.functions_items()
        if MAPPING_ATTR in (getattr(f, "attrs", None) or {})
    )
    plain_s, sched_s = [], []
    for _ in range(args.runs):
        for module, times in ((mod, plain_s), (scheduled, sched_s)):
            start = time.perf_counter()
            tvm.compile(module, target="llvm")
            times.append(time.perf_counter() - start)
    plain, sched = statistics.median(plain_s), statistics.median(sched_s)
    print(
        f"ResNet-18 {args.image}x{args.image} on {args.target}: {len(schedule.layers)} MAC layers, "
        f"{mapped} scheduled PrimFuncs; mapping {map_s:.1f} s, JouleSchedule pass {pass_s:.2f} s"
    )
    print(
        f"tvm.compile llvm, median of {args.runs}: unscheduled {plain:.2f} s, "
        f"scheduled {sched:.2f} s, ratio {sched / plain:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
