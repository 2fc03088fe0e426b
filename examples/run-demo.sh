#!/usr/bin/env bash
# The demo: tessel runs the bundled digits CNN (8x8 handwritten digits, 10 classes) on 24 test
# images and prints its predictions and accuracy.
set -euo pipefail
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "== tessel: digits_cnn.onnx on $(basename "$here")/digits_images.npy (reference interpreter)"
"$BUILD/bin/tessel" accuracy "$here/digits_cnn.onnx" \
  --images "$here/digits_images.npy" --labels "$here/digits_labels.npy" --print-predictions
