"""Models whose shapes follow from values, for dynamic-shapes.test.

OUT/nonzero.onnx   y = NonZero(x), x: f32[3,4] (its output's dim 1 depends on x's values)
OUT/x.npy          an x with 5 non-zero elements; OUT/nz.npy NonZero's result for it
OUT/range.onnx     y = float(Range(0, n, 1)) * s, n: i64 scalar (y's shape follows from n)
OUT/n4.npy, OUT/n6.npy, OUT/s.npy  values for it

usage: make_dynamic_models.py OUT
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(out, name, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    x = np.zeros((3, 4), np.float32)
    x[0, 1], x[1, 0], x[1, 3], x[2, 2], x[2, 3] = 1, -2, 3, 0.5, -1
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "nz.npy"), np.array(np.nonzero(x), np.int64))
    save(out, "nonzero", [helper.make_node("NonZero", ["x"], ["y"], name="nz")],
         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
         [helper.make_tensor_value_info("y", TensorProto.INT64, [2, None])])

    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    save(out, "range",
         [helper.make_node("Range", ["zero", "n", "one"], ["r"], name="range"),
          helper.make_node("Cast", ["r"], ["f"], name="cast", to=TensorProto.FLOAT),
          helper.make_node("Mul", ["f", "s"], ["y"], name="mul")],
         [helper.make_tensor_value_info("n", TensorProto.INT64, []),
          helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], [zero, one])
    np.save(os.path.join(out, "n4.npy"), np.array(4, np.int64))
    np.save(os.path.join(out, "n6.npy"), np.array(6, np.int64))
    np.save(os.path.join(out, "s.npy"), np.array(0.5, np.float32))


if __name__ == "__main__":
    main()
