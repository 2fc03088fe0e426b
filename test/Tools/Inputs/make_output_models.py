"""Writes the small ONNX models of compiled-outputs.test (needs the `onnx` and `numpy` packages):

OUT/suite/test_*/  ONNX backend-test folders (model.onnx + test_data_set_0 with input_N.pb and
                   output_N.pb, the expected outputs computed here with numpy) whose outputs are
                   graph inputs, listed twice, or one value under two names;
OUT/fallback.onnx  a Compress node whose output another node reads (an interpreter fallback
                   step: its output shape depends on the condition's values, and the model
                   declares it) and an input that is also an output;
OUT/x.npy          an input for it.

usage: make_output_models.py OUT
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(name, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    return m


def suite_test(root, name, m, ins, outs):
    d = os.path.join(root, "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for kind, values in (("input", ins), ("output", outs)):
        for i, (n, v) in enumerate(values):
            with open(os.path.join(d, "test_data_set_0", "%s_%d.pb" % (kind, i)), "wb") as f:
                f.write(numpy_helper.from_array(v, n).SerializeToString())


def main():
    out = sys.argv[1]
    suite = os.path.join(out, "suite")
    os.makedirs(suite, exist_ok=True)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    relu = np.maximum(x, 0)
    shape = numpy_helper.from_array(np.array([2, 3, 4], np.int64), "shape")

    suite_test(suite, "input_is_output",
               model("input_is_output", [helper.make_node("Relu", ["x"], ["y"])],
                     [info("x", [2, 3, 4])], [info("x", [2, 3, 4]), info("y", [2, 3, 4])]),
               [("x", x)], [("x", x), ("y", relu)])
    suite_test(suite, "only_output_is_the_input",
               model("only_output_is_the_input", [], [info("x", [2, 3, 4])],
                     [info("x", [2, 3, 4])]),
               [("x", x)], [("x", x)])
    suite_test(suite, "input_through_removed_ops",
               model("input_through_removed_ops",
                     [helper.make_node("Identity", ["x"], ["a"]),
                      helper.make_node("Dropout", ["a"], ["b"]),
                      helper.make_node("Reshape", ["b", "shape"], ["c"])],
                     [info("x", [2, 3, 4])], [info("c", [2, 3, 4])], [shape]),
               [("x", x)], [("c", x)])
    suite_test(suite, "output_listed_twice",
               model("output_listed_twice", [helper.make_node("Relu", ["x"], ["y"])],
                     [info("x", [2, 3, 4])],
                     [info("y", [2, 3, 4]), info("x", [2, 3, 4]), info("y", [2, 3, 4])]),
               [("x", x)], [("y", relu), ("x", x), ("y", relu)])
    suite_test(suite, "one_value_two_names",
               model("one_value_two_names",
                     [helper.make_node("Relu", ["x"], ["y"]),
                      helper.make_node("Identity", ["y"], ["z"]),
                      helper.make_node("Relu", ["x"], ["w"])],
                     [info("x", [2, 3, 4])],
                     [info("y", [2, 3, 4]), info("z", [2, 3, 4]), info("w", [2, 3, 4])]),
               [("x", x)], [("y", relu), ("z", relu), ("w", relu)])

    # y = x + float(compress(int(x) as [2, 12], every column)) as [2, 3, 4]
    rows = numpy_helper.from_array(np.array([2, 12], dtype=np.int64), "rows")
    cube = numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "cube")
    keep = numpy_helper.from_array(np.ones(12, dtype=bool), "keep")
    fb = model("fallback",
               [helper.make_node("Cast", ["x"], ["i"], name="to_int", to=TensorProto.INT64),
                helper.make_node("Reshape", ["i", "rows"], ["w"], name="as_rows"),
                helper.make_node("Compress", ["w", "keep"], ["t"], name="compress", axis=1),
                helper.make_node("Reshape", ["t", "cube"], ["r"], name="as_cube"),
                helper.make_node("Cast", ["r"], ["f"], name="to_float", to=TensorProto.FLOAT),
                helper.make_node("Add", ["f", "x"], ["y"], name="add")],
               [info("x", [2, 3, 4])], [info("y", [2, 3, 4]), info("x", [2, 3, 4])],
               [rows, cube, keep])
    fb.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.INT64, [2, 12]))
    onnx.save(fb, os.path.join(out, "fallback.onnx"))
    np.save(os.path.join(out, "x.npy"), x)


if __name__ == "__main__":
    main()
