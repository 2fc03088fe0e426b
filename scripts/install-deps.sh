#!/usr/bin/env bash
# Installs every dependency tessel needs, with apt-get only. Idempotent: packages already
# present are skipped, and nothing runs apt-get when all are there.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  llvm-19-dev llvm-19-tools libzstd-dev          # codegen (shared libLLVM-19), lit + FileCheck
  libprotobuf-dev protobuf-compiler libonnx-dev   # ONNX frontend (onnx_proto)
  libonnx-testdata                                # ONNX conformance suite
  libgtest-dev libgmock-dev libbenchmark-dev      # unit tests, benchmarks
  libcli11-dev nlohmann-json3-dev                 # CLI, JSON
  python3 python3-numpy python3-onnx              # test helpers (malformed model corpus, checker)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
