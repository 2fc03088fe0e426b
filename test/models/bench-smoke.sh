#!/usr/bin/env bash
# `tessel bench` on the bundled example model (examples/digits_cnn.onnx): compiled from a .tsl
# with --profile, compiled in memory, and --interp; each ends with the machine-readable line
# (docs/compile.md). No timing assertions: only the format and that every number is present.
set -euo pipefail
TESSEL=$1; SRC=$2
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
model="$SRC/examples/digits_cnn.onnx"
"$TESSEL" compile "$model" -O3 -o "$out/digits.tsl"
num='[0-9]+\.[0-9]{6}'
line_re="^bench [^ ]+ engine=(compiled|interp) threads=[0-9]+ runs=[0-9]+ median_ms=$num p90_ms=$num p99_ms=$num max_ms=$num min_ms=$num mean_ms=$num\$"
check() { # $1: output; $2: engine; $3: threads; $4: runs
  local last; last=$(printf '%s\n' "$1" | tail -n 1)
  echo "$last"
  [[ "$last" =~ $line_re ]] || { echo "FAIL: last line is not the bench line"; exit 1; }
  [[ "$last" == *" engine=$2 threads=$3 runs=$4 "* ]] || { echo "FAIL: expected engine=$2 threads=$3 runs=$4"; exit 1; }
  # The statistics are ordered: min <= median <= p90 <= p99 <= max, and min <= mean <= max.
  printf '%s\n' "$last" | tr ' ' '\n' | awk -F= '/_ms=/ { v[$1] = $2 + 0 } END {
    ok = v["min_ms"] <= v["median_ms"] && v["median_ms"] <= v["p90_ms"] && v["p90_ms"] <= v["p99_ms"] &&
         v["p99_ms"] <= v["max_ms"] && v["min_ms"] <= v["mean_ms"] && v["mean_ms"] <= v["max_ms"]
    exit ok ? 0 : 1 }' || { echo "FAIL: statistics out of order"; exit 1; }
}
o=$("$TESSEL" bench "$out/digits.tsl" --threads 2 --runs 20 --warmup 2 --profile)
printf '%s\n' "$o"
check "$o" compiled 2 20
printf '%s\n' "$o" | grep '^profile: ' >/dev/null || { echo "FAIL: no profile table"; exit 1; }
printf '%s\n' "$o" | grep -E '^  [0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+% +[0-9.]+ +[0-9.-]+  k[0-9]+_' >/dev/null \
  || { echo "FAIL: no kernel rows in the profile"; exit 1; }
o=$("$TESSEL" bench "$model" --threads 1 --runs 5)
check "$o" compiled 1 5
o=$("$TESSEL" bench "$model" --interp --runs 3 --warmup 1)
check "$o" interp 1 3
