#!/usr/bin/env bash
# Runs one shared benchmark model in the reference interpreter and compares with PyTorch's output.
# Skips (exit 77) when ../shared/models is absent (users' machines); CI has it.
set -euo pipefail
TESSEL=$1; NAME=$2; MODELS=$3
if [ ! -f "$MODELS/$NAME.onnx" ]; then
  echo "SKIP: $MODELS/$NAME.onnx not found (the shared benchmark models are not on this machine)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$TESSEL" run "$MODELS/$NAME.onnx" --input "input=$MODELS/$NAME.in.npy" --output-dir "$out"
"$TESSEL" compare "$out/output.npy" "$MODELS/$NAME.out.npy" --rtol 1e-3 --atol 1e-4
