#!/usr/bin/python3
"""tessel worker of bench/compare: compiled artifacts (.tsl) run in-process through the C API of
libtessel_runtime.so (runtime/include/tessel/runtime/tessel.h) via ctypes.

Usage: compare_tessel.py LIBTESSEL_RUNTIME.so, with TESSEL_NUM_THREADS=T in the environment (the
runtime's thread pool reads it when it is created; the worker also calls
tessel_set_num_threads(T) and reports tessel_get_num_threads()). Speaks the worker protocol of
bench/compare (one JSON object per line on stdin, one answer per line on stdout):

  {"op": "load", "name": N, "tsl": PATH, "input": BIN, "shape": [...]}  -> {"ok": true, ...}
  {"op": "run", "name": N, "n": K}          -> {"ok": true, "ns": [K wall times of one call]}
  {"op": "output", "name": N, "path": BIN}  -> writes the output (raw float32) -> {"ok": true}
  {"op": "quit"}

A timed call is one tessel_run with its argument structs built once at load, timed with
time.perf_counter_ns. The Python cost around it (the ctypes call and the two clock reads) is
measured at load as the median time of the same loop around tessel_num_inputs, a C API call
that does no work, and reported as "overhead_ns" (about a microsecond: 1-2% of the 0.05 ms
models, nothing for the others; it is not subtracted).
"""
import ctypes
import json
import os
import sys
import time

import numpy as np

F32 = 1


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("data", ctypes.c_void_p),
                ("size_bytes", ctypes.c_uint64)]


def open_runtime(path):
    # ctypes' default RTLD_LOCAL: the runtime makes its own symbols global before it loads an
    # artifact's code (which calls tessel_parallel_for), so a plain CDLL is enough.
    lib = ctypes.CDLL(path)
    lib.tessel_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.tessel_load.restype = ctypes.c_int
    lib.tessel_free.argtypes = [ctypes.c_void_p]
    lib.tessel_free.restype = None
    lib.tessel_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(Tensor), ctypes.c_size_t,
                               ctypes.POINTER(Tensor), ctypes.c_size_t]
    lib.tessel_run.restype = ctypes.c_int
    lib.tessel_last_error.argtypes = []
    lib.tessel_last_error.restype = ctypes.c_char_p
    for fn in ("tessel_num_inputs", "tessel_num_outputs"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
        getattr(lib, fn).restype = ctypes.c_size_t
    for fn in ("tessel_input_info", "tessel_output_info"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(Tensor)]
        getattr(lib, fn).restype = ctypes.c_int
    lib.tessel_set_num_threads.argtypes = [ctypes.c_int]
    lib.tessel_set_num_threads.restype = ctypes.c_int
    lib.tessel_get_num_threads.argtypes = []
    lib.tessel_get_num_threads.restype = ctypes.c_int
    return lib


class Model:
    """A loaded artifact with its input bound to the benchmark input and an output buffer."""

    def __init__(self, lib, tsl, input_path, input_shape):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        if lib.tessel_load(tsl.encode(), ctypes.byref(self.handle)) != 0:
            raise RuntimeError(f"tessel_load({tsl}): {lib.tessel_last_error().decode()}")
        if lib.tessel_num_inputs(self.handle) != 1 or lib.tessel_num_outputs(self.handle) != 1:
            raise RuntimeError(f"{tsl}: expected one input and one output, the artifact has "
                               f"{lib.tessel_num_inputs(self.handle)} and "
                               f"{lib.tessel_num_outputs(self.handle)}")
        self.inputs = (Tensor * 1)()
        self.outputs = (Tensor * 1)()
        lib.tessel_input_info(self.handle, 0, ctypes.byref(self.inputs[0]))
        lib.tessel_output_info(self.handle, 0, ctypes.byref(self.outputs[0]))
        for what, t in (("input", self.inputs[0]), ("output", self.outputs[0])):
            if t.dtype != F32:
                raise RuntimeError(f"{tsl}: {what} '{t.name.decode()}' has dtype {t.dtype}, "
                                   f"expected f32")
        shape = [self.inputs[0].shape[i] for i in range(self.inputs[0].rank)]
        if shape != list(input_shape):
            raise RuntimeError(f"{tsl}: input '{self.inputs[0].name.decode()}' has shape "
                               f"{shape}, the benchmark input has {list(input_shape)}")
        self.x = np.ascontiguousarray(np.fromfile(input_path, dtype=np.float32))
        if self.x.nbytes != self.inputs[0].size_bytes:
            raise RuntimeError(f"{input_path}: {self.x.nbytes} bytes, the artifact's input "
                               f"needs {self.inputs[0].size_bytes}")
        self.out_shape = [self.outputs[0].shape[i] for i in range(self.outputs[0].rank)]
        self.y = np.zeros(int(np.prod(self.out_shape)), dtype=np.float32)
        self.inputs[0].data = self.x.ctypes.data
        self.outputs[0].data = self.y.ctypes.data

    def run(self):
        if self.lib.tessel_run(self.handle, self.inputs, 1, self.outputs, 1) != 0:
            raise RuntimeError(f"tessel_run: {self.lib.tessel_last_error().decode()}")


def timed(fn, n):
    clock = time.perf_counter_ns
    ns = []
    for _ in range(n):
        t0 = clock()
        fn()
        ns.append(clock() - t0)
    return ns


def main():
    lib = open_runtime(sys.argv[1])
    threads = int(os.environ.get("TESSEL_NUM_THREADS", "1"))
    if lib.tessel_set_num_threads(threads) != 0:
        sys.stderr.write(f"compare_tessel: tessel_set_num_threads({threads}) failed\n")
    models = {}
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "quit":
                break
            if op == "load":
                m = Model(lib, req["tsl"], req["input"], req["shape"])
                models[req["name"]] = m
                fn, h = lib.tessel_num_inputs, m.handle
                overhead = sorted(timed(lambda: fn(h), 2001))[1000]
                reply = {"ok": True, "threads": lib.tessel_get_num_threads(),
                         "overhead_ns": overhead}
            elif op == "run":
                m = models[req["name"]]
                reply = {"ok": True, "ns": timed(m.run, int(req["n"]))}
            elif op == "output":
                m = models[req["name"]]
                m.y[:] = np.nan
                m.run()
                m.y.tofile(req["path"])
                reply = {"ok": True, "shape": m.out_shape}
            else:
                reply = {"ok": False, "error": f"unknown op '{op}'"}
        except Exception as e:  # reported to bench/compare, which prints it
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for m in models.values():
        lib.tessel_free(m.handle)


if __name__ == "__main__":
    main()
