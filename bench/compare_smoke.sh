#!/usr/bin/env bash
# ctest bench.compare.smoke: bench/compare --quick on the mlp model only, end to end (compile,
# GEMM peak, the three engines' workers, output check, rounds, report), into a scratch folder of
# the build; passes when it exits 0 and its last line is the geomean line. No timing assertion.
# Exit 77 (skipped) comes from bench/compare itself when the models, node + onnxruntime-node or
# PyTorch are absent.
# Usage: compare_smoke.sh BUILD_DIR MODELS_DIR
set -uo pipefail
BUILD=$1; MODELS=$2
here=$(cd "$(dirname "$0")" && pwd)
out="$BUILD/bench-compare-smoke"
mkdir -p "$out"
"$here/compare" --quick --only mlp --models "$MODELS" --build-dir "$BUILD" --out-dir "$out" \
  --results "$out/results.md" | tee "$out/log.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
last=$(tail -n 1 "$out/log.txt")
if ! [[ "$last" =~ ^geomean\ ORT/tessel\ threads=1\ [0-9]+\.[0-9]{2}\ threads=2\ [0-9]+\.[0-9]{2}\ min\ [0-9]+\.[0-9]{2}$ ]]; then
  echo "FAIL: the last line is not 'geomean ORT/tessel threads=1 R1 threads=2 R2 min R_MIN': '$last'"
  exit 1
fi
for f in results.md results.svg; do
  [ -s "$out/$f" ] || { echo "FAIL: $out/$f was not written"; exit 1; }
done
echo "PASS: $last"
