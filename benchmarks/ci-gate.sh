#!/usr/bin/env bash
# The regression gate of docs/ci.md: run the CI suite on the packaged data, check it against the committed
# baseline. Exit status: 0 nothing regressed, 1 something did (the summary names the cells and figures),
# 2 bad input (e.g. a baseline measured with another protocol). Run from the repository root.
set -euo pipefail
GENBENCH=${GENBENCH:-genbench}          # e.g. GENBENCH=".venv/bin/genbench"
OUT=${OUT:-results/ci}                  # the run folder; replaced on every call
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one torch thread: on a shared 2-core runner two threads spin-wait for each other

rm -rf "$OUT"
$GENBENCH run --config benchmarks/ci.toml --out "$OUT"
$GENBENCH check "$OUT" --baseline benchmarks/baseline.json --config benchmarks/ci.toml \
    --markdown "$OUT/check.md" --json "$OUT/check.json" --junit "$OUT/junit.xml"
