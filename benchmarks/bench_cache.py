"""Warm vs cold result cache: ``joule compile`` ResNet-50 twice on one fresh cache.

Run: ``.venv/bin/python benchmarks/bench_cache.py [--model resnet50] [--time-limit 5]``.
Each compile is a fresh ``joule compile`` process, timed end to end (Python
start-up, TVM import and lowering included): the first solves every distinct
layer and stores it; the second finds them all in the cache and only lowers,
validates and re-scores them. Prints both times, the ratio (target: >= 10x)
and whether the two schedule.json files are identical apart from time fields.
Uses a temporary cache, never the user's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from joule.defaults import DEFAULT_WORKERS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--target", default="eyeriss")
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = parser.parse_args()

    from joule.schedule import strip_times

    with tempfile.TemporaryDirectory(prefix="joule-bench-cache-") as tmp:
        times, schedules = [], []
        for run in ("cold", "warm"):
            out = Path(tmp) / run
            command = [
                sys.executable, "-m", "compiler", "compile", args.model,
                "--target", args.target, "--out", str(out), "--cache", str(Path(tmp) / "c.sqlite"),
                "--time-limit", str(args.time_limit), "--workers", str(args.workers),
            ]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.run(
                command,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            note = next((ln for ln in proc.stderr.splitlines() if ln.startswith("cache:")), "")
            print(f"{run}: {times[-1]:8.2f} s  {note}", flush=True)
            data = json.loads((out / "schedule.json").read_text())
            schedules.append(json.dumps(strip_times(data), sort_keys=True))
    ratio = times[0] / times[1]
    same = schedules[0] == schedules[1]
    print(f"{args.model} on {args.target}: warm cache {ratio:.1f}x faster (target >= 10x)")
    print(f"schedule.json identical apart from time fields: {same}")
    return 0 if same and ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
