#!/usr/bin/env bash
# Models beyond the shared five: torchvision definitions with random weights (channel shuffle,
# squeeze-and-excitation with SiLU, grouped convolutions, fire modules), exported to ONNX by
# PyTorch, compiled at -O3 and run through the artifact at 1 and 2 threads, compared with
# PyTorch's output. Random weights give outputs of any scale (efficientnet_b0's are ~1e-14), so
# the tolerance is relative to the output's largest magnitude: |got - want| <= 1e-3 max|want|.
# Skips (exit 77) without python3-torch and python3-torchvision.
set -euo pipefail
TESSEL=$1
HERE=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  echo "SKIP: python3-torch / python3-torchvision are not installed (scripts/install-deps.sh --bench)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
MODELS="squeezenet1_1 shufflenet_v2_x0_5 efficientnet_b0 regnet_x_400mf"
/usr/bin/python3 "$HERE/export-torchvision.py" "$out" $MODELS 2>/dev/null
for name in $MODELS; do
  "$TESSEL" compile "$out/$name.onnx" -O3 -o "$out/$name.tsl" > /dev/null
  for threads in 1 2; do
    TESSEL_NUM_THREADS=$threads "$TESSEL" run "$out/$name.tsl" --input "input=$out/$name.in.npy" \
      --output-dir "$out/$name.t$threads" > /dev/null
    /usr/bin/python3 - "$out/$name.t$threads/output.npy" "$out/$name.out.npy" "$name" "$threads" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
scale = float(np.abs(want).max())
err = float(np.abs(got - want).max())
ok = got.shape == want.shape and err <= 1e-3 * scale
print(f"{sys.argv[3]} threads={sys.argv[4]}: max |got - want| {err:.3g}, max |want| {scale:.3g}:",
      "ok" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
PY
  done
done
