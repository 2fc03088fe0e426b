#!/usr/bin/env bash
# Compiles one shared benchmark model at -O3 into a .tsl artifact, runs the artifact at 1 and 2
# threads and compares with PyTorch's output (rtol 1e-3, atol 1e-4); then the same through
# `tessel run MODEL.onnx --jit`. Skips (exit 77) when ../shared/models is absent.
set -euo pipefail
TESSEL=$1; NAME=$2; MODELS=$3
if [ ! -f "$MODELS/$NAME.onnx" ]; then
  echo "SKIP: $MODELS/$NAME.onnx not found (the shared benchmark models are not on this machine)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$TESSEL" compile "$MODELS/$NAME.onnx" -O3 -o "$out/$NAME.tsl"
for threads in 1 2; do
  TESSEL_NUM_THREADS=$threads "$TESSEL" run "$out/$NAME.tsl" --input "input=$MODELS/$NAME.in.npy" \
    --output-dir "$out/t$threads"
  "$TESSEL" compare "$out/t$threads/output.npy" "$MODELS/$NAME.out.npy" --rtol 1e-3 --atol 1e-4
done
"$TESSEL" run "$MODELS/$NAME.onnx" --jit --input "input=$MODELS/$NAME.in.npy" --output-dir "$out/jit"
"$TESSEL" compare "$out/jit/output.npy" "$MODELS/$NAME.out.npy" --rtol 1e-3 --atol 1e-4
