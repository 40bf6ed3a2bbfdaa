#!/usr/bin/env bash
# The prepared GPU measurement of issue 13 (lego_400, 5 minutes of training, torch vs Triton
# hash-grid backends, rays/s). About 10 minutes of device time in all.
#
# On the development machine, first put the scene beside the working tree (the device has no
# network and no ../shared):
#   mkdir -p device_data/nerf && cp -r ../shared/data/nerf/lego_400 device_data/nerf/
# then run this script through the device tool with carry=["device_data"], timeout ~660 s.
# Results land in $OUT (when set) and benchmarks/results/.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export NEUROSIM_DATA=${NEUROSIM_DATA:-device_data}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | tail -3
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"

COMMON=(scene=nerf/lego_400 device=cuda "model_options={max_resolution: 2048}" grid_resolution=128
        render_steps=1024 rays=4096 target_samples=262144 max_rays=65536 steps=100000
        log_every=100 checkpoint_every=0 turntable_frames=40)

# 1. the target run: Triton hash grid, 5 minutes of training, PSNR over all 13 test views at the marks
timeout 420 neurosim run view_synthesis "${COMMON[@]}" backend=triton \
  max_train_seconds=300 "eval_seconds=[15, 30, 60, 120, 180, 240, 300]" \
  --run-dir "$OUT/vs_triton" 2>&1 | tail -8 | tee "$OUT/view_synthesis-triton.txt"

# 2. the same config on the torch backend for 60 s (PSNR at equal time, rays/s)
timeout 150 neurosim run view_synthesis "${COMMON[@]}" backend=torch \
  max_train_seconds=60 "eval_seconds=[15, 30, 60]" turntable_frames=0 \
  --run-dir "$OUT/vs_torch" 2>&1 | tail -8 | tee "$OUT/view_synthesis-torch.txt"

# 3. rays/s side by side in one process, round-robin (after 300 warm-up steps each)
timeout 150 python benchmarks/view_synthesis.py --device cuda --scene nerf/lego_400 \
  --backends torch triton --warmup 300 --rounds 5 --steps 20 \
  --out "$OUT/view_synthesis-cuda.md" "model_options={max_resolution: 2048}" grid_resolution=128 \
  render_steps=1024 2>&1 | tail -8

# the PSNR-vs-time curves of both runs, for the docs
python - "$OUT" <<'EOF' | tee "$OUT/view_synthesis-curves.md"
import sys
from pathlib import Path
from experiments.results import open_results
out = Path(sys.argv[1])
for name in ("vs_triton", "vs_torch"):
    try:
        r = open_results(out / name)
    except Exception as exc:  # a run that did not finish
        print(name, "no results:", exc)
        continue
    _, psnr = r.metric("test_psnr")
    _, secs = r.metric("curve_seconds")
    _, rays = r.metric("rays_per_second")
    print(f"## {name}: final {r.summary}")
    print("| training s | test PSNR dB |\n|---|---|")
    for s, p in zip(secs, psnr):
        print(f"| {s:.0f} | {p:.2f} |")
    print(f"median rays/s over logged steps: {sorted(rays)[len(rays) // 2]:,.0f}\n")
EOF
rm -rf "$OUT"/vs_*/checkpoints
