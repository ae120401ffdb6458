# Sourced by the GPU scripts (gpu_check.sh, gpu_scale.sh) from the repository root: installs the wheels in
# .whl/ (torch-fidelity, mlxtend: a lent GPU machine has no package index) to /tmp/site when present, and
# sets PYTHONPATH, the genbench cache and unbuffered output.
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export GENBENCH_CACHE=${GENBENCH_CACHE:-/tmp/genbench-cache} PYTHONUNBUFFERED=1
