#!/usr/bin/env bash
# The digits CNN compiled at -O3 must classify the 450 test images exactly as the reference
# interpreter does (the same count correct; at least PyTorch's 98%), through a .tsl artifact
# and through `accuracy --jit`. Skips (exit 77) when ../shared/models is absent.
set -euo pipefail
TESSEL=$1; MODELS=$2
if [ ! -f "$MODELS/digits_test_x.npy" ]; then
  echo "SKIP: $MODELS/digits_test_x.npy not found (the shared models are not on this machine)"
  exit 77
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
data=(--images "$MODELS/digits_test_x.npy" --labels "$MODELS/digits_test_y.npy" --min-accuracy 0.98)
count() { grep '^accuracy: ' | sed -E 's/^accuracy: ([0-9]+\/[0-9]+).*/\1/'; }
interp=$("$TESSEL" accuracy "$MODELS/digits_cnn.onnx" "${data[@]}" | tee /dev/stderr | count)
"$TESSEL" compile "$MODELS/digits_cnn.onnx" -O3 -o "$out/digits_cnn.tsl"
compiled=$("$TESSEL" accuracy "$out/digits_cnn.tsl" "${data[@]}" | tee /dev/stderr | count)
jit=$("$TESSEL" accuracy "$MODELS/digits_cnn.onnx" --jit "${data[@]}" | tee /dev/stderr | count)
echo "interpreter $interp, compiled $compiled, jit $jit"
if [ -z "$interp" ] || [ "$interp" != "$compiled" ] || [ "$interp" != "$jit" ]; then
  echo "FAIL: the compiled model's accuracy differs from the interpreter's"
  exit 1
fi
