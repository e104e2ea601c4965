#!/usr/bin/python3
"""Dynamic quantization, lowbit vs PyTorch, side by side in one run.

For each float checkpoint lowbit trained (--mlp: `lowbit train --model mlp`, an
nn.Sequential(Flatten, Linear, ReLU, …) in PyTorch; --resnet20: tools/
make_fixtures.py's resnet_cifar(20), whose only Linear layer is `fc`), and each
thread count T:

  PyTorch (this script --worker, its own process, OMP_NUM_THREADS=T,
  torch.set_num_threads(T), the onednn engine): the same weights, read from the
  safetensors file; float accuracy on the Fashion-MNIST test set; then
  torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
  (default_dynamic_qconfig: per-tensor s8 weights; its dynamic Linear quantizes
  activations with reduce_range=True, 0..127) and its accuracy; batch-1 and
  batch-32 latency of both models (the first test images; 5 warm-up runs, then
  the median of 30, time.perf_counter, torch.inference_mode).

  lowbit: `lowbit quantize --dynamic --weights CK --json --threads T`, which
  reports the same four latencies (5 warm-up runs, median of 30) and both
  accuracies; once as lowbit's default (activations on 0..255) and once with
  --reduce-range (PyTorch's arithmetic).

Ratios: "vs torch" = PyTorch dynamic ms / lowbit dynamic ms; "vs lb float" =
lowbit float ms / lowbit dynamic ms.

usage: bench/compare_dynamic.py --mlp CK [--resnet20 CK] [--threads 1,2] [--lowbit build/tools/lowbit]
                                [--out bench/results/dynamic/dynamic_vs_pytorch.json]
Debian's python3-torch (1.13) through /usr/bin/python3.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from compare_ptq import DATA, MEAN, STD, read_idx  # noqa: E402  (the same IDX reader and normalization)


def read_safetensors(path):
    import numpy as np
    import torch
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "I8": np.int8, "U8": np.uint8}
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[h["dtype"]]).reshape(h["shape"]).copy())
    return out, header.get("__metadata__", {})


def build(kind, meta):
    import torch.nn as nn
    if kind == "resnet20":
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        from make_fixtures import resnet_cifar
        return resnet_cifar(20)
    hidden = [int(h) for h in meta.get("hidden", "1024,1024").split(",")] if meta.get("hidden", "") != "none" else []
    layers, last = [nn.Flatten()], 784
    for h in hidden:
        layers += [nn.Linear(last, h), nn.ReLU()]
        last = h
    layers.append(nn.Linear(last, 10))
    return nn.Sequential(*layers)


def median_ms(f, reps=30, warmup=5):
    ts = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        f()
        if i >= warmup:
            ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def worker(kind, ckpt, threads):
    import torch
    torch.set_num_threads(threads)
    torch.backends.quantized.engine = "onednn"
    state, meta = read_safetensors(ckpt)
    model = build(kind, meta)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("optim.")}, strict=True)
    model.eval()
    x = (torch.from_numpy(read_idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).astype("float32") / 255.0)
         .unsqueeze(1) - MEAN) / STD
    y = torch.from_numpy(read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).astype("int64"))

    def accuracy(m):
        with torch.inference_mode():
            correct = sum(int((m(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum()) for i in range(0, len(x), 256))
        return correct / len(x)

    def latencies(m):
        b32, b1 = x[:32].contiguous(), x[:1].contiguous()
        with torch.inference_mode():
            return median_ms(lambda: m(b1)), median_ms(lambda: m(b32))

    rec = {"side": "torch", "model": kind, "threads": threads, "torch": torch.__version__,
           "engine": torch.backends.quantized.engine, "float_accuracy": accuracy(model)}
    rec["float_ms_b1"], rec["float_ms_b32"] = latencies(model)
    q = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    rec["accuracy"] = accuracy(q)
    rec["dynamic_ms_b1"], rec["dynamic_ms_b32"] = latencies(q)
    print(json.dumps(rec))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--ckpt", help=argparse.SUPPRESS)
    ap.add_argument("--mlp")
    ap.add_argument("--resnet20")
    ap.add_argument("--threads", default="1,%d" % os.cpu_count())
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "dynamic", "dynamic_vs_pytorch.json"))
    args = ap.parse_args()
    threads = sorted({int(t) for t in args.threads.split(",")})
    if args.worker:
        worker(args.worker, args.ckpt, threads[0])
        return
    models = [(k, c) for k, c in (("mlp", args.mlp), ("resnet20", args.resnet20)) if c]
    if not models:
        sys.exit("compare_dynamic.py: pass --mlp CK and/or --resnet20 CK (lowbit float checkpoints)")
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    results = {"cpu": cpu, "machine": platform.machine(), "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, ck in models:
            for t in threads:
                env = dict(os.environ, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t), GOMP_SPINCOUNT="1000")
                out = subprocess.run(["/usr/bin/python3", os.path.abspath(__file__), "--worker", kind, "--ckpt", ck,
                                      "--threads", str(t)], env=env, check=True, capture_output=True, text=True)
                torch_rec = json.loads(out.stdout.strip().splitlines()[-1])
                lb = {}
                for tag, extra in (("lowbit", []), ("lowbit-reduce-range", ["--reduce-range"])):
                    o = subprocess.run([args.lowbit, "quantize", "--dynamic", "--weights", ck, "--out",
                                        os.path.join(tmp, "q.safetensors"), "--json", "--threads", str(t)] + extra,
                                       env=env, check=True, capture_output=True, text=True)
                    rec = json.loads(o.stdout.strip().splitlines()[-1])
                    rec["side"] = tag
                    rec["model"] = kind
                    rec.pop("out", None)
                    lb[tag] = rec
                case = {"model": kind, "threads": t, "torch": torch_rec, "lowbit": lb["lowbit"],
                        "lowbit_reduce_range": lb["lowbit-reduce-range"]}
                results["cases"].append(case)
                l, p = lb["lowbit"], torch_rec
                print("%-8s T=%d  accuracy float %.4f | torch dynamic %.4f | lowbit dynamic %.4f (reduce-range %.4f)"
                      % (kind, t, l["float_accuracy"], p["accuracy"], l["accuracy"], lb["lowbit-reduce-range"]["accuracy"]))
                for b in ("b1", "b32"):
                    print("          batch %-3s ms: torch float %.4f dyn %.4f | lowbit float %.4f dyn %.4f | "
                          "vs torch %.2fx, vs lb float %.2fx"
                          % (b[1:], p["float_ms_" + b], p["dynamic_ms_" + b], l["float_ms_" + b], l["dynamic_ms_" + b],
                             p["dynamic_ms_" + b] / l["dynamic_ms_" + b], l["float_ms_" + b] / l["dynamic_ms_" + b]))
                sys.stdout.flush()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
