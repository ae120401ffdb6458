#!/usr/bin/env bash
# GPU check, run on a machine with one CUDA GPU from the repository root (packages: torch,
# torchvision and what pyproject lists; wheels of torch-fidelity and mlxtend in .whl/ are
# installed to /tmp/site when present, for machines without a package index).
#   1. every built-in model trains, samples and evaluates on CUDA (2 epochs, mnist5k);
#   2. the README's quick-start grid on the GPU, timed end to end;
#   3. the test suite on a machine where --device auto picks the GPU.
# Writes results under $OUT (default results/gpu-check).
set -uo pipefail
OUT=${OUT:-results/gpu-check}
mkdir -p "$OUT"
source benchmarks/gpu_env.sh  # wheels from .whl/, PYTHONPATH, cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torch_fidelity; print('torch', torch.__version__, torch.cuda.get_device_name(), 'torch-fidelity', torch_fidelity.__version__)"
stamp() { date +%s.%N; }

t0=$(stamp)
python3 -m genbench.cli run --models ae,vae,convvae,gan,dcgan,cgan,cdcgan,wgan-gp,vaegan --epochs 2 \
  --device cuda --out "$OUT/zoo" >"$OUT/zoo.log" 2>&1
echo "zoo: exit $? in $(python3 -c "print(round($(stamp)-$t0,1))") s"
t0=$(stamp)
python3 -m genbench.cli run --models gan,vae,ae,dcgan --grid z_dim=32,64 --epochs 5 --device cuda \
  --out "$OUT/quickstart" >"$OUT/quickstart.log" 2>&1
echo "quickstart: exit $? in $(python3 -c "print(round($(stamp)-$t0,1))") s"
python3 - "$OUT" <<'PY'
import sys, pandas as pd
for run in ("zoo", "quickstart"):
    df = pd.read_csv(f"{sys.argv[1]}/{run}/results.csv")
    cols = [c for c in ("cell", "status", "device", "train_s", "train_items_per_s", "fid_domain", "error") if c in df]
    print(df[cols].to_string(index=False, max_colwidth=60))
PY
python3 -m pytest -q -p no:cacheprovider tests >"$OUT/pytest.log" 2>&1
echo "pytest: exit $?"; tail -25 "$OUT/pytest.log"
