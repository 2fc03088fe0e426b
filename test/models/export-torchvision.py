#!/usr/bin/python3
"""Exports torchvision models (random weights, seeded) to ONNX with an input and PyTorch's output.

Usage: export-torchvision.py OUTDIR NAME...  writes OUTDIR/NAME.onnx, NAME.in.npy, NAME.out.npy.
Used by test/models/torchvision-compile.sh; needs Debian's python3-torch and python3-torchvision
(scripts/install-deps.sh --bench installs them).
"""
import sys

import numpy as np
import torch
import torchvision

out = sys.argv[1]
for name in sys.argv[2:]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
    torch.onnx.export(model, (x,), f"{out}/{name}.onnx", input_names=["input"],
                      output_names=["output"], opset_version=13)
    np.save(f"{out}/{name}.in.npy", x.numpy())
    np.save(f"{out}/{name}.out.npy", y.numpy())
