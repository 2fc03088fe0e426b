#!/usr/bin/env bash
# Reruns the ONNX conformance suites, writes docs/conformance.md (per-test report) and, with
# --reset-expected, rewrites conformance/expected-failures.txt from today's failures (each with
# its reason). The ctest check then fails on any change: the list should only ever shrink.
set -euo pipefail
BUILD=${BUILD:-build}
DATA=${DATA:-/usr/share/libonnx-testdata/data}
cd "$(dirname "$0")/.."
out=$(mktemp)
"$BUILD/bin/tessel" conformance -j "$(nproc)" -v --report docs/conformance.md \
  "$DATA/node" "$DATA/pytorch-converted" "$DATA/pytorch-operator" "$DATA/simple" | tee "$out" | grep -v '^PASS\|^SKIP\|^FAIL'
if [ "${1:-}" = "--reset-expected" ]; then
  {
    echo "# ONNX conformance tests expected to fail, each with the reason (scripts/update-conformance.sh)."
    echo "# ctest fails when one of these passes (remove it) or a test not listed fails."
    grep '^FAIL ' "$out" | sed -E 's/^FAIL ([^:]+): (.*)$/\1  \2/' | cut -c1-300 | sort
  } > conformance/expected-failures.txt
  echo "wrote conformance/expected-failures.txt ($(grep -vc '^#' conformance/expected-failures.txt) entries)"
fi
rm -f "$out"
