#!/usr/bin/env bash
# --cuda-graphs on a machine with a CUDA GPU: one call from the repository root, under 220 s in all (the first genbench run trains the domain classifier: ~40 s on an H200 host).
#   1. the fast path on one DCGAN/mnist5k cell: eager fp32, cuda graphs, bf16 + channels_last + cuda graphs,
#      bf16, bf16 + channels_last, + compile (images/s and the ratio to eager as each finishes);
#   2. gan, dcgan, cdcgan and vae for 2 epochs with and without --cuda-graphs, side by side: status,
#      train images/s and domain FID (a failure or a quality difference shows there).
# Every step has its own time limit; one that fails or runs out does not stop the next. Logs under $OUT
# (default results/gpu-graphs).
set -uo pipefail
OUT=${OUT:-results/gpu-graphs}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  timeout 30 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || echo "wheels: install failed (exit $?)"
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export GENBENCH_CACHE=${GENBENCH_CACHE:-/tmp/genbench-cache} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"
t0=$(date +%s)
timeout 45 python3 benchmarks/bench_scale.py --gpu --gpu-parts fastpath --timed-epochs 3 \
  --json "$OUT/fastpath.json" 2>&1 | tee "$OUT/fastpath.log"
echo "bench_scale fastpath: exit ${PIPESTATUS[0]} at $(( $(date +%s) - t0 )) s"
RUN=(python3 -m genbench.cli run --models gan,dcgan,cdcgan,vae --epochs 2 --device cuda --metrics fid)
rm -rf /tmp/g /tmp/e
timeout 80 "${RUN[@]}" --cuda-graphs --out /tmp/g >"$OUT/run-graphs.log" 2>&1
echo "run --cuda-graphs: exit $? at $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/run-graphs.log"
timeout 45 "${RUN[@]}" --out /tmp/e >"$OUT/run-eager.log" 2>&1
echo "run eager: exit $? at $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/run-eager.log"
timeout 15 python3 - <<'EOF' 2>&1 | tee "$OUT/compare.txt"
import pandas as pd

cols = ["model", "status", "train_items_per_s", "fid_domain", "error"]
runs = {}
for name, folder in (("graphs", "/tmp/g"), ("eager", "/tmp/e")):
    try:
        runs[name] = pd.read_csv(f"{folder}/results.csv").reindex(columns=cols).set_index("model")
    except Exception as exc:  # a run that wrote nothing
        print(f"{name}: no results.csv ({type(exc).__name__}: {exc})")
if runs:
    table = pd.concat(runs, axis=1)
    if len(runs) == 2:
        table[("", "speed-up")] = table[("graphs", "train_items_per_s")] / table[("eager", "train_items_per_s")]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 90):
        print(table)
EOF
echo "done at $(( $(date +%s) - t0 )) s"
