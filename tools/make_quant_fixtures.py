#!/usr/bin/python3
"""Golden fixtures for quant/, computed by PyTorch's own quantization code.

Run:   /usr/bin/python3 tools/make_quant_fixtures.py [OUT]   (default tests/fixtures/quant.safetensors)
Needs: Debian's python3-torch (1.13). Read by tests/quant/test_quant_golden.cpp.

Layout:
  observers   "obs.<case>.x<i>" (the tensors observed, in order), "obs.<case>.scale" (F32),
              "obs.<case>.zero_point" (I32); __metadata__ "obs.<case>" = the spec as
              "kind,bits,signed,symmetric,per_channel,axis,reduce_range" (kind: minmax, ema,
              histogram), "obs.<case>.n" = number of x tensors.
              Histogram cases observe one tensor inside (-1, 1): PyTorch 1.13 passes
              min=int(min_val), max=int(max_val) to torch.histc, which for such a tensor
              falls back to the tensor's own range (the correct one); on wider or repeated
              observations its bins no longer match its min/max, and lowbit does not copy that.
  fake quant  "fq.<case>.x", ".scale", ".zero_point", ".y", ".gy", ".dx";
              __metadata__ "fq.<case>" = "qmin,qmax,axis" (axis -1: per tensor).
              y and dx from torch.fake_quantize_per_tensor_affine / _per_channel_affine.
  LSQ         "lsq.<case>.x", ".scale", ".offset" (LSQ+ only), ".y", ".gy", ".dx", ".dscale",
              ".doffset"; __metadata__ "lsq.<case>" = "qmin,qmax,axis,zero_point,grad_scale,plus".
              y and the gradients from the plain-autograd LSQ below (round through a
              straight-through estimator, gradient scale by a hook on the step).
  LSQ step    "lsqg.<case>.x", ".scale", ".y", ".gy", ".dx", ".dscale"; __metadata__ "lsqg.<case>" =
  gradient    "bits,signed,per_channel,axis,qmin,qmax". y and the gradients from PyTorch's own
              learnable fake quant (torch._fake_quantize_learnable_per_{tensor,channel}_affine)
              with _LearnableFakeQuantize's grad_factor 1/sqrt(numel·quant_max): the test runs
              lowbit's LsqQuantizer, which computes its own gradient scale. Zero point 0 (weights,
              ReLU outputs), where lowbit's Qp = qmax − zp is quant_max; each step 1.25× its
              LSQ initial value 2·mean|x|/sqrt(Qp), where lowbit's shrink factor is 1. No x/s lies in
              the half step beyond a clip edge: there PyTorch masks on round(x/s), lowbit (as the
              LSQ paper) on x/s.
  __metadata__ "cases" lists "obs.*", "fq.*", "lsq.*" and "lsqg.*" case names.
"""
import os
import sys
import warnings

try:
    import torch
    from torch.ao.quantization.observer import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                                MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)
except ImportError:
    sys.exit("make_quant_fixtures.py: PyTorch is not importable by %s (apt-get install python3-torch; "
             "run with /usr/bin/python3)" % sys.executable)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

warnings.filterwarnings("ignore", message="Please use quant_min and quant_max")
GEN = torch.Generator().manual_seed(0)
TENSORS, META, CASES = [], {}, []


def randn(*shape, scale=1.0, shift=0.0):
    return torch.randn(tuple(shape), generator=GEN) * scale + shift


def spec_dtype(signed, bits, reduce_range):
    dtype = torch.qint8 if signed else torch.quint8
    if bits == 8:
        return dtype, {}
    b = bits - (1 if reduce_range else 0)
    lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed else (0, (1 << b) - 1)
    return dtype, {"quant_min": lo, "quant_max": hi}


def observer_case(name, kind, xs, bits=8, signed=False, symmetric=False, per_channel=False, axis=0,
                  reduce_range=False):
    dtype, rng = spec_dtype(signed, bits, reduce_range)
    if per_channel:
        qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        cls = PerChannelMinMaxObserver if kind == "minmax" else MovingAveragePerChannelMinMaxObserver
        obs = cls(ch_axis=axis, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, **rng)
    else:
        qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        cls = {"minmax": MinMaxObserver, "ema": MovingAverageMinMaxObserver, "histogram": HistogramObserver}[kind]
        obs = cls(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, **rng)
    for i, x in enumerate(xs):
        obs(x)
        TENSORS.append(("obs.%s.x%d" % (name, i), x))
    scale, zp = obs.calculate_qparams()
    TENSORS.append(("obs.%s.scale" % name, scale.float().reshape(-1)))
    TENSORS.append(("obs.%s.zero_point" % name, zp.int().reshape(-1)))
    META["obs." + name] = ",".join(str(v) for v in (kind, bits, int(signed), int(symmetric), int(per_channel), axis,
                                                    int(reduce_range)))
    META["obs.%s.n" % name] = str(len(xs))
    CASES.append("obs." + name)


def observer_cases():
    batches = [randn(4, 3, 5, 5, scale=s, shift=m) for s, m in ((1.0, 0.2), (1.5, -0.3), (0.7, 0.9))]
    observer_case("minmax_u8", "minmax", batches)
    observer_case("minmax_s8_sym", "minmax", batches, signed=True, symmetric=True)
    observer_case("minmax_u8_reduced", "minmax", batches, reduce_range=True)
    observer_case("minmax_u4", "minmax", batches, bits=4)
    observer_case("ema_u8", "ema", batches)
    observer_case("ema_s8_sym", "ema", batches, signed=True, symmetric=True)
    w = randn(6, 3, 3, 3, scale=0.3)
    observer_case("pc_minmax_s8_sym_axis0", "minmax", [w], signed=True, symmetric=True, per_channel=True, axis=0)
    observer_case("pc_minmax_s4_sym_axis0", "minmax", [w], bits=4, signed=True, symmetric=True, per_channel=True)
    observer_case("pc_minmax_u8_axis1", "minmax", batches, per_channel=True, axis=1)
    observer_case("pc_ema_u8_axis1", "ema", batches, per_channel=True, axis=1)
    inside = (randn(2, 4, 9, 9, scale=0.25).clamp(-0.9, 0.95))
    observer_case("histogram_u8", "histogram", [inside])
    observer_case("histogram_s8_sym", "histogram", [inside], signed=True, symmetric=True)
    relu_like = (randn(2, 4, 9, 9, scale=0.3).abs() * (randn(2, 4, 9, 9) > 0.5).float()).clamp(max=0.97)
    observer_case("histogram_u8_relu", "histogram", [relu_like])
    # a narrow bulk with a few far outliers: the L2 search clips them
    bulk = randn(8, 16, 8, 8, scale=0.05)
    bulk.view(-1)[::997] = 0.93
    bulk.view(-1)[5::1499] = -0.6
    observer_case("histogram_outliers_u8", "histogram", [bulk])
    observer_case("histogram_outliers_s8_sym", "histogram", [bulk], signed=True, symmetric=True)


def fq_case(name, x, scale, zp, qmin, qmax, axis=-1):
    xr = x.clone().requires_grad_(True)
    if axis < 0:
        y = torch.fake_quantize_per_tensor_affine(xr, float(scale[0]), int(zp[0]), qmin, qmax)
    else:
        y = torch.fake_quantize_per_channel_affine(xr, scale, zp.int(), axis, qmin, qmax)
    gy = randn(*y.shape)
    y.backward(gy)
    for k, t in (("x", x), ("scale", scale), ("zero_point", zp.int()), ("y", y.detach()), ("gy", gy),
                 ("dx", xr.grad)):
        TENSORS.append(("fq.%s.%s" % (name, k), t))
    META["fq." + name] = "%d,%d,%d" % (qmin, qmax, axis)
    CASES.append("fq." + name)


def fq_cases():
    x = randn(3, 4, 6, 6, scale=2.0)
    fq_case("u8", x, torch.tensor([0.02]), torch.tensor([128]), 0, 255)
    fq_case("u8_zp3", x, torch.tensor([0.0137]), torch.tensor([3]), 0, 255)
    fq_case("s8", x, torch.tensor([0.011]), torch.tensor([0]), -128, 127)
    fq_case("s4", x, torch.tensor([0.3]), torch.tensor([0]), -8, 7)
    fq_case("u2", x, torch.tensor([0.7]), torch.tensor([1]), 0, 3)
    fq_case("u7", x, torch.tensor([0.05]), torch.tensor([60]), 0, 127)
    # exact ties: x = (k + 0.5)·scale rounds half to even
    ties = (torch.arange(-20, 20, dtype=torch.float32) + 0.5) * 0.25
    fq_case("ties", ties, torch.tensor([0.25]), torch.tensor([0]), -8, 7)
    pc_scale = torch.tensor([0.01, 0.02, 0.05, 0.003])
    fq_case("pc_s8_axis1", x, pc_scale, torch.tensor([0, 0, 0, 0]), -128, 127, axis=1)
    fq_case("pc_u8_axis1", x, pc_scale, torch.tensor([0, 128, 17, 255]), 0, 255, axis=1)
    w = randn(4, 3, 3, 3)
    fq_case("pc_s4_axis0", w, torch.tensor([0.2, 0.1, 0.3, 0.05]), torch.tensor([0, 0, 0, 0]), -8, 7, axis=0)


def lsq_reference(x, s, beta, zp, qmin, qmax, g, axis):
    """LSQ / LSQ+ in plain autograd: v = (x - beta)·(1/s); y = (clamp(round(v) + zp) - zp)·s + beta."""
    shape = [1] * x.dim()
    if axis >= 0:
        shape[axis] = -1
    s_b = s.reshape(shape)
    s_b.register_hook(lambda grad: grad * g)  # gradient scale on the step
    v = (x - beta) * (1.0 / s_b)
    vc = torch.clamp(v + zp, qmin, qmax) - zp
    vr = vc + (torch.round(vc) - vc).detach()  # round half to even with a straight-through gradient
    return vr * s_b + beta


def lsq_case(name, x, scale, qmin, qmax, axis=-1, zp=0, offset=None):
    xr = x.clone().requires_grad_(True)
    sr = scale.clone().requires_grad_(True)
    br = offset.clone().requires_grad_(True) if offset is not None else None
    per_scale = x.numel() // scale.numel()
    g = 1.0 / ((per_scale * max(1, qmax - zp)) ** 0.5)
    if br is not None:
        br.register_hook(lambda grad: grad * g)
    y = lsq_reference(xr, sr, br if br is not None else 0.0, zp, qmin, qmax, g, axis)
    gy = randn(*y.shape)
    y.backward(gy)
    items = [("x", x), ("scale", scale), ("y", y.detach()), ("gy", gy), ("dx", xr.grad), ("dscale", sr.grad)]
    if br is not None:
        items += [("offset", offset), ("doffset", br.grad)]
    for k, t in items:
        TENSORS.append(("lsq.%s.%s" % (name, k), t))
    META["lsq." + name] = "%d,%d,%d,%d,%r,%d" % (qmin, qmax, axis, zp, float(torch.tensor(g, dtype=torch.float32)),
                                                 int(br is not None))
    CASES.append("lsq." + name)


def lsq_cases():
    x = randn(2, 4, 5, 5)
    lsq_case("s4", x, torch.tensor([0.21]), -8, 7)
    lsq_case("s2", x, torch.tensor([0.6]), -2, 1)
    lsq_case("u4_relu", x.clamp(min=0), torch.tensor([0.15]), 0, 15)
    lsq_case("u8_zp", x, torch.tensor([0.02]), 0, 255, zp=120)
    w = randn(4, 3, 3, 3, scale=0.5)
    lsq_case("pc_s4_axis0", w, torch.tensor([0.1, 0.2, 0.05, 0.15]), -8, 7, axis=0)
    lsq_case("plus_u4", x, torch.tensor([0.3]), 0, 15, offset=torch.tensor([-1.2]))
    lsq_case("plus_u2", x, torch.tensor([0.9]), 0, 3, offset=torch.tensor([-0.8]))


def lsq_grad_case(name, x, bits, signed, per_channel=False, axis=0):
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    dims = [d for d in range(x.dim()) if d != axis] if per_channel else list(range(x.dim()))
    mean_abs = x.abs().mean(dim=dims) if per_channel else x.abs().mean().reshape(1)
    scale = (1.25 * 2.0 * mean_abs / (qmax ** 0.5)).float()
    # lowbit's LSQ masks the clip on v = x/s (the paper's); PyTorch's learnable op on round(v).
    # They differ only for v in the half step beyond a clip edge: move those elements out of it.
    shape = [1] * x.dim()
    if per_channel:
        shape[axis] = -1
    s_b = scale.reshape(shape)
    v = x / s_b
    band = ((v > qmax) & (v < qmax + 0.5)) | ((v < qmin) & (v > qmin - 0.5))
    x = torch.where(band, torch.where(v > 0, qmax + 0.75, qmin - 0.75) * s_b, x)
    new_mean = x.abs().mean(dim=dims) if per_channel else x.abs().mean().reshape(1)
    assert bool((scale >= 2.0 * new_mean / (qmax ** 0.5)).all()), name  # lowbit's shrink factor stays 1
    grad_factor = 1.0 / ((x.numel() * qmax) ** 0.5)
    xr = x.clone().requires_grad_(True)
    sr = scale.clone().requires_grad_(True)
    if per_channel:
        zp = torch.zeros(scale.numel())
        y = torch._fake_quantize_learnable_per_channel_affine(xr, sr, zp, axis, qmin, qmax, grad_factor)
    else:
        zp = torch.zeros(1)
        y = torch._fake_quantize_learnable_per_tensor_affine(xr, sr, zp, qmin, qmax, grad_factor)
    gy = randn(*y.shape)
    y.backward(gy)
    for k, t in (("x", x), ("scale", scale), ("y", y.detach()), ("gy", gy), ("dx", xr.grad), ("dscale", sr.grad)):
        TENSORS.append(("lsqg.%s.%s" % (name, k), t))
    META["lsqg." + name] = "%d,%d,%d,%d,%d,%d" % (bits, int(signed), int(per_channel), axis, qmin, qmax)
    CASES.append("lsqg." + name)


def lsq_grad_cases():
    x = randn(2, 4, 5, 5)
    lsq_grad_case("s4", x, 4, True)
    lsq_grad_case("u8_relu", x.clamp(min=0), 8, False)
    lsq_grad_case("pc_s8_axis0", randn(6, 3, 3, 3, scale=0.3), 8, True, per_channel=True, axis=0)
    lsq_grad_case("pc_s2_axis0", randn(4, 8, scale=0.5), 2, True, per_channel=True, axis=0)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "quant.safetensors")
    torch.manual_seed(0)
    observer_cases()
    fq_cases()
    lsq_cases()
    lsq_grad_cases()
    META["cases"] = ",".join(CASES)
    META["generator"] = "tools/make_quant_fixtures.py"
    META["torch_version"] = torch.__version__
    write_safetensors(out, TENSORS, META)
    print("%s: %d cases, %d tensors, %d bytes" % (os.path.normpath(out), len(CASES), len(TENSORS),
                                                 os.path.getsize(out)))


if __name__ == "__main__":
    main()
