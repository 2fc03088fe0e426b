#!/usr/bin/env bash
# Optimizes one shared benchmark model at -O3 with `tessel optimize`, checks that
# onnx.checker.check_model (full_check) accepts the written model, runs it in the reference
# interpreter and compares with PyTorch's output (rtol 1e-3, atol 1e-4) and with the unoptimized
# interpreter's output (rtol 1e-4, atol 1e-5: optimization must not change the numbers).
# Skips (exit 77) when ../shared/models is absent (users' machines); CI has it.
set -euo pipefail
TESSEL=$1; NAME=$2; MODELS=$3; LEVEL=${4:-3}
if [ ! -f "$MODELS/$NAME.onnx" ]; then
  echo "SKIP: $MODELS/$NAME.onnx not found (the shared benchmark models are not on this machine)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
"$TESSEL" optimize "$MODELS/$NAME.onnx" -O"$LEVEL" -o "$out/opt.onnx"
/usr/bin/python3 - "$out/opt.onnx" <<'PY'
import sys, onnx
onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)
print("check_model: ok")
PY
"$TESSEL" run "$out/opt.onnx" --input "input=$MODELS/$NAME.in.npy" --output-dir "$out/opt"
"$TESSEL" compare "$out/opt/output.npy" "$MODELS/$NAME.out.npy" --rtol 1e-3 --atol 1e-4
"$TESSEL" run "$MODELS/$NAME.onnx" --input "input=$MODELS/$NAME.in.npy" --output-dir "$out/ref" >/dev/null
"$TESSEL" compare "$out/opt/output.npy" "$out/ref/output.npy" --rtol 1e-4 --atol 1e-5
# ONNX Runtime (npm onnxruntime-node, installed by scripts/install-deps.sh) loads the written
# model and agrees with tessel.
ORT_DIR=$(cd "$(dirname "$0")/../.." && pwd)/.deps/ort/node_modules
if [ -d "$ORT_DIR/onnxruntime-node" ] && command -v node >/dev/null; then
  NODE_PATH=$ORT_DIR node "$(dirname "$0")/ort-run.js" "$out/opt.onnx" "$MODELS/$NAME.in.npy" "$out/ort.npy"
  "$TESSEL" compare "$out/opt/output.npy" "$out/ort.npy" --rtol 1e-3 --atol 1e-4
else
  echo "note: onnxruntime-node not installed (scripts/install-deps.sh); ONNX Runtime check not run"
fi
