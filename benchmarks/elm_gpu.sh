#!/usr/bin/env bash
# The prepared ELM device run (not yet run: no GPU was lent to the session that wrote it).
# GPU-marked ELM tests, then benchmarks/elm.py on CUDA (reference TorchScript vs neurosim `loop`
# and `cuda_graph` backends; batch 32 as the CPU table, and batch 256). About 3-5 minutes.
# The reference code is git-ignored: carry it (see benchmarks/elm.py for how to get it):
#   run(command="bash benchmarks/elm_gpu.sh", carry=["benchmarks/.elm_reference"], timeout_s=420)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/elm-gpu.txt"
pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | tail -3
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/elm-gpu.txt"
timeout 120 python -m pytest -q -m gpu tests/spiking/test_elm.py tests/backend/test_kernel_contract.py \
  -k "elm or graph" -p no:cacheprovider 2>&1 | tail -15 | tee -a "$OUT/elm-gpu.txt"
timeout 120 python benchmarks/elm.py --device cuda --backend loop cuda_graph --repeats 5 --warmup 2 \
  --out "$OUT/elm-cuda-b32.md" 2>&1 | tail -12
timeout 150 python benchmarks/elm.py --device cuda --backend loop cuda_graph --repeats 5 --warmup 2 \
  --batch 256 --out "$OUT/elm-cuda-b256.md" 2>&1 | tail -12
