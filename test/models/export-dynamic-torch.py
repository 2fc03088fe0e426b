#!/usr/bin/python3
"""Exports PyTorch models whose output shapes depend on the data, with inputs and PyTorch's outputs.

Usage: export-dynamic-torch.py OUTDIR   writes OUTDIR/NAME.onnx, NAME.<input>.npy and
NAME.<output>.npy for NAME in nonzero (torch.nonzero), masked (x[x > 0]) and, when
python3-torchvision is installed, nms (boxes[torchvision.ops.nms(...)], and the kept boxes with
their scores as one [n, 5] tensor). Prints the names.
Used by test/models/dynamic-torch-compile.sh.
"""
import sys

import numpy as np
import torch


class NonZero(torch.nn.Module):
    def forward(self, x):
        return torch.nonzero(x > 0.5), (x * 2).relu()


class Masked(torch.nn.Module):
    def forward(self, x):
        return x[x > 0]


def export(out, name, model, inputs, input_names, output_names):
    with torch.no_grad():
        ys = model(*inputs)
    ys = ys if isinstance(ys, tuple) else (ys,)
    torch.onnx.export(model, inputs, f"{out}/{name}.onnx", input_names=input_names,
                      output_names=output_names, opset_version=13)
    for n, v in zip(input_names, inputs):
        np.save(f"{out}/{name}.{n}.npy", np.ascontiguousarray(v.numpy()))
    for n, v in zip(output_names, ys):
        np.save(f"{out}/{name}.{n}.npy", np.ascontiguousarray(v.numpy()))
    print(name)


out = sys.argv[1]
torch.manual_seed(0)
x = torch.randn(6, 7)
export(out, "nonzero", NonZero(), (x,), ["x"], ["idx", "y"])
export(out, "masked", Masked(), (x,), ["x"], ["y"])
try:
    import torchvision

    class Nms(torch.nn.Module):
        def forward(self, boxes, scores):
            keep = torchvision.ops.nms(boxes, scores, 0.5)
            return boxes[keep], scores[keep], torch.cat([boxes[keep], scores[keep, None]], 1)

    b = torch.rand(40, 4) * 10
    b[:, 2:] += b[:, :2]
    export(out, "nms", Nms(), (b, torch.rand(40)), ["boxes", "scores"], ["kept_boxes", "kept_scores", "detections"])
except ImportError:
    pass
