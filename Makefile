# tessel: the two commands.  `make demo` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test demo clean docs bench-gemm-peers bench-gemm

all: build

deps:
	./scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	./examples/run-demo.sh $(BUILD)

docs: build
	./scripts/update-docs.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# GEMM peers (OpenBLAS, oneDNN) at 1 and 2 threads, then a GFLOP/s summary (bench/README.md).
# OPENBLAS_CORETYPE=SkylakeX: Debian's OpenBLAS 0.3.21 does not know this CPU and would pick
# its AVX2 Haswell kernels; SkylakeX selects the AVX-512 ones.
bench-gemm-peers: deps $(BUILD)/build.ninja
	cmake -S . -B $(BUILD) >/dev/null  # finds OpenBLAS/oneDNN installed after the first configure
	cmake --build $(BUILD) -j $(JOBS) --target gemm-peers
	OPENBLAS_CORETYPE=SkylakeX $(BUILD)/bin/gemm-peers $(BENCH_ARGS)

# tessel's TE-scheduled GEMM against OpenBLAS and oneDNN (bench/README.md, "tessel's GEMM"):
# Google Benchmark over every shape and thread count, then the same engines measured
# interleaved (medians, ratio to oneDNN), which ends with one line per thread count:
#   gemm 1024 threads=T tessel=X GFLOP/s onednn=Y GFLOP/s ratio=R
bench-gemm: deps $(BUILD)/build.ninja
	cmake -S . -B $(BUILD) >/dev/null  # finds OpenBLAS/oneDNN installed after the first configure
	cmake --build $(BUILD) -j $(JOBS) --target gemm-peers gemm-interleaved
	OPENBLAS_CORETYPE=SkylakeX $(BUILD)/bin/gemm-peers $(BENCH_ARGS)
	OPENBLAS_CORETYPE=SkylakeX $(BUILD)/bin/gemm-interleaved $(BENCH_INTERLEAVED_ARGS)

# tessel (compiled artifacts) against ONNX Runtime and PyTorch on the five shared models at 1
# and 2 threads, engines interleaved, with the oneDNN GEMM peak of the same run (bench/README.md,
# "Models against ONNX Runtime and PyTorch"). Writes bench/results.md and bench/results.svg and
# ends with: geomean ORT/tessel threads=1 R1 threads=2 R2 min R_MIN
# BENCH_COMPARE_ARGS passes options (--rounds N --runs N --threads 1,2 --models DIR --quick).
.PHONY: bench deps-bench
deps-bench:
	./scripts/install-deps.sh --bench

bench: deps-bench $(BUILD)/build.ninja
	cmake -S . -B $(BUILD) >/dev/null  # finds OpenBLAS/oneDNN installed after the first configure
	cmake --build $(BUILD) -j $(JOBS) --target tessel TesselRuntime gemm-interleaved gemm-peers
	./bench/compare --build-dir $(BUILD) $(BENCH_COMPARE_ARGS)
