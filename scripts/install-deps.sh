#!/usr/bin/env bash
# Installs every dependency tessel needs, with apt-get only (plus npm for ONNX Runtime).
# Idempotent: packages already present are skipped, and nothing runs apt-get when all are there.
# Usage: scripts/install-deps.sh [--bench]
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  llvm-19-dev llvm-19-tools libzstd-dev          # codegen (shared libLLVM-19), lit + FileCheck
  libprotobuf-dev protobuf-compiler libonnx-dev   # ONNX frontend (onnx_proto)
  libonnx-testdata                                # ONNX conformance suite
  libgtest-dev libgmock-dev libbenchmark-dev      # unit tests, benchmarks
  libopenblas-dev libdnnl-dev                     # GEMM peers in bench/ (OpenBLAS, oneDNN)
  graphviz                                        # tessel inspect --fusion: SVG pictures (dot)
  libcli11-dev nlohmann-json3-dev                 # CLI, JSON
  python3 python3-numpy python3-onnx              # test helpers (malformed model corpus, checker)
)

# `--bench` (make bench): PyTorch too, for bench/compare (TorchScript of the shared models; the
# torchvision definitions of resnet18 and mobilenet_v2). Left out otherwise: it is large.
for arg in "$@"; do
  case "$arg" in
    --bench) PKGS+=(python3-torch python3-torchvision) ;;
    *) echo "install-deps: unknown option '$arg' (expected --bench)" >&2; exit 2 ;;
  esac
done

# ONNX Runtime for side-by-side checks and benchmarks: npm onnxruntime-node into .deps/ort (its
# CPU library ships in the package; ONNXRUNTIME_NODE_INSTALL=skip stops a GPU download).
ORT_VERSION=1.30.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
install_ort() {
  [ -f "$ROOT/.deps/ort/node_modules/onnxruntime-node/package.json" ] && return 0
  echo "install-deps: npm install onnxruntime-node@$ORT_VERSION into .deps/ort"
  mkdir -p "$ROOT/.deps/ort"
  (cd "$ROOT/.deps/ort" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund "onnxruntime-node@$ORT_VERSION" >/dev/null)
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's nodejs + npm, unless a node with npm is already installed.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  install_ort
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_ort
