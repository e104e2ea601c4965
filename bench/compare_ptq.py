#!/usr/bin/python3
"""PTQ accuracy on torchvision models trained in PyTorch: PyTorch's own eager-mode
PTQ against `lowbit quantize`, on the same weights and the same calibration images.

For each model (torchvision.models.quantization resnet18 and mobilenet_v2 with a
1-channel first conv and 10 classes; torchvision's quantizable MobileNetV2 uses
ReLU, so lowbit runs it with --act relu):
  1. train it briefly in PyTorch on Fashion-MNIST (SGD, cosine, --epochs);
  2. save the float state dict as safetensors with lowbit's metadata, so
     `lowbit quantize --weights` reads it unchanged;
  3. PyTorch PTQ: fuse_model(), qconfig get_default_qconfig('onednn') (per-channel
     symmetric s8 weights, HistogramObserver u8 activations, no reduce_range),
     prepare, calibrate, convert, evaluate with the onednn engine;
  4. lowbit: `lowbit quantize --weights F --qconfig w8a8 --data CALIB --calib N --json`
     (the same method: per-channel minmax weights, histogram activations).
Both calibrate on the first --calib training images, written to a folder of IDX
files (train = those images, t10k = the full test set) so both read the same bytes.

usage: bench/compare_ptq.py [--models resnet18,mobilenet_v2] [--epochs 2] [--calib 1024]
                            [--threads 2] [--work DIR] [--lowbit build/tools/lowbit]
                            [--out bench/results/ptq_vs_pytorch.json]
Debian's python3-torch (1.13) and python3-torchvision, through /usr/bin/python3.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_fixtures import write_safetensors  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x800 | arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def to_tensor(images):
    return (torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1) - MEAN) / STD


def build(name):
    from torchvision.models import quantization as qm
    if name == "resnet18":
        m = qm.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    else:
        m = qm.mobilenet_v2(num_classes=10)
        m.features[0][0] = nn.Conv2d(1, 32, 3, 2, 1, bias=False)
    return m


def evaluate(model, x, y, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(model, x, y, epochs, batch=128, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = epochs * (len(x) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for e in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        t0 = time.time()
        for i in range(len(x) // batch):
            idx = perm[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print("  epoch %d/%d  loss %.4f  %.0f s" % (e + 1, epochs, loss.item(), time.time() - t0), file=sys.stderr)


def pytorch_ptq(model, calib, x_test, y_test):
    import torch.ao.quantization as tq
    torch.backends.quantized.engine = "onednn"
    model.eval()
    model.fuse_model()
    model.qconfig = tq.get_default_qconfig("onednn")
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for i in range(0, len(calib), 64):
            model(calib[i:i + 64])
    tq.convert(model, inplace=True)
    return evaluate(model, x_test, y_test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--calib", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "compare_ptq"))
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "tools", "lowbit"))
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    os.makedirs(args.work, exist_ok=True)

    xtr_u8 = read_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    ytr = read_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    xte_u8 = read_idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))
    yte = read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))
    calib_dir = os.path.join(args.work, "calib")
    os.makedirs(calib_dir, exist_ok=True)
    write_idx(os.path.join(calib_dir, "train-images-idx3-ubyte.gz"), xtr_u8[:args.calib])
    write_idx(os.path.join(calib_dir, "train-labels-idx1-ubyte.gz"), ytr[:args.calib])
    write_idx(os.path.join(calib_dir, "t10k-images-idx3-ubyte.gz"), xte_u8)
    write_idx(os.path.join(calib_dir, "t10k-labels-idx1-ubyte.gz"), yte)
    x_train, y_train = to_tensor(xtr_u8), torch.from_numpy(ytr.astype(np.int64))
    x_test, y_test = to_tensor(xte_u8), torch.from_numpy(yte.astype(np.int64))

    rows = []
    for name in args.models.split(","):
        print("== %s: training %d epochs in PyTorch" % (name, args.epochs), file=sys.stderr)
        model = build(name)
        train(model, x_train, y_train, args.epochs)
        float_acc = evaluate(model, x_test, y_test)
        weights = os.path.join(args.work, name + ".safetensors")
        meta = {"model": name, "dataset": "fashion-mnist", "in_channels": "1", "num_classes": "10",
                "act": "relu" if name == "mobilenet_v2" else "relu6", "width": "1.000000", "small_input": "0"}
        write_safetensors(weights, list(model.state_dict().items()), meta)
        torch_acc = pytorch_ptq(model, x_train[:args.calib], x_test, y_test)
        cmd = [args.lowbit, "quantize", "--weights", weights, "--qconfig", "w8a8", "--data", calib_dir,
               "--calib", str(args.calib), "--threads", str(args.threads), "--json",
               "--out", os.path.join(args.work, name + ".q.safetensors")]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        row = {"model": name, "epochs": args.epochs, "calib": args.calib, "float_accuracy_pytorch": float_acc,
               "float_accuracy_lowbit": res["float_accuracy"], "ptq_accuracy_pytorch_onednn": torch_acc,
               "ptq_accuracy_lowbit_w8a8": res["accuracy"],
               "lowbit_minus_pytorch_pt": round(100 * (res["accuracy"] - torch_acc), 2)}
        rows.append(row)
        print("%-13s float %.4f (lowbit reads it as %.4f)  PyTorch PTQ (onednn) %.4f  lowbit PTQ w8a8 %.4f  (%+.2f pt)"
              % (name, float_acc, res["float_accuracy"], torch_acc, res["accuracy"], row["lowbit_minus_pytorch_pt"]))
    result = {"torch": torch.__version__, "threads": args.threads, "rows": rows,
              "command": "bench/compare_ptq.py " + " ".join(sys.argv[1:])}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
