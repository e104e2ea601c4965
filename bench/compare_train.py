#!/usr/bin/python3
"""Training throughput and peak memory, lowbit vs PyTorch, side by side in one run.

For each model (resnet20, mobilenet_v2 width 0.5, and mobilenet_v2 width 0.5 with
--small-input, on 1x28x28 images,
batch 128, 10 classes) and thread count T, runs

  lowbit bench train --model M --threads T --json          (its own process)
  this script --worker --model M --threads T                (its own process, PyTorch)

one right after the other. Both time the same step on a fixed random batch:
forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4);
`warmup` untimed steps, then the median of `steps`. Peak memory is each
process's peak resident set (getrusage ru_maxrss). The models are the same
structures with the same parameter names: resnet20 as tools/make_fixtures.py
defines it (torchvision BasicBlocks, option-B shortcuts) and torchvision's
mobilenet_v2 with a 1-channel stem (train mode, dropout 0.2 on both sides).

GFLOP/s counts the conv/linear multiply-adds (x2) that lowbit's op
counters saw per step; the same count is used for PyTorch's rate, and the
fraction of peak divides by `lowbit bench peak`'s fp32 figure for T threads.

Debian's python3-torch is used through /usr/bin/python3.

Both run with GOMP_SPINCOUNT=--spin (default 1000, the lowbit tool's own
choice; libgomp's default is 300000) and no OMP_WAIT_POLICY.

With --qat ste,lsq each case also times lowbit's w8a8 QAT step (prepare_qat,
the given quantizers) and PyTorch 1.13's FX prepare_qat model (onednn QAT
qconfig: fused moving-average observer + fake quant) on the same batch.

usage: bench/compare_train.py [--threads 1,2] [--steps 10] [--warmup 3] [--spin 1000] [--qat ste,lsq]
                              [--models resnet20,mobilenet_v2,mobilenet_v2-small]
                              [--lowbit build/tools/lowbit] [--out FILE.json]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# (name, width, small_input): MobileNetV2 both as torchvision builds it (stride 32:
# 28x28 ends at 1x1) and with --small-input (stem and first stride-2 stage at
# stride 1, as the accuracy recipe trains it).
MODELS = [("resnet20", 1.0, False), ("mobilenet_v2", 0.5, False), ("mobilenet_v2", 0.5, True)]


def torch_worker(model_name, width, small_input, threads, batch, steps, warmup, qat=False):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from make_fixtures import resnet_cifar, mobilenet_v2_gray  # the parity fixtures' definitions
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model_name == "resnet20":
        model = resnet_cifar(20)
    else:
        model = mobilenet_v2_gray(width)
        model.classifier[0].p = 0.2
        if small_input:  # lowbit's --small-input: stem and the first stride-2 block at stride 1
            model.features[0][0].stride = (1, 1)
            first = next(b for b in model.features[1:] if b.stride == 2)
            first.stride = 1
            for m in first.conv.modules():
                if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2):
                    m.stride = (1, 1)
    model.train()
    if qat:  # PyTorch 1.13's QAT: FX prepare_qat with the onednn default (fused moving-average fake quant)
        import torch.ao.quantization as tq
        from torch.ao.quantization.quantize_fx import prepare_qat_fx
        torch.backends.quantized.engine = "onednn"
        model = prepare_qat_fx(model, tq.get_default_qat_qconfig_mapping("onednn"), (torch.randn(2, 1, 28, 28),))
        model.train()
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.arange(batch) % 10

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    secs = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        secs.append(time.perf_counter() - t0)
    med = statistics.median(secs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": model_name, "width": width,
                      "small_input": small_input, "qat": qat, "threads": threads, "step_ms": med * 1e3, "images_per_s": batch / med, "peak_rss_mb": rss}))


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    ap.add_argument("--out", default="")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--small-input", action="store_true")
    ap.add_argument("--spin", type=int, default=1000, help="GOMP_SPINCOUNT for both sides")
    ap.add_argument("--models", default="all", help="comma list of resnet20, mobilenet_v2, mobilenet_v2-small; or all")
    ap.add_argument("--qat", default="", help="also time QAT steps: comma list of lowbit quantizers (ste, lsq) "
                                             "for lowbit's w8a8, against PyTorch's prepare_qat_fx (onednn) model")
    a = ap.parse_args()
    if a.worker:
        torch_worker(a.model, a.width, a.small_input, int(a.threads), a.batch, a.steps, a.warmup, a.qat == "worker")
        return
    results = []
    # The same OpenMP waiting for both sides (both use libgomp): spin
    # GOMP_SPINCOUNT times at a barrier, then sleep. 1000 is what the lowbit
    # tool picks by itself; 300000 is libgomp's own default.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["GOMP_SPINCOUNT"] = str(a.spin)
    for t in [int(s) for s in a.threads.split(",")]:
        peak = run_json([a.lowbit, "bench", "peak", "--threads", str(t), "--json"], env)
        peak_t = max(p["f32_gflops"] for p in peak if p["threads"] == t)
        for name, width, small in MODELS:
            label = name + ("-small" if small else "")
            if a.models != "all" and label not in a.models.split(","):
                continue
            flag = ["--small-input"] if small else []
            lb = run_json([a.lowbit, "bench", "train", "--model", name, "--width", str(width), "--threads", str(t),
                           "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup), "--json"] + flag, env)[0]
            pt = run_json([sys.executable, os.path.abspath(__file__), "--worker", "--model", name, "--width",
                           str(width), "--threads", str(t), "--batch", str(a.batch), "--steps", str(a.steps),
                           "--warmup", str(a.warmup)] + flag, env)[0]
            gflop = lb["gflop_per_step"]
            row = {"model": name, "width": width, "small_input": small, "threads": t, "batch": a.batch, "peak_f32_gflops": peak_t,
                   "lowbit": lb, "pytorch": pt, "speedup": lb["images_per_s"] / pt["images_per_s"],
                   "memory_ratio": lb["peak_rss_mb"] / pt["peak_rss_mb"],
                   "lowbit_gflops": gflop * lb["images_per_s"] / a.batch,
                   "pytorch_gflops": gflop * pt["images_per_s"] / a.batch}
            row["lowbit_peak_fraction"] = row["lowbit_gflops"] / peak_t
            if a.qat:
                common = [a.lowbit, "bench", "train", "--model", name, "--width", str(width), "--threads", str(t),
                          "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup), "--json",
                          "--qconfig", "w8a8"] + flag
                ptq = run_json([sys.executable, os.path.abspath(__file__), "--worker", "--qat", "worker", "--model", name,
                                "--width", str(width), "--threads", str(t), "--batch", str(a.batch), "--steps",
                                str(a.steps), "--warmup", str(a.warmup)] + flag, env)[0]
                row["pytorch_qat"] = ptq
                for qz in a.qat.split(","):
                    lq = run_json(common + ["--quantizer", qz], env)[0]
                    row["lowbit_qat_" + qz] = lq
                    print(f"{label:>18} w{width:<4} T={t}  QAT w8a8 {qz:>3}: lowbit {lq['images_per_s']:7.1f} img/s "
                          f"(x{lb['step_ms'] / lq['step_ms']:.2f} of its float step's speed, step x{lq['step_ms'] / lb['step_ms']:.2f}) | "
                          f"pytorch QAT {ptq['images_per_s']:7.1f} img/s | speed x{lq['images_per_s'] / ptq['images_per_s']:.2f}",
                          flush=True)
            results.append(row)
            print(f"{label:>18} w{width:<4} T={t}  lowbit {lb['images_per_s']:7.1f} img/s {row['lowbit_gflops']:6.1f} GFLOP/s "
                  f"({100 * row['lowbit_peak_fraction']:4.1f}% of {peak_t:.0f})  RSS {lb['peak_rss_mb']:6.0f} MB | "
                  f"pytorch {pt['images_per_s']:7.1f} img/s RSS {pt['peak_rss_mb']:6.0f} MB | "
                  f"speed x{row['speedup']:.2f}  memory x{row['memory_ratio']:.2f}", flush=True)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "gomp_spincount": a.spin,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
