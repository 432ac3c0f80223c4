#!/usr/bin/env bash
# The issue-16 headline study, as run for docs/hardware-sweeps.md (2 cores, shared).
# Run from the repository root; ../shared/models holds resnet18.onnx and mobilenet_v2.onnx.
#   bash benchmarks/sweeps/run_resnet18_mobilenet.sh [OUT]   (default /tmp/joule-sweeps)
set -euo pipefail
OUT=${1:-/tmp/joule-sweeps}
J=.venv/bin/joule
PY=.venv/bin/python
mkdir -p "$OUT"

# 1. The full sweep: 108 design points, process pool of 2, per-layer limit 0.1 (in the
#    file's mapper block). For the kill/resume demonstration it was killed (kill -9 of
#    its process group) after 11 min and rerun with the same --out: the finished points
#    come from OUT/full/points.jsonl, the killed points' finished layers from the cache.
/usr/bin/time -f "full sweep: %e s wall" \
  $J sweep benchmarks/sweeps/resnet18_mobilenet.yaml --out "$OUT/full" --workers 2
# (after a kill and resume, give the pieces' total with --wall SECONDS)
$PY benchmarks/sweeps/sweep_stats.py summary "$OUT/full" --name resnet18_mobilenet_sweep
# Rerun of the finished sweep: re-solves nothing (0 run now, every point reused).
/usr/bin/time -f "rerun: %e s wall" \
  $J sweep benchmarks/sweeps/resnet18_mobilenet.yaml --out "$OUT/full" --workers 2

# 2. Process pool vs Ray on the 32-point subset, both from scratch on the same code.
/usr/bin/time -f "pool subset: %e s wall" \
  $J sweep benchmarks/sweeps/resnet18_mobilenet_subset.yaml --out "$OUT/subset-pool" --workers 2
/usr/bin/time -f "ray subset: %e s wall" \
  $J sweep benchmarks/sweeps/resnet18_mobilenet_subset.yaml --out "$OUT/subset-ray" --ray
$PY benchmarks/sweeps/sweep_stats.py compare "$OUT/subset-pool" "$OUT/subset-ray"

# 3. NSGA-II vs random sampling at equal evaluations (AlexNet, 640-point grid).
$PY benchmarks/sweeps/nsga_vs_random.py --evaluations 24 --population 8 --seeds 0 \
  --out "$OUT/nsga_vs_random"
