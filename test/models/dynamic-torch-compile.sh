#!/usr/bin/env bash
# PyTorch models whose output shapes depend on the data (torch.nonzero, masked selection x[x > 0],
# and boxes[torchvision.ops.nms(...)] when python3-torchvision is installed), exported to ONNX,
# compiled at -O3 and run through the artifact at 1 and 2 threads: every output must have
# PyTorch's shape and values (docs/compile.md, "Outputs whose shape depends on the data").
# Skips (exit 77) without python3-torch.
set -euo pipefail
TESSEL=$1
HERE=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
  echo "SKIP: python3-torch / python3-onnx are not installed (scripts/install-deps.sh --bench)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
names=$(/usr/bin/python3 "$HERE/export-dynamic-torch.py" "$out" 2>/dev/null)
for name in $names; do
  "$TESSEL" compile "$out/$name.onnx" -O3 -o "$out/$name.tsl" > /dev/null
  inputs=()
  for f in "$out/$name".*.npy; do
    n=${f#"$out/$name."}; n=${n%.npy}
    if "$TESSEL" inspect "$out/$name.tsl" | grep -q "^input $n:"; then inputs+=(--input "$n=$f"); fi
  done
  for threads in 1 2; do
    TESSEL_NUM_THREADS=$threads "$TESSEL" run "$out/$name.tsl" "${inputs[@]}" \
      --output-dir "$out/$name.t$threads" > /dev/null
    for got in "$out/$name.t$threads"/*.npy; do
      o=$(basename "$got" .npy)
      /usr/bin/python3 - "$got" "$out/$name.$o.npy" "$name" "$o" "$threads" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
ok = got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
print(f"{sys.argv[3]} {sys.argv[4]} threads={sys.argv[5]}: {got.dtype}{list(got.shape)},",
      "PyTorch", f"{want.dtype}{list(want.shape)}:", "ok" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
PY
    done
  done
done
