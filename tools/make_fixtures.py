#!/usr/bin/python3
"""Golden fixtures for lowbit's core ops, computed by PyTorch.

Run:   /usr/bin/python3 tools/make_fixtures.py [OUT]   (default tests/fixtures/ops.safetensors)
       /usr/bin/python3 tools/make_fixtures.py --models [DIR]   (tests/fixtures/parity_resnet20.safetensors,
           parity_mobilenet_v2.safetensors: whole-model parity; training.safetensors: optimizers,
           schedules, clipping, metrics; layout above models_fixture())
       /usr/bin/python3 tools/make_fixtures.py --large [OUT]    (tests/fixtures/large/resnet18.safetensors,
           ~47 MB, git-ignored: torchvision resnet18 for build/tests/check_resnet18)
       /usr/bin/python3 tools/make_fixtures.py --transforms [OUT]   (tests/fixtures/transforms.safetensors:
           data transforms as torchvision's tensor path computes them; layout above transforms_fixture())
Needs: Debian's python3-torch (1.13); no `safetensors` package (Debian has
none): the file is written by the ~20-line writer below.

Layout of the file (read by tests/core/test_golden.cpp):
  __metadata__["cases"]            comma-separated case names, in order
  __metadata__["<case>.op"]        the lowbit op the case exercises (one doctest
                                   TEST_CASE per op in test_golden.cpp)
  __metadata__["<case>.inputs"]    comma-separated input names k; tensor "<case>.k"
  __metadata__["<case>.grads"]     inputs with a gradient; tensor "<case>.dk"
  __metadata__["<case>.updated"]   inputs the op writes in place (batch_norm's
                                   running stats); tensor "<case>.k_out" holds
                                   their value after the call
  __metadata__["<case>.<param>"]   op parameters as strings: integers, floats,
                                   "0"/"1" for booleans, comma-separated lists
  tensors "<case>.y" (forward output) and "<case>.gy" (random upstream
  gradient; the gradients come from y.backward(gy)).
  tensors "io.*": one tensor per stored dtype (F32, F64, I32, I64, I8, U8)
  with known values, for tests/core/test_safetensors.cpp.

Numerics: inputs and gy are drawn in float32 and stored as F32 (I32 for class
targets); PyTorch then computes in float64 from exactly those values, and
outputs and gradients are rounded once to F32. The stored values are thus
PyTorch's answer without PyTorch's own float32 rounding, and the tolerance in
test_golden.cpp measures lowbit's error alone. Inputs of ops with kinks
(abs, relu, relu6, clamp, max, max_pool2d) keep a margin from the kink and
from ties, so float32 and float64 pick the same branch.

Deterministic: one torch.Generator seeded with 0; same torch version → same bytes.
"""
import json
import os
import sys
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("make_fixtures.py: PyTorch is not importable by %s.\n"
             "Install Debian's python3-torch (apt-get install python3-torch) and run this script\n"
             "with /usr/bin/python3 (a pyenv/venv `python3` on PATH usually lacks torch)." % sys.executable)

GEN = torch.Generator().manual_seed(0)
# kl_div(reduction="mean") is tested on purpose (it divides by numel, as PyTorch 1.13 does).
warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")
# SequentialLR (1.13) calls scheduler.step(0) itself at each milestone and warns about it.
warnings.filterwarnings("ignore", message="The epoch parameter in")

# ---- safetensors writer (format: 8-byte LE header length, JSON header, data) ----

DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4"),
          torch.int64: ("I64", "<i8"), torch.int8: ("I8", "i1"), torch.uint8: ("U8", "u1")}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors:
        code, np_dtype = DTYPES[t.dtype]
        data = t.detach().contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data section 8-byte aligned, as the reference writer does
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---- input generators (float32) ----

def randn(*shape, scale=1.0):
    return torch.randn(tuple(shape), generator=GEN) * scale


def uniform(*shape, lo, hi):
    return torch.rand(tuple(shape), generator=GEN) * (hi - lo) + lo


def away_from(x, points, margin=0.05):
    """Move values within `margin` of a kink point to 2*margin beyond it."""
    for p in points:
        d = x - p
        near = d.abs() < margin
        x = torch.where(near, p + torch.where(d >= 0, 2 * margin, -2 * margin) + d, x)
    return x


def nonzero(*shape, lo=0.5, hi=2.0):
    """Values with |v| in [lo, hi) and a random sign (safe divisors)."""
    mag = uniform(*shape, lo=lo, hi=hi)
    sign = torch.where(torch.rand(tuple(shape), generator=GEN) < 0.5, -1.0, 1.0)
    return mag * sign


# ---- case registry ----

TENSORS = []
META = {}
CASES = []


def fmt(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt(e) for e in v)
    return repr(v) if isinstance(v, float) else str(v)


def case(name, op, inputs, fn, params=None, grads=None, updated=()):
    """inputs: list of (key, tensor) (float32 or int32). fn(*inputs as float64/int64,
    in order) returns the output. grads: keys with a gradient (default: every float input)."""
    assert name not in CASES, name
    if grads is None:
        grads = [k for k, t in inputs if t.dtype == torch.float32]
    args = {}
    for k, t in inputs:
        if t.dtype == torch.float32:
            a = t.double().clone()
            if k in grads:
                a.requires_grad_(True)
        else:
            a = t.long()
        args[k] = a
    y = fn(*args.values())
    gy = randn(*y.shape)
    if grads:
        y.backward(gy.double())
    CASES.append(name)
    META[name + ".op"] = op
    META[name + ".inputs"] = ",".join(k for k, _ in inputs)
    META[name + ".grads"] = ",".join(grads)
    if updated:
        META[name + ".updated"] = ",".join(updated)
    for p, v in (params or {}).items():
        META[name + "." + p] = fmt(v)
    for k, t in inputs:
        TENSORS.append((name + "." + k, t))
    TENSORS.append((name + ".y", y.detach().float()))
    TENSORS.append((name + ".gy", gy))
    for k in grads:
        g = args[k].grad
        assert g is not None, (name, k)
        TENSORS.append((name + ".d" + k, g.float()))
    for k in updated:
        TENSORS.append((name + "." + k + "_out", args[k].detach().float()))


# ---- elementwise ----

def binary_cases():
    for op, f in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)):
        case(op + "_same", op, [("a", randn(5, 7)), ("b", randn(5, 7))], lambda a, b, f=f: f(a, b))
        case(op + "_bcast", op, [("a", randn(2, 3, 4)), ("b", randn(3, 1))], lambda a, b, f=f: f(a, b))
        case(op + "_bcast2", op, [("a", randn(4, 1, 5)), ("b", randn(3, 5))], lambda a, b, f=f: f(a, b))
    case("div_same", "div", [("a", randn(5, 7)), ("b", nonzero(5, 7))], lambda a, b: a / b)
    case("div_bcast", "div", [("a", randn(3, 4)), ("b", nonzero(2, 1, 4))], lambda a, b: a / b)
    case("div_bcast2", "div", [("a", randn(2, 13, 1)), ("b", nonzero(13, 3))], lambda a, b: a / b)
    case("add_scalar", "add_scalar", [("x", randn(3, 13))], lambda x: x + 0.75, {"scalar": 0.75})
    case("mul_scalar", "mul_scalar", [("x", randn(3, 13))], lambda x: x * -1.5, {"scalar": -1.5})


def unary_cases():
    case("neg", "neg", [("x", randn(4, 13))], torch.neg)
    case("exp", "exp", [("x", uniform(4, 13, lo=-3.0, hi=3.0))], torch.exp)
    case("log", "log", [("x", uniform(4, 13, lo=0.05, hi=5.0))], torch.log)
    case("sqrt", "sqrt", [("x", uniform(4, 13, lo=0.05, hi=5.0))], torch.sqrt)
    case("pow_2", "pow", [("x", randn(4, 13))], lambda x: torch.pow(x, 2.0), {"exponent": 2.0})
    case("pow_3", "pow", [("x", randn(4, 13))], lambda x: torch.pow(x, 3.0), {"exponent": 3.0})
    case("pow_frac", "pow", [("x", uniform(4, 13, lo=0.1, hi=3.0))], lambda x: torch.pow(x, 2.5),
         {"exponent": 2.5})
    case("pow_neg", "pow", [("x", uniform(4, 13, lo=0.3, hi=3.0))], lambda x: torch.pow(x, -0.5),
         {"exponent": -0.5})
    case("abs", "abs", [("x", away_from(randn(4, 13), [0.0]))], torch.abs)
    case("clamp", "clamp", [("x", away_from(randn(4, 13), [-0.5, 0.7]))], lambda x: torch.clamp(x, -0.5, 0.7),
         {"lo": -0.5, "hi": 0.7})
    case("relu", "relu", [("x", away_from(randn(4, 13), [0.0]))], F.relu)
    case("relu6", "relu6", [("x", away_from(uniform(4, 13, lo=-3.0, hi=9.0), [0.0, 6.0]))], F.relu6)
    case("sigmoid", "sigmoid", [("x", randn(4, 13, scale=3.0))], torch.sigmoid)
    case("tanh", "tanh", [("x", randn(4, 13, scale=2.0))], torch.tanh)


# ---- reductions ----

def reduce_cases():
    case("sum_all", "sum", [("x", randn(3, 5, 7))], torch.sum)
    case("sum_dim1", "sum", [("x", randn(3, 5, 7))], lambda x: x.sum(dim=1), {"dims": [1], "keepdim": False})
    case("sum_dims_keep", "sum", [("x", randn(3, 5, 7))], lambda x: x.sum(dim=(0, 2), keepdim=True),
         {"dims": [0, 2], "keepdim": True})
    case("sum_neg_dim", "sum", [("x", randn(3, 5, 7))], lambda x: x.sum(dim=-1), {"dims": [-1], "keepdim": False})
    case("mean_all", "mean", [("x", randn(3, 5, 7))], torch.mean)
    case("mean_hw_keep", "mean", [("x", randn(2, 13, 5, 3))], lambda x: x.mean(dim=(2, 3), keepdim=True),
         {"dims": [2, 3], "keepdim": True})
    case("mean_dim0", "mean", [("x", randn(6, 13))], lambda x: x.mean(dim=0), {"dims": [0], "keepdim": False})
    # randn has no ties, so the arg-max (and the gradient's target) is unique.
    case("max_dim1", "max", [("x", randn(4, 13, 3))], lambda x: x.max(dim=1).values, {"dim": 1, "keepdim": False})
    case("max_last_keep", "max", [("x", randn(4, 13))], lambda x: x.max(dim=-1, keepdim=True).values,
         {"dim": -1, "keepdim": True})


# ---- linear algebra ----

def linalg_cases():
    case("matmul_2d", "matmul", [("a", randn(5, 7)), ("b", randn(7, 3))], torch.matmul)
    case("matmul_batched", "matmul", [("a", randn(2, 3, 4, 6)), ("b", randn(2, 3, 6, 5))], torch.matmul)
    case("matmul_bcast", "matmul", [("a", randn(2, 1, 4, 6)), ("b", randn(3, 6, 5))], torch.matmul)
    case("matmul_2d_batched", "matmul", [("a", randn(4, 6)), ("b", randn(3, 6, 5))], torch.matmul)
    case("matmul_vec", "matmul", [("a", randn(5, 6)), ("b", randn(6))], torch.matmul)
    case("matmul_vecmat", "matmul", [("a", randn(6)), ("b", randn(6, 4))], torch.matmul)
    case("linear_bias", "linear", [("x", randn(4, 7)), ("w", randn(5, 7)), ("b", randn(5))], F.linear)
    case("linear_3d_nobias", "linear", [("x", randn(2, 3, 7)), ("w", randn(13, 7))], F.linear)


# ---- convolution ----

def conv_case(name, x, w, bias, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1):
    inputs = [("x", x), ("w", w)] + ([("b", randn(w.shape[0]))] if bias else [])
    params = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
              "dil_h": dil[0], "dil_w": dil[1], "groups": groups}
    case(name, "conv2d", inputs,
         lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dil, groups=groups), params)


def conv_cases():
    conv_case("conv_basic", randn(2, 3, 9, 9), randn(4, 3, 3, 3, scale=0.3), True)
    conv_case("conv_stride_pad", randn(2, 3, 10, 11), randn(5, 3, 3, 3, scale=0.3), True, (2, 2), (1, 1))
    conv_case("conv_dilation", randn(1, 2, 11, 11), randn(3, 2, 3, 3, scale=0.3), False, (1, 1), (2, 2), (2, 2))
    conv_case("conv_groups", randn(2, 6, 7, 7), randn(9, 2, 3, 3, scale=0.3), True, (1, 1), (1, 1), groups=3)
    conv_case("conv_depthwise", randn(2, 13, 8, 8), randn(13, 1, 3, 3, scale=0.3), True, (2, 2), (1, 1),
              groups=13)
    conv_case("conv_pointwise", randn(2, 13, 5, 5), randn(7, 13, 1, 1, scale=0.3), False)
    conv_case("conv_asym", randn(1, 3, 9, 8), randn(4, 3, 5, 3, scale=0.3), True, (2, 1), (2, 0), (1, 2))


# ---- normalization ----

def bn_cases():
    c = 13
    def rstats():
        return randn(c, scale=0.5), uniform(c, lo=0.5, hi=2.0)
    rm, rv = rstats()
    case("bn_train", "batch_norm",
         [("x", randn(4, c, 5, 5, scale=2.0) + 1.0), ("w", uniform(c, lo=0.5, hi=1.5)), ("b", randn(c)),
          ("rm", rm), ("rv", rv)],
         lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5),
         {"training": True, "momentum": 0.1, "eps": 1e-5}, grads=["x", "w", "b"], updated=["rm", "rv"])
    rm, rv = rstats()
    case("bn_train_noaffine", "batch_norm",
         [("x", randn(3, c, 4, 3) * 0.5 - 0.3), ("rm", rm), ("rv", rv)],
         lambda x, rm, rv: F.batch_norm(x, rm, rv, None, None, training=True, momentum=0.3, eps=1e-3),
         {"training": True, "momentum": 0.3, "eps": 1e-3}, grads=["x"], updated=["rm", "rv"])
    rm, rv = rstats()
    case("bn_eval", "batch_norm",
         [("x", randn(2, c, 4, 4)), ("w", uniform(c, lo=0.5, hi=1.5)), ("b", randn(c)), ("rm", rm), ("rv", rv)],
         lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False, momentum=0.1, eps=1e-5),
         {"training": False, "momentum": 0.1, "eps": 1e-5}, grads=["x", "w", "b"])


# ---- pooling ----

def pool_params(k, s, p, ceil_mode=False, count_include_pad=True):
    return {"kernel_h": k[0], "kernel_w": k[1], "stride_h": s[0], "stride_w": s[1], "pad_h": p[0], "pad_w": p[1],
            "ceil_mode": ceil_mode, "count_include_pad": count_include_pad}


def pool_cases():
    def maxpool(name, x, k, s, p, ceil_mode=False):
        case(name, "max_pool2d", [("x", x)],
             lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode), pool_params(k, s, p, ceil_mode))

    def avgpool(name, x, k, s, p, ceil_mode=False, cip=True):
        case(name, "avg_pool2d", [("x", x)],
             lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode, count_include_pad=cip),
             pool_params(k, s, p, ceil_mode, cip))

    # Overlapping windows (stride < kernel) on randn inputs: the maximum of every window is unique.
    maxpool("maxpool_k3s2p1", randn(2, 3, 9, 9), (3, 3), (2, 2), (1, 1))
    maxpool("maxpool_k2s2", randn(2, 13, 6, 7), (2, 2), (2, 2), (0, 0))
    maxpool("maxpool_ceil", randn(1, 2, 8, 8), (3, 3), (2, 2), (0, 0), ceil_mode=True)
    maxpool("maxpool_rect", randn(1, 3, 7, 9), (2, 3), (1, 2), (1, 1))
    avgpool("avgpool_k3s2p1", randn(2, 3, 9, 9), (3, 3), (2, 2), (1, 1))
    avgpool("avgpool_nopadcount", randn(2, 3, 9, 9), (3, 3), (2, 2), (1, 1), cip=False)
    avgpool("avgpool_ceil", randn(1, 3, 8, 8), (3, 3), (2, 2), (1, 1), ceil_mode=True)
    avgpool("avgpool_ceil_nopadcount", randn(1, 3, 8, 8), (3, 3), (2, 2), (1, 1), ceil_mode=True, cip=False)
    avgpool("avgpool_rect", randn(2, 2, 7, 9), (2, 3), (1, 2), (0, 1))
    for name, shape, out in (("adaptive_7to3", (2, 3, 7, 7), (3, 3)), ("adaptive_5x9to2x4", (1, 13, 5, 9), (2, 4)),
                             ("adaptive_global", (2, 13, 4, 5), (1, 1)), ("adaptive_up", (1, 2, 3, 3), (5, 4))):
        case(name, "adaptive_avg_pool2d", [("x", randn(*shape))],
             lambda x, out=out: F.adaptive_avg_pool2d(x, out), {"out_h": out[0], "out_w": out[1]})


# ---- shape ----

def shape_cases():
    case("flatten_1", "flatten", [("x", randn(2, 3, 4, 5))], lambda x: torch.flatten(x, 1), {"start": 1, "end": -1})
    case("flatten_01", "flatten", [("x", randn(2, 3, 4, 5))], lambda x: torch.flatten(x, 0, 1),
         {"start": 0, "end": 1})
    case("flatten_23", "flatten", [("x", randn(2, 3, 4, 5))], lambda x: torch.flatten(x, 2, 3),
         {"start": 2, "end": 3})
    case("cat_dim1", "cat", [("a", randn(2, 3, 4)), ("b", randn(2, 1, 4)), ("c", randn(2, 5, 4))],
         lambda a, b, c: torch.cat([a, b, c], 1), {"dim": 1})
    case("cat_dim0", "cat", [("a", randn(3, 13)), ("b", randn(2, 13))], lambda a, b: torch.cat([a, b], 0),
         {"dim": 0})
    case("cat_last", "cat", [("a", randn(2, 3, 2)), ("b", randn(2, 3, 5))], lambda a, b: torch.cat([a, b], -1),
         {"dim": -1})
    case("pad_last", "pad", [("x", randn(2, 3, 5))], lambda x: F.pad(x, (1, 2)), {"pads": [1, 2], "value": 0.0})
    case("pad_hw", "pad", [("x", randn(2, 3, 4, 5))], lambda x: F.pad(x, (1, 0, 2, 3), value=0.5),
         {"pads": [1, 0, 2, 3], "value": 0.5})


# ---- softmax and losses ----

def softmax_cases():
    for fname, f in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        case(fname + "_dim1", fname, [("x", randn(4, 10, scale=5.0))], lambda x, f=f: f(x, dim=1), {"dim": 1})
        case(fname + "_last", fname, [("x", randn(2, 3, 13, scale=3.0))], lambda x, f=f: f(x, dim=-1), {"dim": -1})
        case(fname + "_dim0", fname, [("x", randn(5, 3, scale=2.0))], lambda x, f=f: f(x, dim=0), {"dim": 0})


def loss_cases():
    n, c = 6, 10
    for name, ls, red in (("ce", 0.0, "mean"), ("ce_smooth", 0.1, "mean"), ("ce_smooth_sum", 0.1, "sum"),
                          ("ce_none", 0.0, "none"), ("ce_smooth_none", 0.1, "none")):
        target = torch.randint(0, c, (n,), generator=GEN, dtype=torch.int32)
        case(name, "cross_entropy", [("x", randn(n, c, scale=3.0)), ("t", target)],
             lambda x, t, ls=ls, red=red: F.cross_entropy(x, t, label_smoothing=ls, reduction=red),
             {"label_smoothing": ls, "reduction": red})
    for red in ("mean", "sum", "none"):
        case("mse_" + red, "mse_loss", [("x", randn(4, 13)), ("t", randn(4, 13))],
             lambda x, t, red=red: F.mse_loss(x, t, reduction=red), {"reduction": red})
    for red in ("batchmean", "sum", "mean", "none"):
        x = F.log_softmax(randn(5, 7, scale=2.0), dim=1)
        t = F.softmax(randn(5, 7, scale=2.0), dim=1)
        case("kl_" + red, "kl_div", [("x", x), ("t", t)],
             lambda x, t, red=red: F.kl_div(x, t, reduction=red), {"reduction": red})
    # A target with exact zeros (one-hot-like teacher): those terms are 0 and
    # d/dinput is -target = 0 there; d/dtarget is -inf at 0, so no target gradient.
    t = F.softmax(randn(4, 7, scale=2.0), dim=1)
    t[:, 2] = 0.0
    t[1, 5] = 0.0
    t = t / t.sum(dim=1, keepdim=True)
    case("kl_zero_target", "kl_div", [("x", F.log_softmax(randn(4, 7), dim=1)), ("t", t)],
         lambda x, t: F.kl_div(x, t, reduction="batchmean"), {"reduction": "batchmean"}, grads=["x"])


def io_tensors():
    """One tensor per dtype with known values (checked by test_safetensors.cpp)."""
    TENSORS.append(("io.f32", torch.tensor([[1.5, -2.25, 3.0], [0.0, 1e-3, -7.0]], dtype=torch.float32)))
    TENSORS.append(("io.f64", torch.tensor([0.1, -1.0e10, 3.5], dtype=torch.float64)))
    TENSORS.append(("io.i32", torch.tensor([-2147483648, 0, 2147483647], dtype=torch.int32)))
    # As BatchNorm's num_batches_tracked: a 0-d int64.
    TENSORS.append(("io.i64", torch.tensor(12345, dtype=torch.int64)))
    TENSORS.append(("io.i8", torch.tensor([-128, -1, 0, 127], dtype=torch.int8)))
    TENSORS.append(("io.u8", torch.tensor([0, 1, 128, 255], dtype=torch.uint8)))
    TENSORS.append(("io.empty", torch.zeros(0, 3, dtype=torch.float32)))


# =============================================================================
# Model fixtures (--models): whole-model parity for tests/nn/test_parity.cpp,
# plus optimizer, LR-schedule, clipping and metric references for
# tests/nn/test_optim.cpp and friends. Written to three files in tests/fixtures/,
# each under 5 MB: parity_resnet20.safetensors and parity_mobilenet_v2.safetensors
# (one model each; MobileNetV2 at width 0.25, 261k values per copy) and
# training.safetensors (optim, sched, clip, metrics).
#
# Layout (every name below is a tensor unless marked [meta]):
#   [meta] "models"                 the model of a parity file (resnet20 or mobilenet_v2)
#   [meta] "<m>.width"              mobilenet_v2's width multiplier
#   [meta] "<m>.lr", ".momentum", ".weight_decay", ".steps", ".batch", ".dropout"
#   "<m>.init.<key>"      state dict before training (torchvision names; BN
#                         num_batches_tracked as I64, as torch saves it)
#   "<m>.x", "<m>.target" the fixed batch (F32 N×1×28×28, I32 N; N = 8, 16 for mobilenet_v2)
#   "<m>.logits", "<m>.loss"   first forward, train mode (BN batch statistics)
#   "<m>.grad.<param>"    d loss / d param of that first forward, every parameter
#   "<m>.after.<key>"     state dict after `steps` SGD steps on the same batch
#                         (each step: forward, cross-entropy, backward, step);
#                         running stats included
#   "<m>.eval_logits"     logits of the trained model in eval mode (running stats)
#   "optim.<c>.p0", ".g1".., ".p1"..   a small parameter, the gradient given
#                         before step k and the parameter after step k
#   [meta] "optim.cases", "optim.<c>.type", "optim.<c>.<hyperparameter>"
#   "sched.<c>.lr"        optimizer lr for epochs 0..E-1 (lr in force while
#                         epoch e runs: read before scheduler.step())
#   [meta] "sched.cases", "sched.<c>.base_lr" and the schedule's parameters
#   "clip.<c>.g<i>", ".clipped<i>", ".norm"   clip_grad_norm_ in and out
#   [meta] "clip.cases", "clip.<c>.max_norm", "clip.<c>.norm_type", "clip.<c>.count"
#   "metrics.logits", ".target", ".top1", ".top5" (I32 counts), ".confusion"
#                         (I32 C×C, rows true class, columns argmax)
#
# Numerics: the models run in float64 from the float32 values stored here (as
# the op fixtures do), so the references carry no float32 rounding of their
# own; results are rounded once to F32. One thread, so the file is
# reproducible byte for byte. MobileNetV2's classifier Dropout(0.2) is set to
# p = 0 here, and lowbit's side uses ModelConfig::dropout = 0. Initial weights
# are torchvision's init except BatchNorm's affine parameters, which
# condition_bn() sets so that no activation sits near a ReLU/ReLU6 kink (see
# there: near a kink float32 and float64 take different branches, and the
# gradients then differ by percents for PyTorch itself).
# =============================================================================

import math
import torch.nn as nn


def resnet_cifar(depth, in_channels=1, num_classes=10):
    """CIFAR ResNet (He et al. 2016, option B shortcuts) from torchvision's
    BasicBlock, with torchvision's names; the structure of nn/resnet.cpp's
    resnet20/32/44/56 (3x3 stem, 16 channels, stride 1, no max-pool)."""
    from torchvision.models.resnet import BasicBlock

    class ResNetCifar(nn.Module):
        def __init__(self):
            super().__init__()
            n = (depth - 2) // 6
            self.inplanes = 16
            self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(16, n, 1)
            self.layer2 = self._make_layer(32, n, 2)
            self.layer3 = self._make_layer(64, n, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def _make_layer(self, planes, blocks, stride):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNetCifar()


def mobilenet_v2_gray(width_mult, num_classes=10):
    """torchvision's mobilenet_v2 with a 1-channel stem conv and classifier dropout p = 0."""
    import torchvision
    m = torchvision.models.mobilenet_v2(width_mult=width_mult, num_classes=num_classes)
    old = m.features[0][0]
    m.features[0][0] = nn.Conv2d(1, old.out_channels, 3, old.stride, 1, bias=False)
    nn.init.kaiming_normal_(m.features[0][0].weight, mode="fan_out")
    m.classifier[0].p = 0.0
    return m


def condition_bn(model, gen):
    """Set BatchNorm's affine parameters so that every ReLU/ReLU6 input sits
    at least 3.5 batch standard deviations above the kink at 0: the BN output
    is w*xhat + b with xhat of zero mean and unit variance over the batch, and
      BN feeding an activation   w ~ U(0.1, 0.2), b = 3.5 w + U(0, 0.02)
        (ResNet: every BN: bn1 directly, bn2 and downsample.1 through the
        residual sum; MobileNetV2: the BN of each Conv2dNormActivation)
      other BN (MobileNetV2's linear projections)  w ~ U(0.75, 1.25), b ~ N(0, 0.1)
    The small w keeps activations near torchvision's scale (mean ~0.5, not
    ~3.5 as with w ~ 1), so the classifier's input and the logits stay moderate.

    Why: a gradient is discontinuous at a kink. With torchvision's BN init
    (1, 0) about a million activations sit around zero, and float32 rounding
    moves a few of them across it; one flipped mask changes a weight gradient
    (a sum of ~M terms of random sign) by about 1/sqrt(M), i.e. by 1e-2.
    PyTorch's own float32 gradients then miss its float64 ones by 2-7% on most
    seeds, so a 1e-3 comparison would test luck, not lowbit. Far from the
    kinks, PyTorch's float32 agrees with its float64 to < 1e-4, and some
    activations are still clamped (~1200 in the ResNet, ~90 in MobileNetV2),
    so the masks are exercised."""
    from torchvision.ops.misc import Conv2dNormActivation
    act_bn = {id(m[1]) for m in model.modules() if isinstance(m, Conv2dNormActivation)}
    is_mobilenet = bool(act_bn)
    with torch.no_grad():
        for mod in model.modules():
            if not isinstance(mod, nn.BatchNorm2d):
                continue
            shape = mod.weight.shape
            if id(mod) in act_bn or not is_mobilenet:
                w = torch.rand(shape, generator=gen) * 0.1 + 0.1
                b = 3.5 * w + torch.rand(shape, generator=gen) * 0.02
            else:
                w = torch.rand(shape, generator=gen) * 0.5 + 0.75
                b = torch.randn(shape, generator=gen) * 0.1
            mod.weight.copy_(w)
            mod.bias.copy_(b)


def model_case(out, meta, name, model, gen, batch=8, steps=3, lr=0.01, momentum=0.9, weight_decay=5e-4):
    """lr 0.01: with condition_bn's shifted activations, lr 0.1 overshoots on
    a single repeated batch (loss 3.6 -> 12 in 3 steps, where 0.01 goes
    3.6 -> 2.2); parity holds for both, the smaller rate gives a sane path."""
    condition_bn(model, gen)
    model.train()
    for k, t in model.state_dict().items():
        out.append((name + ".init." + k, t.detach().clone()))
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    target = torch.randint(0, 10, (batch,), generator=gen, dtype=torch.int64)
    out.append((name + ".x", x))
    out.append((name + ".target", target.int()))
    model.double()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    for step in range(steps):
        opt.zero_grad()
        logits = model(x.double())
        loss = F.cross_entropy(logits, target)
        loss.backward()
        if step == 0:
            out.append((name + ".logits", logits.detach().float()))
            out.append((name + ".loss", loss.detach().float()))
            for k, p in model.named_parameters():
                out.append((name + ".grad." + k, p.grad.detach().float()))
        opt.step()
    for k, t in model.state_dict().items():
        out.append((name + ".after." + k, t.detach().float() if t.is_floating_point() else t.detach().clone()))
    model.eval()
    with torch.no_grad():
        out.append((name + ".eval_logits", model(x.double()).float()))
    meta["%s.lr" % name] = fmt(lr)
    meta["%s.momentum" % name] = fmt(momentum)
    meta["%s.weight_decay" % name] = fmt(weight_decay)
    meta["%s.steps" % name] = str(steps)
    meta["%s.batch" % name] = str(batch)
    meta["%s.dropout" % name] = "0.0"


def optim_cases(out, meta, gen):
    cases = {
        "sgd": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=5e-4)),
        "sgd_nesterov": (torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=1e-2, nesterov=True)),
        "sgd_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.0)),
        "sgd_plain": (torch.optim.SGD, dict(lr=0.2)),
        "adam": (torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)),
        "adam_nowd": (torch.optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6)),
        "adamw": (torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
    }
    steps = 3
    for c, (cls, hp) in cases.items():
        p0 = torch.randn(3, 5, generator=gen)
        grads = [torch.randn(3, 5, generator=gen) for _ in range(steps)]
        grads[1][0, 0] = 0.0  # an exact zero gradient: Adam's denominator is then sqrt(v) + eps
        p = p0.double().clone().requires_grad_(True)
        opt = cls([p], **hp)
        out.append(("optim.%s.p0" % c, p0))
        for k, g in enumerate(grads, 1):
            p.grad = g.double()
            opt.step()
            out.append(("optim.%s.g%d" % (c, k), g))
            out.append(("optim.%s.p%d" % (c, k), p.detach().float()))
        meta["optim.%s.type" % c] = cls.__name__
        for key, v in hp.items():
            if key == "betas":
                meta["optim.%s.beta1" % c], meta["optim.%s.beta2" % c] = fmt(v[0]), fmt(v[1])
            else:
                meta["optim.%s.%s" % (c, key)] = fmt(v)
        meta["optim.%s.steps" % c] = str(steps)
    meta["optim.cases"] = ",".join(cases)


def sched_cases(out, meta):
    from torch.optim import lr_scheduler as S
    base_lr, epochs = 0.1, 16
    cases = {
        "step": (lambda o: S.StepLR(o, step_size=3, gamma=0.5), dict(step_size=3, gamma=0.5)),
        "multistep": (lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1),
                      dict(milestones=[2, 5, 9], gamma=0.1)),
        "cosine": (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3), dict(T_max=10, eta_min=1e-3)),
        "linear": (lambda o: S.LinearLR(o, start_factor=0.1, total_iters=4), dict(start_factor=0.1, total_iters=4)),
        "warmup_cosine": (lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                       S.CosineAnnealingLR(o, T_max=10)], milestones=[3]),
                          dict(start_factor=0.1, warmup=3, T_max=10)),
    }
    for c, (make, params) in cases.items():
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=base_lr)
        sched = make(opt)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append(("sched.%s.lr" % c, torch.tensor(lrs, dtype=torch.float64).float()))
        meta["sched.%s.base_lr" % c] = fmt(base_lr)
        for k, v in params.items():
            meta["sched.%s.%s" % (c, k)] = fmt(v)
    meta["sched.cases"] = ",".join(cases)


def clip_cases(out, meta, gen):
    cases = {"clip": (1.0, 2.0), "noclip": (1000.0, 2.0), "inf": (0.5, math.inf)}
    for c, (max_norm, norm_type) in cases.items():
        grads = [torch.randn(4, 3, generator=gen), torch.randn(7, generator=gen) * 0.1,
                 torch.randn(2, 2, 3, generator=gen)]
        ps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = g.double()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        for i, (p, g) in enumerate(zip(ps, grads)):
            out.append(("clip.%s.g%d" % (c, i), g))
            out.append(("clip.%s.clipped%d" % (c, i), p.grad.float()))
        out.append(("clip.%s.norm" % c, norm.float().reshape(())))
        meta["clip.%s.max_norm" % c] = fmt(max_norm)
        meta["clip.%s.norm_type" % c] = "inf" if norm_type == math.inf else fmt(norm_type)
        meta["clip.%s.count" % c] = str(len(grads))
    meta["clip.cases"] = ",".join(cases)


def metric_cases(out, gen):
    n, c = 64, 10
    logits = torch.randn(n, c, generator=gen)
    target = torch.randint(0, c, (n,), generator=gen, dtype=torch.int64)
    top5 = logits.topk(5, dim=1).indices
    pred = logits.argmax(dim=1)
    out.append(("metrics.logits", logits))
    out.append(("metrics.target", target.int()))
    out.append(("metrics.top1", (pred == target).sum().int().reshape(())))
    out.append(("metrics.top5", (top5 == target[:, None]).any(dim=1).sum().int().reshape(())))
    out.append(("metrics.confusion", torch.bincount(target * c + pred, minlength=c * c).reshape(c, c).int()))


MOBILENET_WIDTH = 0.25


def models_fixture(folder):
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(20)
    files = []  # (file name, tensors, metadata)
    out, meta = [], {"models": "resnet20"}
    torch.manual_seed(0)  # torchvision's init draws from the global generator
    model_case(out, meta, "resnet20", resnet_cifar(20), gen)
    files.append(("parity_resnet20.safetensors", out, meta))
    out, meta = [], {"models": "mobilenet_v2", "mobilenet_v2.width": repr(MOBILENET_WIDTH)}
    torch.manual_seed(1)
    # Batch 16: at 28x28 the last stages run at 1x1, where BatchNorm's batch
    # statistics come from the batch alone (batch 8 doubles float32's error there).
    model_case(out, meta, "mobilenet_v2", mobilenet_v2_gray(MOBILENET_WIDTH), gen, batch=16)
    files.append(("parity_mobilenet_v2.safetensors", out, meta))
    out, meta = [], {}
    optim_cases(out, meta, gen)
    sched_cases(out, meta)
    clip_cases(out, meta, gen)
    metric_cases(out, gen)
    files.append(("training.safetensors", out, meta))
    for name, tensors, m in files:
        m["generator"] = "tools/make_fixtures.py --models"
        m["torch_version"] = torch.__version__
        path = os.path.join(folder, name)
        write_safetensors(path, tensors, m)
        print("%s: %d tensors, %d bytes" % (os.path.normpath(path), len(tensors), os.path.getsize(path)))


def resnet18_fixture(path):
    """torchvision resnet18 (3 channels, 1000 classes, seeded random init,
    BN running stats moved by two training-mode batches) as a plain state dict
    at PATH, and the check data (input 1x3x64x64, eval-mode logits computed in
    float64) at PATH with "_check" before the suffix. ~47 MB: git-ignored."""
    import torchvision
    torch.set_num_threads(1)
    torch.manual_seed(18)
    gen = torch.Generator().manual_seed(18)
    model = torchvision.models.resnet18()
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, 64, 64, generator=gen))
    sd = list(model.state_dict().items())
    x = torch.randn(1, 3, 64, 64, generator=gen)
    model.double().eval()
    with torch.no_grad():
        logits = model(x.double()).float()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_safetensors(path, sd, {"generator": "tools/make_fixtures.py --large", "torch_version": torch.__version__})
    check = os.path.splitext(path)[0] + "_check.safetensors"
    write_safetensors(check, [("input", x), ("logits", logits)],
                      {"generator": "tools/make_fixtures.py --large", "model": "resnet18"})
    for p in (path, check):
        print("%s: %d bytes" % (os.path.normpath(p), os.path.getsize(p)))


# ---- data transforms (tests/fixtures/transforms.safetensors) ----
#
# These goldens need only python3-torch (not python3-torchvision), so they
# follow torchvision v0.14's tensor code path with the torch ops it calls:
# Resize(antialias=False) is F.interpolate(mode="bilinear",
# align_corners=False) in float32 (uint8 images: float32, torch.round, back
# to uint8); Normalize is sub_(mean).div_(std); CenterCrop pads with zeros
# when the crop is larger, then crops at int(round((H - h) / 2.0)); Grayscale
# is (0.2989 r + 0.587 g + 0.114 b).to(dtype). All in float32, as torchvision.
# Layout: __metadata__["cases"], "<case>.op", "<case>.<param>"; tensors
# "<case>.x" (input) and "<case>.y" (expected output).

def transforms_fixture(path):
    import torchvision.transforms.functional as TF  # python3-torchvision: the transforms themselves, not a re-implementation
    gen = torch.Generator().manual_seed(0)
    tensors, meta, cases = [], {}, []

    def rand_u8(*shape):
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)

    def rand_f32(*shape):
        return torch.rand(shape, generator=gen, dtype=torch.float32)

    def add(name, op, x, y, **params):
        cases.append(name)
        meta[name + ".op"] = op
        for k, v in params.items():
            meta[name + "." + k] = fmt(v)
        tensors.append((name + ".x", x))
        tensors.append((name + ".y", y.contiguous()))

    x = rand_u8(3, 5, 7)
    add("to_tensor", "to_tensor", x, x.float().div(255))
    for name, shape, mean, std in (("normalize_rgb", (3, 6, 5), [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
                                   ("normalize_gray", (1, 7, 4), [0.2860], [0.3530]),
                                   ("normalize_bcast", (3, 4, 4), [0.5], [0.25])):
        x = rand_f32(*shape)
        m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        add(name, "normalize", x, x.clone().sub_(m).div_(s), mean=mean, std=std)
    for name, shape, size in (("resize_down", (3, 32, 32), [24, 20]), ("resize_up", (1, 5, 7), [13, 11]),
                              ("resize_odd", (2, 17, 9), [7, 16]), ("resize_width_only", (1, 8, 12), [8, 5])):
        x = rand_f32(*shape)
        add(name, "resize", x, TF.resize(x, size, antialias=False), height=size[0], width=size[1])
    for name, shape, size in (("resize_shorter_wide", (3, 20, 30), 16), ("resize_shorter_tall", (1, 33, 14), 10),
                              ("resize_shorter_up", (1, 9, 7), 28)):
        x = rand_f32(*shape)
        add(name, "resize_shorter", x, TF.resize(x, size, antialias=False), size=size)
    x = rand_u8(3, 19, 23)
    add("resize_u8", "resize", x, TF.resize(x, [11, 30], antialias=False), height=11, width=30)
    for name, shape, crop in (("center_crop_even", (3, 10, 12), (6, 8)), ("center_crop_odd", (1, 9, 11), (4, 6)),
                              ("center_crop_half", (2, 29, 31), (28, 28)), ("center_crop_pad", (1, 5, 6), (8, 9)),
                              ("center_crop_pad_one_dim", (3, 7, 10), (9, 4))):
        x = rand_f32(*shape)
        add(name, "center_crop", x, TF.center_crop(x, list(crop)), height=crop[0], width=crop[1])
    x = rand_f32(3, 6, 7)
    add("grayscale_f32", "grayscale", x, TF.rgb_to_grayscale(x, 1), channels=1)
    x = rand_u8(3, 9, 8)
    add("grayscale_u8", "grayscale", x, TF.rgb_to_grayscale(x, 1), channels=1)
    x = rand_u8(3, 4, 5)
    add("grayscale_u8_3", "grayscale", x, TF.rgb_to_grayscale(x, 3), channels=3)

    meta["cases"] = ",".join(cases)
    meta["generator"] = "tools/make_fixtures.py --transforms"
    meta["torch_version"] = torch.__version__
    write_safetensors(path, tensors, meta)
    print("%s: %d cases, %d tensors, %d bytes" % (os.path.normpath(path), len(cases), len(tensors),
                                                 os.path.getsize(path)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.argv[1:2] == ["--transforms"]:
        return transforms_fixture(sys.argv[2] if len(sys.argv) > 2 else
                                  os.path.join(here, "..", "tests", "fixtures", "transforms.safetensors"))
    fixtures = os.path.join(here, "..", "tests", "fixtures")
    args = sys.argv[1:]
    if args[:1] == ["--models"]:
        return models_fixture(args[1] if len(args) > 1 else fixtures)
    if args[:1] == ["--large"]:
        return resnet18_fixture(args[1] if len(args) > 1 else os.path.join(fixtures, "large", "resnet18.safetensors"))
    out = args[0] if args else os.path.join(fixtures, "ops.safetensors")
    torch.manual_seed(0)
    binary_cases()
    unary_cases()
    reduce_cases()
    linalg_cases()
    conv_cases()
    bn_cases()
    pool_cases()
    shape_cases()
    softmax_cases()
    loss_cases()
    io_tensors()
    META["cases"] = ",".join(CASES)
    META["generator"] = "tools/make_fixtures.py"
    META["torch_version"] = torch.__version__
    write_safetensors(out, TENSORS, META)
    print("%s: %d cases, %d tensors, %d bytes" % (os.path.normpath(out), len(CASES), len(TENSORS),
                                                 os.path.getsize(out)))


if __name__ == "__main__":
    main()
