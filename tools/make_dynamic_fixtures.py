#!/usr/bin/python3
"""Golden fixtures for dynamic quantization (quant/dynamic.h), computed by PyTorch.

Run:   /usr/bin/python3 tools/make_dynamic_fixtures.py [OUT]   (default tests/fixtures/dynamic.safetensors)
Needs: Debian's python3-torch (1.13; the onednn engine). Read by tests/quant/test_dynamic.cpp.

Layout:
  qparams   "qp.<i>.x" (F32, the observed values), "qp.<i>.scale" (F32: PyTorch's double
            scale narrowed to fp32, as every kernel uses it), "qp.<i>.zero_point" (I32):
            torch._choose_qparams_per_tensor(x, reduce_range), the grid PyTorch's dynamic
            Linear gives its input; __metadata__ "qp.<i>" = reduce_range (0/1), "qp.n" = count.
  linear    "dl.<case>.weight" (F32 out×in), ".bias" (F32), ".x" (F32 M×in),
            ".weight_q" (I8, PyTorch's quantized weight), ".weight_scale" (F32),
            ".x_q" (U8: x quantized on PyTorch's chosen grid by torch.quantize_per_tensor),
            ".y" (F32: torch.nn.quantized.dynamic.Linear, or LinearReLU, on that weight);
            __metadata__ "dl.<case>" = "per_channel,reduce_range,relu"; "cases" lists them.
"""
import os
import sys

try:
    import torch
    import torch.nn.intrinsic as nni
    import torch.nn.intrinsic.quantized.dynamic as nniqd
    import torch.nn.quantized.dynamic as nnqd
except ImportError:
    sys.exit("make_dynamic_fixtures.py: PyTorch is not importable by %s (apt-get install python3-torch; "
             "run with /usr/bin/python3)" % sys.executable)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

GEN = torch.Generator().manual_seed(0)
TENSORS, META, CASES = [], {}, []


def qparams_cases():
    ranges = [(-1.0, 1.0), (-0.3, 2.7), (0.0, 0.0), (0.5, 3.0), (-4.0, -0.25), (-1e-6, 2e-6), (0.0, 1e-3),
              (-1e-3, 0.0), (-123.4, 56.7), (-1e-30, 1e-30), (3.0, 3.0), (-2.5, 1e-8), (-1e-8, 7.0),
              (-0.0078125, 1.9921875)]
    for _ in range(40):
        a, b = sorted((torch.randn(2, generator=GEN) * torch.rand(1, generator=GEN) * 10).tolist())
        ranges.append((a, b))
    n = 0
    for lo, hi in ranges:
        for rr in (False, True):
            x = torch.tensor([lo, hi], dtype=torch.float32)
            scale, zp = torch._choose_qparams_per_tensor(x, rr)
            TENSORS.extend([("qp.%d.x" % n, x), ("qp.%d.scale" % n, torch.tensor([scale], dtype=torch.float32)),
                            ("qp.%d.zero_point" % n, torch.tensor([zp], dtype=torch.int32))])
            META["qp.%d" % n] = "1" if rr else "0"
            n += 1
    META["qp.n"] = str(n)


def linear_case(name, m, k, n, per_channel, reduce_range, relu, x_scale=1.0, x_shift=0.0, bias=True):
    lin = torch.nn.Linear(k, n, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n, k, generator=GEN) * 0.1)
        if bias:
            lin.bias.copy_(torch.randn(n, generator=GEN) * 0.1)
    x = torch.randn(m, k, generator=GEN) * x_scale + x_shift
    float_mod = nni.LinearReLU(lin, torch.nn.ReLU()) if relu else lin
    qconfig = (torch.ao.quantization.per_channel_dynamic_qconfig if per_channel
               else torch.ao.quantization.default_dynamic_qconfig)
    float_mod.qconfig = lin.qconfig = qconfig
    qmod = (nniqd.LinearReLU if relu else nnqd.Linear).from_float(float_mod)
    w, b = qmod._packed_params._weight_bias()
    with torch.no_grad():
        y = torch.ops.quantized.linear_relu_dynamic(x, qmod._packed_params._packed_params, reduce_range) if relu \
            else torch.ops.quantized.linear_dynamic(x, qmod._packed_params._packed_params, reduce_range)
    scale, zp = torch._choose_qparams_per_tensor(x, reduce_range)
    x_q = torch.quantize_per_tensor(x, scale, zp, torch.quint8).int_repr()
    ws = w.q_per_channel_scales() if per_channel else torch.tensor([w.q_scale()])
    p = "dl." + name
    TENSORS.extend([(p + ".weight", lin.weight.detach().clone()),
                    (p + ".bias", (lin.bias.detach().clone() if bias else torch.zeros(n))),
                    (p + ".x", x), (p + ".weight_q", w.int_repr()), (p + ".weight_scale", ws.float()),
                    (p + ".x_q", x_q), (p + ".y", y.float())])
    META[p] = "%d,%d,%d" % (per_channel, reduce_range, relu)
    CASES.append(p)


def linear_cases():
    for pc in (False, True):
        for rr in (False, True):
            tag = ("pc" if pc else "pt") + ("_rr" if rr else "")
            linear_case("small_" + tag, 5, 64, 16, pc, rr, False)
            linear_case("mnist_" + tag, 1, 784, 32, pc, rr, False, x_scale=0.8, x_shift=0.4)
            linear_case("batch_" + tag, 32, 300, 10, pc, rr, False)
            linear_case("relu_" + tag, 7, 128, 24, pc, rr, True)
    linear_case("positive_input", 4, 96, 12, False, False, False, x_scale=0.5, x_shift=3.0)
    linear_case("no_bias", 3, 50, 9, True, False, False, bias=False)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "dynamic.safetensors")
    torch.backends.quantized.engine = "onednn"
    qparams_cases()
    linear_cases()
    META["cases"] = ",".join(CASES)
    META["torch"] = torch.__version__
    META["engine"] = torch.backends.quantized.engine
    write_safetensors(out, TENSORS, META)
    print("wrote %s: %d tensors, %d linear cases" % (out, len(TENSORS), len(CASES)))


if __name__ == "__main__":
    main()
