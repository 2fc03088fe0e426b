#!/usr/bin/python3
"""Seeded mutation fuzzer for tessel's ONNX frontend, shape inference and reference kernels.

Takes the small models of the repository (examples/*.onnx, test/models/*.onnx, and the shared
benchmark models of ../shared/models under 2 MB) and the ONNX backend test models
(/usr/share/libonnx-testdata/data/node/*/model.onnx), mutates each through the onnx protobuf API (dims, attributes, tensor
data types and raw_data, dropped/duplicated inputs, outputs, initializers and nodes, renamed
node inputs, op_type/domain/opset changes, ...) or as raw bytes (flips, truncation, insertion),
and runs `tessel run MODEL` (random inputs) and, where the folder has test data,
`tessel run MODEL --input NAME=input_i.pb ...` under a timeout.

A finding is: a crash (killed by a signal), an AddressSanitizer/UBSan report on stderr, a
timeout, an exit status other than 0 or 1, or exit status 1 without an "error:" line. A clean
error (exit status 1 with an "error:" line) is the expected answer to most mutations.

Every run is deterministic: iteration i of seed S mutates the same model the same way (its own
random.Random(S, i)), whatever the order the jobs finish in, so `--seed S --only i --keep DIR`
reproduces one finding and writes its model. Each tessel process gets an address-space limit
(RLIMIT_AS, or ASan's max_allocation_size_mb in a sanitizer build) so that a mutated dim of 2^31
is a quick "out of memory" error instead of minutes of filling a multi-gigabyte random input.

usage: fuzz_models.py [--tessel PATH] [--iterations N] [--seed S] [--jobs J] [--timeout T]
                      [--max-seconds T] [--keep DIR] [--only I]
The default (no flags) is the ctest run: seed 1, a fixed 1000 iterations (about 20 s on 2 cores
with a Release build); exit status 1 on any finding, 77 (skip) when no seed model or the onnx
module is found. Longer hunts: `--seed S --iterations N` with an ASan+UBSan build.
"""
import argparse
import concurrent.futures
import glob
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import onnx
    from onnx import TensorProto, AttributeProto
except ImportError:
    print("skip: the python onnx module is not installed")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = "/usr/share/libonnx-testdata/data/node"

EXTREME_INTS = [-(2**63), -(2**62), -(2**31) - 1, -(2**31), -65536, -1000, -3, -2, -1, 0, 1, 2, 3,
                7, 1000, 65536, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1]
EXTREME_FLOATS = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-45, 1e38, -1e38,
                  3.4e38, 1e6, 0.5]
EXTREME_DIMS = [-(2**63), -(2**31), -2, -1, 0, 1, 2, 3, 5, 1000, 2**31, 2**32 + 1, 2**40, 2**62,
                2**63 - 1]
DTYPES = list(range(0, 20)) + [23, 99, -1]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tessel", default=None, help="the tessel binary (default: build/bin/tessel)")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per tessel run")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop starting new iterations after this long (default: unlimited; "
                        "a time bound makes the iteration count depend on the machine)")
    p.add_argument("--memory-mb", type=int, default=3072,
                   help="address-space limit of each tessel process (MiB); in a sanitizer "
                        "build, the largest single allocation instead")
    p.add_argument("--keep", default=None, help="folder to keep the models of findings in")
    p.add_argument("--only", type=int, default=None, help="run only iteration I (reproduce)")
    p.add_argument("--verbose", "-v", action="store_true")
    a = p.parse_args()
    if a.tessel is None:
        a.tessel = os.path.join(ROOT, "build", "bin", "tessel")
    if a.iterations is None:
        a.iterations = 1000
    return a


# ----------------------------------------------------------------------------------- seeds
class Seed:
    def __init__(self, path):
        self.path = path
        self.dir = os.path.dirname(path)
        with open(path, "rb") as f:
            self.raw = f.read()
        self.model = onnx.load_from_string(self.raw)
        self.inputs = []  # (name, pb path) of test_data_set_0
        ds = os.path.join(self.dir, "test_data_set_0")
        if os.path.isdir(ds):
            inits = {t.name for t in self.model.graph.initializer}
            names = [i.name for i in self.model.graph.input if i.name not in inits]
            files = sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                           key=lambda s: int(s.rsplit("_", 1)[1].split(".")[0]))
            for k, f in enumerate(files):
                name = None
                try:
                    t = TensorProto()
                    with open(f, "rb") as fh:
                        t.ParseFromString(fh.read())
                    name = t.name or None
                except Exception:
                    name = None  # a sequence or optional: fall back on the graph's order
                if name is None and k < len(names):
                    name = names[k]
                if name:
                    self.inputs.append((name, f))


SMALL_MODEL_BYTES = 2 << 20


def load_seeds():
    """-> (repository models, conformance models)"""
    repo = sorted(glob.glob(os.path.join(ROOT, "examples", "*.onnx")))
    repo += sorted(glob.glob(os.path.join(ROOT, "test", "models", "*.onnx")))
    repo += sorted(glob.glob(os.path.join(os.path.dirname(ROOT), "shared", "models", "*.onnx")))
    repo = [p for p in repo if os.path.getsize(p) <= SMALL_MODEL_BYTES]
    conf = sorted(glob.glob(os.path.join(DATA, "*", "model.onnx")))
    out = []
    for paths in (repo, conf):
        seeds = []
        for p in paths:
            try:
                seeds.append(Seed(p))
            except Exception:
                pass
        out.append(seeds)
    return out


# ------------------------------------------------------------------------------- mutations
def all_graphs(g):
    out = [g]
    for n in g.node:
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                out += all_graphs(a.g)
            for sg in a.graphs:
                out += all_graphs(sg)
    return out


def all_tensors(m):
    ts = []
    for g in all_graphs(m.graph):
        ts += list(g.initializer)
        for n in g.node:
            for a in n.attribute:
                if a.type == AttributeProto.TENSOR:
                    ts.append(a.t)
    return ts


def value_infos(m):
    vs = []
    for g in all_graphs(m.graph):
        vs += list(g.input) + list(g.output) + list(g.value_info)
    return [v for v in vs if v.type.HasField("tensor_type")]


def pick_node(r, m):
    nodes = [n for g in all_graphs(m.graph) for n in g.node]
    return r.choice(nodes) if nodes else None


def mut_dim(r, m):
    vs = value_infos(m)
    if not vs:
        return False
    v = r.choice(vs)
    shp = v.type.tensor_type.shape
    choice = r.random()
    if choice < 0.15 or not shp.dim:
        # change the rank
        if shp.dim and r.random() < 0.5:
            del shp.dim[r.randrange(len(shp.dim))]
        else:
            shp.dim.add().dim_value = r.choice([1, 2, 3, 0])
    elif choice < 0.2:
        v.type.tensor_type.ClearField("shape")
    elif choice < 0.3:
        shp.dim[r.randrange(len(shp.dim))].dim_param = r.choice(["N", "", "?", "x" * 300])
    elif choice < 0.4:
        v.type.tensor_type.elem_type = r.choice(DTYPES)
    else:
        d = shp.dim[r.randrange(len(shp.dim))]
        d.dim_value = r.choice(EXTREME_DIMS + [d.dim_value + 1, max(d.dim_value - 1, 0)])
    return True


def mut_attr(r, m):
    n = pick_node(r, m)
    if n is None:
        return False
    if not n.attribute or r.random() < 0.15:
        # add a plausible attribute the node may not expect
        name = r.choice(["axis", "axes", "perm", "pads", "strides", "kernel_shape", "dilations",
                         "group", "keepdims", "to", "mode", "alpha", "beta", "epsilon", "k",
                         "split", "shape", "value", "blocksize", "direction", "hidden_size",
                         "auto_pad", "ceil_mode", "output_padding", "output_shape", "largest",
                         "sorted", "exclusive", "reverse", "batch_dims", "start", "end", "upper"])
        kind = r.random()
        if kind < 0.5:
            n.attribute.append(onnx.helper.make_attribute(name, r.choice(EXTREME_INTS)))
        elif kind < 0.8:
            n.attribute.append(onnx.helper.make_attribute(
                name, [r.choice(EXTREME_INTS) for _ in range(r.randrange(0, 7))] or [0]))
        else:
            n.attribute.append(onnx.helper.make_attribute(name, r.choice(["", "NOTSET", "garbage",
                                                                            "SAME_UPPER", "VALID"])))
        return True
    a = r.choice(n.attribute)
    c = r.random()
    if c < 0.07:
        n.attribute.remove(a)
        return True
    if c < 0.12:
        # wrong attribute type
        a.type = r.choice([t for t in range(1, 15) if t != a.type])
        return True
    if c < 0.15:
        n.attribute.append(a)  # duplicate
        return True
    if a.type == AttributeProto.INT:
        a.i = r.choice(EXTREME_INTS + [a.i + 1, a.i - 1, -a.i])
    elif a.type == AttributeProto.FLOAT:
        a.f = r.choice(EXTREME_FLOATS)
    elif a.type == AttributeProto.INTS:
        v = list(a.ints)
        k = r.random()
        if k < 0.3 and v:
            v[r.randrange(len(v))] = r.choice(EXTREME_INTS)
        elif k < 0.5 and v:
            v.pop(r.randrange(len(v)))
        elif k < 0.7:
            v.append(r.choice(EXTREME_INTS + v if v else EXTREME_INTS))
        elif k < 0.8:
            v = []
        elif k < 0.9:
            v = v * 2
        else:
            v = [r.choice(EXTREME_INTS) for _ in v]
        del a.ints[:]
        a.ints.extend(v)
    elif a.type == AttributeProto.FLOATS:
        v = list(a.floats)
        k = r.random()
        if k < 0.4 and v:
            v[r.randrange(len(v))] = r.choice(EXTREME_FLOATS)
        elif k < 0.6 and v:
            v.pop()
        elif k < 0.8:
            v = v + [r.choice(EXTREME_FLOATS)]
        else:
            v = []
        del a.floats[:]
        a.floats.extend(v)
    elif a.type == AttributeProto.STRING:
        a.s = r.choice([b"", b"garbage", b"\xff\xfe", b"NOTSET", b"SAME_LOWER", b"VALID",
                        b"linear", b"nearest", b"cubic", b"constant", b"reflect", b"edge",
                        b"DCR", b"CRD", b"forward", b"reverse", b"bidirectional", b"Tanh",
                        b"x" * 5000, a.s[:-1]])
    elif a.type == AttributeProto.STRINGS:
        v = list(a.strings)
        if v and r.random() < 0.5:
            v.pop()
        else:
            v.append(r.choice([b"", b"Foo", b"Relu", b"\xff"]))
        del a.strings[:]
        a.strings.extend(v)
    elif a.type == AttributeProto.TENSOR:
        mut_one_tensor(r, a.t)
    elif a.type == AttributeProto.GRAPH:
        g = a.g
        k = r.random()
        if k < 0.3 and g.output:
            del g.output[r.randrange(len(g.output))]
        elif k < 0.5 and g.input:
            del g.input[r.randrange(len(g.input))]
        elif k < 0.7 and g.node:
            del g.node[r.randrange(len(g.node))]
        elif g.input:
            g.input.append(g.input[0])
    else:
        a.ClearField("type")
    return True


def tensor_nbytes_elem(dt):
    return {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8,
            15: 16, 16: 2}.get(dt, 1)


def mut_one_tensor(r, t):
    c = r.random()
    if c < 0.2:
        t.data_type = r.choice(DTYPES)
    elif c < 0.45:
        dims = list(t.dims)
        k = r.random()
        if k < 0.4 and dims:
            dims[r.randrange(len(dims))] = r.choice(EXTREME_DIMS)
        elif k < 0.6 and dims:
            dims.pop()
        elif k < 0.8:
            dims.append(r.choice([0, 1, 2, 3]))
        else:
            dims = [r.choice(EXTREME_DIMS) for _ in dims] or [r.choice(EXTREME_DIMS)]
        del t.dims[:]
        t.dims.extend(dims)
    elif c < 0.7 and t.raw_data:
        k = r.random()
        raw = t.raw_data
        if k < 0.3:
            t.raw_data = raw[: r.randrange(len(raw))]
        elif k < 0.5:
            t.raw_data = raw + bytes(r.randrange(256) for _ in range(r.randrange(1, 17)))
        else:
            # overwrite values with extreme bit patterns (huge indices, NaNs, ...)
            b = bytearray(raw)
            w = tensor_nbytes_elem(t.data_type)
            for _ in range(r.randrange(1, 4)):
                off = r.randrange(0, max(1, len(b) - w + 1))
                pat = r.choice([b"\xff", b"\x7f", b"\x80", b"\x00", b"\x01"])
                for j in range(w):
                    if off + j < len(b):
                        b[off + j] = pat[0] if j < w - 1 else r.choice([0x7f, 0xff, 0x80, 0x00])
            t.raw_data = bytes(b)
    else:
        # typed fields: wrong length or extreme values
        fields = [f for f in ("float_data", "int32_data", "int64_data", "double_data",
                              "uint64_data", "string_data") if len(getattr(t, f))]
        if fields:
            f = getattr(t, r.choice(fields))
            if r.random() < 0.5 and len(f):
                del f[-1]
            elif isinstance(f[0], float):
                f.append(r.choice(EXTREME_FLOATS))
                if len(f) > 1:
                    f[r.randrange(len(f))] = r.choice(EXTREME_FLOATS)
            elif isinstance(f[0], bytes):
                f.append(b"\xff\xfe")
            else:
                lo, hi = (-(2**31), 2**31 - 1) if f is t.int32_data else (
                    (0, 2**64 - 1) if f is t.uint64_data else (-(2**63), 2**63 - 1))
                f[r.randrange(len(f))] = r.choice([lo, hi, -1, 0, 2**31 - 1, lo // 2])
        elif t.raw_data and r.random() < 0.5:
            # raw_data and a typed field at once
            t.float_data.append(1.0)
        else:
            t.data_type = r.choice(DTYPES)


def mut_tensor(r, m):
    ts = all_tensors(m)
    if not ts:
        return False
    mut_one_tensor(r, r.choice(ts))
    return True


def mut_structure(r, m):
    g = r.choice(all_graphs(m.graph))
    c = r.randrange(10)
    if c == 0 and g.input:
        del g.input[r.randrange(len(g.input))]
    elif c == 1 and g.input:
        g.input.append(g.input[r.randrange(len(g.input))])
    elif c == 2 and g.output:
        del g.output[r.randrange(len(g.output))]
    elif c == 3 and g.output:
        g.output.append(g.output[r.randrange(len(g.output))])
    elif c == 4 and g.initializer:
        del g.initializer[r.randrange(len(g.initializer))]
    elif c == 5 and g.initializer:
        g.initializer.append(g.initializer[r.randrange(len(g.initializer))])
    elif c == 6 and g.node:
        del g.node[r.randrange(len(g.node))]
    elif c == 7 and g.node:
        g.node.append(g.node[r.randrange(len(g.node))])
    elif c == 8 and g.node and len(g.node) > 1:
        i, j = r.sample(range(len(g.node)), 2)
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif c == 9 and g.input and g.initializer:
        # an initializer that shadows a graph input, with another shape
        t = TensorProto()
        t.CopyFrom(g.initializer[0] if g.initializer else TensorProto())
        t.name = g.input[0].name
        g.initializer.append(t)
    else:
        return False
    return True


def mut_rename(r, m):
    g = r.choice(all_graphs(m.graph))
    if not g.node:
        return False
    i = r.randrange(len(g.node))
    n = g.node[i]
    c = r.random()
    if c < 0.55 and n.input:
        k = r.randrange(len(n.input))
        later = [o for nn in list(g.node)[i:] for o in nn.output if o]
        choices = ["", "undefined_value", n.output[0] if n.output else ""] + later
        if g.input:
            choices.append(g.input[r.randrange(len(g.input))].name)
        n.input[k] = r.choice(choices)
    elif c < 0.7:
        n.input.append(r.choice(["", "undefined_value"] + [x.name for x in g.input]
                                + [x.name for x in g.initializer]))
    elif c < 0.8 and n.input:
        del n.input[-1]
    elif c < 0.9 and n.output:
        k = r.randrange(len(n.output))
        others = [x.name for x in g.input] + [o for nn in g.node for o in nn.output]
        n.output[k] = r.choice(["", r.choice(others) if others else ""])
    elif n.output and r.random() < 0.5:
        del n.output[-1]
    else:
        n.output.append(r.choice(["extra_out", ""]))
    return True


def mut_op(r, m, optypes):
    c = r.random()
    if c < 0.55:
        n = pick_node(r, m)
        if n is None:
            return False
        n.op_type = r.choice(optypes + ["", "FooBar", n.op_type.lower()])
    elif c < 0.7:
        n = pick_node(r, m)
        if n is None:
            return False
        n.domain = r.choice(["ai.onnx.ml", "com.microsoft", "bogus", "ai.onnx",
                             "ai.onnx.preview.training"])
    elif c < 0.9:
        if not m.opset_import:
            m.opset_import.add().version = 13
        o = r.choice(m.opset_import)
        o.version = r.choice([-1, 0, 1, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22,
                              100, 2**62])
    elif c < 0.95:
        del m.opset_import[:]
    else:
        m.ir_version = r.choice([-1, 0, 1, 3, 100])
    return True


def mutate_raw(r, raw):
    b = bytearray(raw)
    c = r.random()
    if c < 0.3 and len(b) > 1:
        return bytes(b[: r.randrange(1, len(b))])
    if c < 0.45:
        pos = r.randrange(len(b) + 1)
        return bytes(b[:pos] + bytes(r.randrange(256) for _ in range(r.randrange(1, 9))) + b[pos:])
    for _ in range(r.randrange(1, 9)):
        if not b:
            break
        i = r.randrange(len(b))
        b[i] = r.choice([b[i] ^ (1 << r.randrange(8)), 0x00, 0xff, 0x7f, 0x80, r.randrange(256)])
    return bytes(b)


def make_case(r, seed, optypes):
    """-> (bytes of the mutated model, description, use test inputs?)"""
    if r.random() < 0.12:
        return mutate_raw(r, seed.raw), "raw bytes", r.random() < 0.5
    m = onnx.ModelProto()
    m.CopyFrom(seed.model)
    done = []
    kinds = [("dim", mut_dim, 3), ("attr", mut_attr, 5), ("tensor", mut_tensor, 3),
             ("structure", mut_structure, 2), ("rename", mut_rename, 2),
             ("op", lambda rr, mm: mut_op(rr, mm, optypes), 2)]
    weights = [k[2] for k in kinds]
    for _ in range(r.choice([1, 1, 1, 2, 2, 3])):
        name, fn, _w = r.choices(kinds, weights)[0]
        try:
            if fn(r, m):
                done.append(name)
        except Exception as e:  # a mutation the protobuf API refuses: try another
            done.append(f"{name}(refused: {type(e).__name__})")
    try:
        data = m.SerializeToString()
    except Exception:
        return mutate_raw(r, seed.raw), "raw bytes", False
    return data, "+".join(done) or "none", r.random() < 0.6


# ------------------------------------------------------------------------------------ runs
# Report headers only: "WARNING: AddressSanitizer failed to allocate" is the allocation cap
# doing its job (malloc returns null and tessel reports an error).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer", "WARNING: MemorySanitizer")


def is_sanitized(path):
    """Whether the binary was built with -fsanitize=address (it then links the ASan runtime)."""
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        if "libasan" in out:
            return True
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def run_tessel(args, cmd):
    env = dict(os.environ)
    limit = args.memory_mb << 20
    preexec = None
    if args.sanitized:
        # ASan reserves terabytes of shadow memory, so RLIMIT_AS cannot apply: cap single
        # allocations instead (malloc then returns null, which tessel reports as an error).
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:allocator_may_return_null=1"
                       f":max_allocation_size_mb={args.memory_mb // 2}")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    else:
        def preexec():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=args.timeout, env=env,
                           preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    err = p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode < 0:
        return f"signal {-p.returncode}", err
    if any(s in err for s in SANITIZER_MARKS):
        return "sanitizer report", err
    if p.returncode not in (0, 1):
        return f"exit status {p.returncode}", err + out
    if p.returncode == 1 and "error:" not in err:
        return "exit status 1 without an error: line", err + out
    return None, err


def iteration(args, seeds, optypes, i, workdir):
    r = random.Random(args.seed * 1000003 + i)
    repo, conf = seeds
    # the repository's models are few: give them a fixed share of the iterations
    seed = r.choice(repo if repo and (not conf or r.random() < 0.2) else conf)
    data, what, with_inputs = make_case(r, seed, optypes)
    d = os.path.join(workdir, f"it{i}")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    cmd = [args.tessel, "run", path, "--seed", str(i % 1000)]
    if with_inputs and seed.inputs:
        for name, f in seed.inputs:
            cmd += ["--input", f"{name}={f}"]
    problem, err = run_tessel(args, cmd)
    finding = None
    if problem:
        kept = path
        if args.keep:
            kd = os.path.join(args.keep, f"seed{args.seed}-it{i}")
            os.makedirs(kd, exist_ok=True)
            kept = os.path.join(kd, "model.onnx")
            shutil.copy(path, kept)
            with open(os.path.join(kd, "stderr.txt"), "w") as f:
                f.write(" ".join(cmd) + "\n" + err)
        lines = [l for l in err.splitlines() if l.strip()]
        key = next((l for l in lines if "runtime error:" in l or "ERROR: AddressSanitizer" in l),
                   lines[-1] if lines else "")
        where = os.path.relpath(seed.path, os.path.dirname(DATA) if seed.path.startswith(DATA)
                                else os.path.dirname(ROOT))
        finding = (f"iteration {i}: {where}"
                   f" [{what}] -> {problem}\n    {key[:300]}\n    model: {kept}\n"
                   f"    reproduce: fuzz_models.py --seed {args.seed} --only {i} --keep DIR")
    shutil.rmtree(d, ignore_errors=True)
    return i, what, problem, finding, err


def main():
    args = parse_args()
    if not os.path.exists(args.tessel):
        print(f"error: no tessel binary at {args.tessel}")
        return 1
    seeds = load_seeds()
    if not seeds[0] and not seeds[1]:
        print(f"skip: no ONNX models under {DATA} nor in examples/")
        return 77
    args.sanitized = is_sanitized(args.tessel)
    optypes = sorted({n.op_type for s in seeds[0] + seeds[1] for n in s.model.graph.node})
    workdir = tempfile.mkdtemp(prefix="tessel-fuzz-")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    its = [args.only] if args.only is not None else range(args.iterations)
    start = time.time()
    findings, ran, codes = [], 0, {"ok": 0, "error": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        pending = set()
        it = iter(its)
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * max(1, args.jobs):
                if args.max_seconds is not None and time.time() - start > args.max_seconds:
                    exhausted = True
                    break
                try:
                    i = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.add(ex.submit(iteration, args, seeds, optypes, i, workdir))
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                i, what, problem, finding, err = fut.result()
                ran += 1
                if finding:
                    findings.append(finding)
                    print("FINDING " + finding, flush=True)
                elif args.verbose or args.only is not None:
                    last = err.strip().splitlines()[-1] if err.strip() else "ok"
                    print(f"iteration {i} [{what}]: {last[:200]}", flush=True)
                if not problem:
                    codes["error" if "error:" in err else "ok"] += 1
    shutil.rmtree(workdir, ignore_errors=True)
    took = time.time() - start
    print(f"{ran} iterations (seed {args.seed}, {len(seeds[0])} repository and {len(seeds[1])} "
          f"conformance models) in {took:.0f} s: {codes['ok']} ran, "
          f"{codes['error']} rejected with an error, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
