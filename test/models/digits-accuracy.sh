#!/usr/bin/env bash
# The digits CNN must reach PyTorch's accuracy (98%) on the 450 test images.
set -euo pipefail
TESSEL=$1; MODELS=$2
if [ ! -f "$MODELS/digits_test_x.npy" ]; then
  echo "SKIP: $MODELS/digits_test_x.npy not found (the shared models are not on this machine)"
  exit 77
fi
"$TESSEL" accuracy "$MODELS/digits_cnn.onnx" --images "$MODELS/digits_test_x.npy" \
  --labels "$MODELS/digits_test_y.npy" --min-accuracy 0.98
