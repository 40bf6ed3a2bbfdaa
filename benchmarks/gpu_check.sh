#!/usr/bin/env bash
# One prepared device run (a lent GPU machine; see the developers' guide): GPU-marked tests and the
# CUDA benchmarks, in one call. The device has no network: first, on the development machine,
#   make device-wheels        # pure-Python peers and our runtime deps into device_data/wheels
# then run this script through the device tool with carry=["device_data"].
# Tables land in $OUT (when set) and benchmarks/results/.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
if [ -d device_data/wheels ]; then
  pip install --quiet --no-index --find-links device_data/wheels --no-deps device_data/wheels/*.whl 2>&1 | tail -3
fi
pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | tail -3
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
timeout 240 python -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -25 | tee "$OUT/gpu-tests.txt"
timeout 150 python benchmarks/lif_layer.py --device cuda --n 4096 16384 --steps 500 --dtype fp32 bf16 \
  --out "$OUT/lif_layer-cuda.md" 2>&1 | tail -20
timeout 120 python benchmarks/hashgrid.py --device cuda --out "$OUT/hashgrid-cuda.md" 2>&1 | tail -20
timeout 90 python benchmarks/neurbf.py --device cuda 2>&1 | tail -20; cp benchmarks/results/neurbf-cuda.md "$OUT/" 2>/dev/null
