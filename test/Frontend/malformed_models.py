#!/usr/bin/env python3
"""Builds a corpus of malformed and hostile ONNX models (at least one per class of defect the
frontend must reject) and checks that `tessel run` rejects each with a clear error: exit status 1
(never a crash or a hang), and a message that names the file / node / tensor and the problem.

usage: malformed_models.py path/to/tessel
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESSEL = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="tessel-malformed-")
failures = []


def model(nodes, inputs, outputs, inits=(), opset=13, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, shape, dt=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dt, shape)


def save(name, m, raw=None):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with open(path, "wb") as f:
        f.write(raw if raw is not None else m.SerializeToString())
    return path


def expect(case, path, *needles, extra=()):
    try:
        p = subprocess.run([TESSEL, "run", path, *extra], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        failures.append(f"{case}: hang (timeout)")
        return
    out = p.stdout + p.stderr
    if p.returncode < 0:
        failures.append(f"{case}: crashed with signal {-p.returncode}\n{out}")
    elif "runtime error:" in out or "ERROR: AddressSanitizer" in out:
        failures.append(f"{case}: sanitizer report (in an ASan/UBSan build)\n{out}")
    elif p.returncode != 1:
        failures.append(f"{case}: exit status {p.returncode}, expected 1 (a clear error)\n{out}")
    else:
        missing = [n for n in needles if n not in out]
        if missing:
            failures.append(f"{case}: error message lacks {missing}:\n{out}")
        else:
            print(f"ok   {case}: {out.strip().splitlines()[-1]}")


def expect_runs(case, path, extra=()):
    """A valid but hostile model: it must run to completion (exit 0), quickly."""
    try:
        p = subprocess.run([TESSEL, "run", path, *extra], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        failures.append(f"{case}: hang (timeout)")
        return
    out = p.stdout + p.stderr
    if p.returncode != 0 or "runtime error:" in out or "ERROR: AddressSanitizer" in out:
        failures.append(f"{case}: exit status {p.returncode}, expected 0\n{out}")
    else:
        print(f"ok   {case}: runs")


relu = lambda i, o, n="relu": helper.make_node("Relu", [i], [o], name=n)
ok = model([relu("x", "y")], [vi("x", [2, 3])], [vi("y", [2, 3])])

# --- protobuf level
expect("garbage bytes", save("garbage", None, raw=b"\x08\x07\xff\xff\xff\xff\xff\xff\x12\x99garbage"), "model.onnx", "not a valid ONNX model")
good = ok.SerializeToString()
expect("truncated model", save("truncated", None, raw=good[: len(good) // 2]), "model.onnx", "not a valid ONNX model")
expect("missing file", os.path.join(tmp, "does-not-exist.onnx"), "does-not-exist.onnx", "cannot open")
expect("no graph", save("nograph", onnx.ModelProto(ir_version=8)), "model.onnx", "no graph")

# --- names
m = model([relu("x", "")], [vi("x", [2])], [vi("", [2])])
expect("empty output name", save("emptyname", m), "model.onnx", "output has no name")
m = model([relu("nope", "y")], [vi("x", [2])], [vi("y", [2])])
expect("missing value name", save("missingname", m), "relu", "Relu", "'nope'", "not a graph input")
m = model([relu("x", "y", "r1"), relu("x", "y", "r2")], [vi("x", [2])], [vi("y", [2])])
expect("duplicate value name", save("dupname", m), "'y'", "already defined")
m = model([relu("x", "y")], [vi("x", [2]), vi("x", [2])], [vi("y", [2])])
expect("duplicate input name", save("dupinput", m), "'x'", "more than once")
m = model([relu("a", "b", "r1"), relu("b", "a", "r2")], [vi("x", [2])], [vi("b", [2])])
expect("graph cycle", save("cycle", m), "cycle")
m = model([helper.make_node("", ["x"], ["y"], name="noop")], [vi("x", [2])], [vi("y", [2])])
expect("empty op_type", save("noop", m), "noop", "no op_type")

# --- tensors
t = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
t.raw_data = b"\x00" * 12
t.ClearField("float_data")
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [4])], [vi("y", [4])], [t])
expect("raw_data length", save("rawlen", m), "initializer 'w'", "raw_data has 12 bytes", "need 16")
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [3])], [vi("y", [3])], [t])
expect("typed data count", save("floatcount", m), "initializer 'w'", "float_data has 2 elements")
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-3])
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [3])], [vi("y", [3])], [t])
expect("negative dim", save("negdim", m), "initializer 'w'", "negative dimension -3")
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [3])], [vi("y", [3])], [t])
expect("element-count overflow", save("overflow", m), "initializer 'w'", "too many elements")
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 12])
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [3])], [vi("y", [3])], [t])
expect("huge allocation", save("huge", m), "initializer 'w'", "over the limit")
m = model([relu("x", "y")], [vi("x", [2, -5])], [vi("y", [2])])
expect("negative input dim", save("neginput", m), "input 'x'", "negative dimension")
t = TensorProto(name="w", data_type=99, dims=[1], int32_data=[1])
m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [1])], [vi("y", [1])], [t])
expect("unknown data type", save("badtype", m), "'w'", "data_type 99")

# --- external data
def ext_model(case, location, offset=0, length=16, make_file=True, link_to=None):
    d = os.path.join(tmp, case)
    os.makedirs(d, exist_ok=True)
    if make_file:
        with open(os.path.join(d, "weights.bin"), "wb") as f:
            f.write(np.arange(4, dtype=np.float32).tobytes())
    if link_to:
        os.symlink(link_to, os.path.join(d, location))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    m = model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [vi("x", [4])], [vi("y", [4])], [t])
    return save(case, m)

expect("external data '..'", ext_model("extdotdot", "../weights.bin"), "initializer 'w'", "'..'")
expect("external data absolute path", ext_model("extabs", "/etc/passwd"), "initializer 'w'", "relative path")
expect("external data symlink", ext_model("extlink", "link.bin", link_to="/etc/passwd"), "symbolic link")
expect("external data past end", ext_model("extend", "weights.bin", offset=8), "initializer 'w'", "past the end")
expect("external data missing file", ext_model("extmissing", "nothere.bin"), "nothere.bin", "not found")
expect("external data length", ext_model("extlen", "weights.bin", length=12), "initializer 'w'", "length 12")

# --- ops, attributes, indices, axes
m = model([helper.make_node("FooBar", ["x"], ["y"], name="foo")], [vi("x", [2])], [vi("y", [2])])
expect("unsupported op", save("unsupported", m), "node 'foo' (FooBar)", "unsupported op")
m = model([helper.make_node("Transpose", ["x"], ["y"], name="tr", perm=[0, 2, 1])], [vi("x", [2, 3])], [vi("y", [3, 2])])
expect("attribute count vs rank", save("perm", m), "node 'tr' (Transpose)", "perm")
m = model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=5)], [vi("x", [2, 3])], [vi("y", [2, 3])])
expect("axis out of range", save("axis", m), "node 'sm' (Softmax)", "out of range")
idx = numpy_helper.from_array(np.array([0, 7], dtype=np.int64), "idx")
m = model([helper.make_node("Gather", ["x", "idx"], ["y"], name="gather", axis=0)], [vi("x", [3, 2])], [vi("y", [2, 2])], [idx])
expect("index out of range", save("gather", m), "node 'gather' (Gather)", "out of range")
m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1])],
          [vi("x", [1, 1, 4, 4])], [vi("y", [1, 1, 4, 4])],
          [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")])
expect("pads length vs rank", save("pads", m), "node 'conv' (Conv)", "pads")
m = model([helper.make_node("Add", ["x", "z"], ["y"], name="add")], [vi("x", [2, 3]), vi("z", [4])], [vi("y", [2, 3])])
expect("incompatible shapes", save("bcast", m), "node 'add' (Add)", "broadcast")
m = model([relu("x", "y")], [vi("x", [2, 3])], [vi("y", [2, 3])], opset=99)
expect("unsupported opset", save("opset", m), "opset 99")

# --- classes of crash found by the fuzzer (test/Frontend/fuzz_models.py), one model each
# DepthToSpace blocksize 2^40: blocksize^2 wrapped around to 0 and the divisibility check divided
# by zero (SIGFPE) in shape inference.
m = model([helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=1 << 40)],
          [vi("x", [2, 8, 3, 3])], [vi("y", [2, 2, 6, 6])])
expect("blocksize^2 overflow", save("d2s_block", m), "node 'd2s' (DepthToSpace)", "blocksize^2 overflows")
m = model([helper.make_node("SpaceToDepth", ["x"], ["y"], name="s2d", blocksize=1 << 32)],
          [vi("x", [2, 8, 0, 0])], [vi("y", [2, 8, 0, 0])])
expect("SpaceToDepth blocksize^2 overflow", save("s2d_block", m), "node 's2d' (SpaceToDepth)", "blocksize^2 overflows")
# Gemm with inner dims that disagree (a mutated Conv pad upstream): caught at import, not after
# minutes of computing the producers (the fuzzer's timeout under ASan).
m = model([helper.make_node("Gemm", ["a", "b"], ["y"], name="gemm", transB=1)],
          [vi("a", [1, 300]), vi("b", [64, 256])], [vi("y", [1, 64])])
expect("Gemm inner dims", save("gemm_k", m), "node 'gemm' (Gemm)", "inner dimensions differ")
# A declared dim of 2^62 (no tensor can have it) overflowed shape inference downstream (Flatten of
# [1,128,2^62]): rejected at import; dims under the cap whose product overflows: at the node.
m = model([helper.make_node("Flatten", ["x"], ["y"], name="flat")], [vi("x", [1, 128, 1 << 62])],
          [vi("y", [1, 1])])
expect("declared dim over the limit", save("hugedim", m), "input 'x'", "dimension 4611686018427387904", "over the limit")
m = model([helper.make_node("Flatten", ["x"], ["y"], name="flat", axis=0)],
          [vi("x", [1 << 33, 1 << 33, 1 << 33])], [vi("y", [1, 1])])
expect("Flatten product overflow", save("flat_overflow", m), "node 'flat' (Flatten)", "product of dims overflows")
# GRU hidden_size = 2^63-1: 3 * hidden_size overflowed in the kernel's weight-shape check.
m = model([helper.make_node("GRU", ["x", "w", "r"], ["y"], name="gru", hidden_size=(1 << 63) - 1)],
          [vi("x", [1, 1, 2]), vi("w", [1, 3, 2]), vi("r", [1, 3, 1])], [vi("y", [1, 1, 1, 1])])
expect("GRU gates * hidden_size overflow", save("gru_hidden", m), "node 'gru' (GRU)", "gates * hidden_size overflows")
# Unsqueeze whose axes input is declared with 2^32+1 elements: inference allocated 2^32 Dims
# (out of memory); now the output rank is left unknown and the run-time input is checked.
m = model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq")],
          [vi("x", [3, 4]), vi("axes", [(1 << 32) + 1], TensorProto.INT64)], [vi("y", [1, 3, 4])])
np.save(os.path.join(tmp, "axes1.npy"), np.array([0], np.int64))
expect("axes input of 2^32 elements", save("unsq_axes", m), "input 'axes'", "expected [4294967297]",
       extra=["--input", f"axes={tmp}/axes1.npy"])
# TfIdfVectorizer max_skip_count = 2^62 (valid): the kernel looped over every skip (a hang).
m = model([helper.make_node("TfIdfVectorizer", ["x"], ["y"], name="tfidf", mode="TF", min_gram_length=1,
                            max_gram_length=2, max_skip_count=1 << 62, ngram_counts=[0, 4],
                            ngram_indexes=[0, 1, 2, 3, 4, 5, 6], pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7])],
          [vi("x", [12], TensorProto.INT32)], [vi("y", [7])])
expect_runs("TfIdfVectorizer max_skip_count 2^62", save("tfidf_skip", m))

# --- run-time inputs
good_path = save("good", ok)
np.save(os.path.join(tmp, "wrong_shape.npy"), np.zeros((3, 3), np.float32))
np.save(os.path.join(tmp, "wrong_type.npy"), np.zeros((2, 3), np.int32))
expect("wrong input shape", good_path, "input 'x'", "[3,3]", "[2,3]", extra=["--input", f"x={tmp}/wrong_shape.npy"])
expect("wrong input dtype", good_path, "input 'x'", "i32", "f32", extra=["--input", f"x={tmp}/wrong_type.npy"])
expect("wrong input name", good_path, "no input 'q'", "x", extra=["--input", f"q={tmp}/wrong_shape.npy"])
np.save(os.path.join(tmp, "bad.npy"), np.ones((2, 3), np.float32))
with open(os.path.join(tmp, "bad.npy"), "r+b") as f:
    f.truncate(os.path.getsize(os.path.join(tmp, "bad.npy")) - 8)
expect("truncated .npy", good_path, "bad.npy", "truncated", extra=["--input", f"x={tmp}/bad.npy"])

if failures:
    print("\n".join(["FAIL " + f for f in failures]))
    print(f"{len(failures)} malformed-model checks failed (corpus in {tmp})")
    sys.exit(1)
print("all malformed-model checks passed")
