#!/usr/bin/env bash
# The demo: tessel runs the bundled digits CNN (8x8 handwritten digits, 10 classes) on 24 test
# images and prints its predictions and accuracy; then compiles it (`tessel compile -O3`), runs
# the artifact on the same images, and prints accuracy, latency (the median of `tessel bench`,
# one thread) and size, reference interpreter vs compiled, as a table.
set -euo pipefail
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
tessel="$BUILD/bin/tessel"
model="$here/digits_cnn.onnx"
data=(--images "$here/digits_images.npy" --labels "$here/digits_labels.npy")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

echo "== tessel: digits_cnn.onnx on $(basename "$here")/digits_images.npy (reference interpreter)"
"$tessel" accuracy "$model" "${data[@]}" --print-predictions | tee "$work/interp.txt"

echo
echo "== tessel compile digits_cnn.onnx -O3"
"$tessel" compile "$model" -O3 -o "$work/digits_cnn.tsl"

echo
echo "== the compiled artifact on the same images (1 thread)"
TESSEL_NUM_THREADS=1 "$tessel" accuracy "$work/digits_cnn.tsl" "${data[@]}" | tee "$work/compiled.txt"

echo
echo "== latency: tessel bench (1 thread, seeded random input)"
"$tessel" bench "$model" --interp | tail -n 1 | tee "$work/bench-interp.txt"
"$tessel" bench "$work/digits_cnn.tsl" --threads 1 | tail -n 1 | tee "$work/bench-compiled.txt"

accuracy() { sed -nE 's/^accuracy: ([0-9]+\/[0-9]+) = ([0-9.]+)%.*/\1 (\2%)/p' "$1"; }
median() { sed -nE 's/.* median_ms=([0-9.]+).*/\1/p' "$1"; }
p99() { sed -nE 's/.* p99_ms=([0-9.]+).*/\1/p' "$1"; }
size() { stat -c %s "$1"; }

mi=$(median "$work/bench-interp.txt"); mc=$(median "$work/bench-compiled.txt")
echo
echo "== digits_cnn: reference interpreter vs compiled"
printf '%-12s %-16s %12s %12s %14s\n' engine accuracy "median ms" "p99 ms" "size bytes"
printf '%-12s %-16s %12s %12s %14s\n' interpreter "$(accuracy "$work/interp.txt")" "$mi" \
  "$(p99 "$work/bench-interp.txt")" "$(size "$model")"
printf '%-12s %-16s %12s %12s %14s\n' compiled "$(accuracy "$work/compiled.txt")" "$mc" \
  "$(p99 "$work/bench-compiled.txt")" "$(size "$work/digits_cnn.tsl")"
awk -v a="$mi" -v b="$mc" 'BEGIN { if (b > 0) printf "compiled is %.1fx faster (median latency, 1 thread); size: .onnx model vs self-contained .tsl (code + weights + plans)\n", a / b }'
