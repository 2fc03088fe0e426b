#!/usr/bin/python3
"""PyTorch worker of bench/compare: TorchScript (traced + frozen) models, timed on request.

Started by bench/compare once per thread count, with OPENBLAS_CORETYPE=SkylakeX,
OPENBLAS_NUM_THREADS=T and OMP_NUM_THREADS=T already in the environment (OpenBLAS reads them
when torch is imported, so one process cannot serve two thread counts). Speaks the worker
protocol of bench/compare (one JSON object per line on stdin, one answer per line on stdout):

  {"op": "load", "name": N, "onnx": PATH, "input": BIN, "shape": [...]}  -> {"ok": true, ...}
  {"op": "run", "name": N, "n": K}          -> {"ok": true, "ns": [K wall times of one call]}
  {"op": "output", "name": N, "path": BIN}  -> writes the output (raw float32) -> {"ok": true}
  {"op": "quit"}

The modules are the ones /work/shared/peers/make_models.py exported (torch.nn / torchvision
definitions), with their weights read from the ONNX file's initializers (python3-onnx's
numpy_helper), so PyTorch computes the same function as the ONNX file and its output can be
checked against NAME.out.npy. The exporter folded every BatchNorm into the convolution before
it (the initializers are the folded weight and bias): the BatchNorm modules are replaced by
Identity and the folded bias is given to the convolution, which is what torch.jit.freeze does
to a Conv+BatchNorm pair anyway.
"""
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def fail(message):
    raise ValueError(message)


def initializers(model_proto):
    return {t.name: numpy_helper.to_array(t) for t in model_proto.graph.initializer}


def assign(param_owner, attr, array, what):
    """Sets param_owner.attr to a Parameter holding array, checking the shape."""
    value = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    old = getattr(param_owner, attr, None)
    if old is not None and tuple(old.shape) != tuple(value.shape):
        fail(f"{what}: ONNX initializer has shape {tuple(value.shape)}, the PyTorch module "
             f"expects {tuple(old.shape)}")
    setattr(param_owner, attr, nn.Parameter(value, requires_grad=False))


def load_named(module, inits, what):
    """Loads every parameter whose name is an ONNX initializer (Linear layers keep their names)."""
    used = set()
    for pname, _ in list(module.named_parameters()):
        if pname in inits:
            owner_path, _, attr = pname.rpartition(".")
            owner = module.get_submodule(owner_path) if owner_path else module
            assign(owner, attr, inits[pname], f"{what} {pname}")
            used.add(pname)
    return used


def load_folded_convs(module, model_proto, inits, example, what):
    """Gives every Conv2d the folded (Conv+BatchNorm) weight and bias of the ONNX Conv node that
    runs at the same position (execution order, recorded with forward hooks), and replaces every
    BatchNorm2d by Identity."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(example)
    for h in hooks:
        h.remove()
    conv_nodes = [n for n in model_proto.graph.node if n.op_type == "Conv"]
    if len(conv_nodes) != len(order):
        fail(f"{what}: the ONNX graph has {len(conv_nodes)} Conv nodes, the PyTorch module ran "
             f"{len(order)} Conv2d")
    for i, (node, conv) in enumerate(zip(conv_nodes, order)):
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            fail(f"{what}: Conv node {i} ({node.name}) has no constant weight and bias")
        assign(conv, "weight", inits[node.input[1]], f"{what} conv {i} weight")
        conv.bias = None
        assign(conv, "bias", inits[node.input[2]], f"{what} conv {i} bias")
    for name, m in list(module.named_modules()):
        if isinstance(m, nn.BatchNorm2d):
            parent_path, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_path) if parent_path else module
            setattr(parent, attr, nn.Identity())


def load_transformer(enc, model_proto, inits, what):
    """nn.TransformerEncoder: LayerNorm, attention biases and out_proj keep their names; the
    exporter stored in_proj_weight, linear1.weight and linear2.weight transposed, as unnamed
    MatMul initializers, in that order per layer."""
    used = load_named(enc, inits, what)
    named = set(inits) & used
    matmul_weights = [n.input[1] for n in model_proto.graph.node
                      if n.op_type == "MatMul" and n.input[1] in inits and n.input[1] not in named]
    layers = list(enc.layers)
    if len(matmul_weights) != 3 * len(layers):
        fail(f"{what}: expected 3 unnamed MatMul weights per layer ({3 * len(layers)}), found "
             f"{len(matmul_weights)}")
    for i, layer in enumerate(layers):
        w_in, w1, w2 = (inits[n].T for n in matmul_weights[3 * i:3 * i + 3])
        assign(layer.self_attn, "in_proj_weight", w_in, f"{what} layer {i} in_proj_weight")
        assign(layer.linear1, "weight", w1, f"{what} layer {i} linear1.weight")
        assign(layer.linear2, "weight", w2, f"{what} layer {i} linear2.weight")


def build(name, onnx_path, example):
    """The PyTorch module of a shared model with the ONNX file's weights (make_models.py)."""
    proto = onnx.load(onnx_path)
    inits = initializers(proto)
    if name == "mlp":
        m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
        if len(load_named(m, inits, name)) != len(list(m.parameters())):
            fail("mlp: not every parameter found among the ONNX initializers")
    elif name == "digits_cnn":
        m = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
        if len(load_named(m, inits, name)) != len(list(m.parameters())):
            fail("digits_cnn: not every parameter found among the ONNX initializers")
    elif name in ("resnet18", "mobilenet_v2"):
        import torchvision
        m = getattr(torchvision.models, name)(weights=None).eval()
        load_folded_convs(m, proto, inits, example, name)
        load_named(m, inits, name)  # fc / classifier.1
    elif name == "transformer":
        layer = nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024,
                                           dropout=0.0, batch_first=True)
        m = nn.TransformerEncoder(layer, num_layers=4)
        load_transformer(m, proto, inits, name)
    else:
        fail(f"no PyTorch definition for model '{name}' (bench/compare_torch.py knows mlp, "
             f"digits_cnn, resnet18, mobilenet_v2, transformer)")
    m.eval()
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(m, example).eval())


def main():
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    models = {}
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "quit":
                break
            if op == "load":
                x = torch.from_numpy(np.fromfile(req["input"], dtype=np.float32)
                                     .reshape(req["shape"]))
                fn = build(req["name"], req["onnx"], x)
                models[req["name"]] = (fn, x)
                reply = {"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads()}
            elif op == "run":
                fn, x = models[req["name"]]
                ns = []
                with torch.no_grad():
                    for _ in range(int(req["n"])):
                        t0 = time.perf_counter_ns()
                        fn(x)
                        ns.append(time.perf_counter_ns() - t0)
                reply = {"ok": True, "ns": ns}
            elif op == "output":
                fn, x = models[req["name"]]
                with torch.no_grad():
                    y = fn(x)
                y.detach().numpy().astype(np.float32).tofile(req["path"])
                reply = {"ok": True, "shape": list(y.shape)}
            else:
                reply = {"ok": False, "error": f"unknown op '{op}'"}
        except Exception as e:  # reported to bench/compare, which prints it
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
