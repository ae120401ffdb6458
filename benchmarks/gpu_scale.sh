#!/usr/bin/env bash
# Scale-out check on a machine with a CUDA GPU (and real CPU cores), one command from the repository
# root (packages: torch, torchvision and what pyproject lists; wheels of torch-fidelity and mlxtend in
# .whl/ are installed to /tmp/site when present, for machines without a package index). Under 6 minutes:
#   1. the README's grid on the CPU cores: serial vs --executor process with 2 and 8 workers (2 epochs);
#   2. 8 DCGAN/mnist5k cells one at a time vs packed on one GPU (--gpus 0 --cells-per-gpu 8), and the
#      fast path (bf16, channels_last, torch.compile) vs the eager loop on one DCGAN cell;
#   3. the fast-path tests of the suite where --device auto picks the GPU.
# Writes the logs and figures (JSON) under $OUT (default results/gpu-scale).
set -uo pipefail
OUT=${OUT:-results/gpu-scale}
mkdir -p "$OUT"
source benchmarks/gpu_env.sh  # wheels from .whl/, PYTHONPATH, cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
t0=$(date +%s)
timeout 150 python3 benchmarks/bench_scale.py --executors serial,process:2,process:8 --epochs 2 \
  --json "$OUT/cpu-scale.json" 2>&1 | tee "$OUT/cpu.log"
echo "bench_scale cpu: exit ${PIPESTATUS[0]} at $(( $(date +%s) - t0 )) s"
timeout 185 python3 benchmarks/bench_scale.py --gpu --epochs 8 --timed-epochs 3 --json "$OUT/gpu-scale.json" 2>&1 \
  | tee "$OUT/gpu.log"
echo "bench_scale --gpu: exit ${PIPESTATUS[0]} at $(( $(date +%s) - t0 )) s"
timeout 45 python3 -m pytest -q -p no:cacheprovider tests/test_executors.py -k "bf16 or fp16 or update" \
  >"$OUT/pytest.log" 2>&1
echo "pytest (fast path on the GPU): exit $? at $(( $(date +%s) - t0 )) s"; tail -5 "$OUT/pytest.log"
