#!/usr/bin/python3
"""Golden fixtures for distill/ (logit KD and attention transfer), computed by PyTorch.

Run:   /usr/bin/python3 tools/make_distill_fixtures.py [OUT]   (default tests/fixtures/distill.safetensors)
Needs: Debian's python3-torch (1.13). Read by tests/distill/test_distill.cpp.

Layout (every case: the loss "<case>.loss" (F32 scalar as [1]) and the gradient of
the loss with respect to the student's tensor "<case>.ds"):
  kd.<i>     ".s", ".t" (F32 N×C logits), ".y" (I32 labels); __metadata__ "kd.<i>" =
             "T,alpha,label_smoothing". loss = alpha·T²·F.kl_div(F.log_softmax(s/T, 1),
             F.softmax(t/T, 1), reduction="batchmean") + (1 − alpha)·F.cross_entropy(s, y,
             label_smoothing=…) (the alpha = 0 / 1 cases drop the other term).
  at.<i>     ".s", ".t" (F32 N×C×H×W features); __metadata__ "at.<i>" = "p".
             at(x) = F.normalize(x.abs().pow(p).mean(1, keepdim=True) [adaptive-avg-pooled to the
             smaller H×W when the sizes differ] .flatten(1)); loss = (at(s) − at(t)).pow(2).mean()
             (Zagoruyko & Komodakis's at_loss).
  __metadata__ "cases" lists them.
"""
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("make_distill_fixtures.py: PyTorch is not importable by %s (apt-get install python3-torch; "
             "run with /usr/bin/python3)" % sys.executable)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

GEN = torch.Generator().manual_seed(0)
TENSORS, META, CASES = [], {}, []


def kd_case(i, n, c, T, alpha, ls, scale=3.0):
    s = (torch.randn(n, c, generator=GEN) * scale).requires_grad_()
    t = torch.randn(n, c, generator=GEN) * scale
    y = torch.randint(0, c, (n,), generator=GEN)
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    hard = F.cross_entropy(s, y, label_smoothing=ls)
    loss = hard if alpha == 0 else soft if alpha == 1 else alpha * soft + (1 - alpha) * hard
    loss.backward()
    p = "kd.%d" % i
    TENSORS.extend([(p + ".s", s.detach()), (p + ".t", t), (p + ".y", y.to(torch.int32)),
                    (p + ".loss", loss.detach().reshape(1)), (p + ".ds", s.grad)])
    META[p] = "%r,%r,%r" % (T, alpha, ls)
    CASES.append(p)


def at_map(x, p, size=None):
    e = x.abs().pow(p).mean(1, keepdim=True)
    if size is not None and tuple(e.shape[2:]) != size:
        e = F.adaptive_avg_pool2d(e, size)
    return F.normalize(e.flatten(1))


def at_case(i, s_shape, t_shape, p):
    s = torch.randn(*s_shape, generator=GEN).requires_grad_()
    t = torch.randn(*t_shape, generator=GEN)
    hs, ht = s_shape[2] * s_shape[3], t_shape[2] * t_shape[3]
    size = tuple(t_shape[2:]) if hs > ht else tuple(s_shape[2:])
    loss = (at_map(s, p, size) - at_map(t, p, size)).pow(2).mean()
    loss.backward()
    q = "at.%d" % i
    TENSORS.extend([(q + ".s", s.detach()), (q + ".t", t), (q + ".loss", loss.detach().reshape(1)),
                    (q + ".ds", s.grad)])
    META[q] = "%r" % p
    CASES.append(q)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "distill.safetensors")
    for i, (n, c, T, alpha, ls) in enumerate([(8, 10, 4.0, 0.9, 0.0), (5, 10, 1.0, 0.5, 0.0), (16, 7, 2.0, 1.0, 0.0),
                                              (4, 10, 8.0, 0.7, 0.1), (3, 100, 4.0, 0.9, 0.0),
                                              (6, 10, 4.0, 0.0, 0.1), (2, 3, 0.5, 0.3, 0.0)]):
        kd_case(i, n, c, T, alpha, ls)
    for i, (ss, ts, p) in enumerate([((2, 8, 7, 7), (2, 16, 7, 7), 2.0), ((3, 4, 14, 14), (3, 6, 7, 7), 2.0),
                                     ((2, 5, 6, 6), (2, 5, 12, 12), 2.0), ((2, 3, 5, 5), (2, 9, 5, 5), 3.0),
                                     ((4, 6, 4, 4), (4, 2, 4, 4), 1.0)]):
        at_case(i, ss, ts, p)
    META["cases"] = ",".join(CASES)
    META["torch"] = torch.__version__
    write_safetensors(out, TENSORS, META)
    print("wrote %s: %d cases" % (out, len(CASES)))


if __name__ == "__main__":
    main()
