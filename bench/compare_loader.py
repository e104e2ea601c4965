#!/usr/bin/python3
"""Loader throughput, lowbit vs PyTorch's DataLoader, side by side in one run.

Pipeline on both sides: Fashion-MNIST train (the Debian dataset-fashion-mnist
files), RandomCrop(28, padding=2) + RandomHorizontalFlip + ToTensor +
Normalize(0.2860, 0.3530), batch 128, shuffled, for 1 and 2 workers.

PyTorch side: torch.utils.data.DataLoader(batch_size=128, shuffle=True,
num_workers=W, persistent_workers=True) over a map-style Dataset. torchvision
is not importable with Debian's python3-torch 1.13, so the transforms are
written out as the calls torchvision v0.14 makes, in two variants:
  pil     what torchvision.datasets.FashionMNIST + transforms do for every
          sample: Image.fromarray(mode="L"), RandomCrop = ImageOps.expand
          (padding) + Image.crop at torch.randint offsets,
          RandomHorizontalFlip = Image.transpose when torch.rand(1) < 0.5,
          ToTensor = torch.from_numpy(np.array(img)).view/permute/float/div(255),
          Normalize = sub_(mean).div_(std);
  tensor  torchvision's tensor path on a uint8 1x28x28 tensor: F.pad, slicing,
          flip(-1), float().div(255), sub_/div_.
The ratio is taken against the faster of the two.

Timing, both sides: whole epochs over the same images after one warm-up
epoch (PyTorch: workers started and persistent), images delivered / elapsed
time. Each worker count runs lowbit then PyTorch back to back so both see the
same machine state. The consumer touches every batch and nothing else.

usage: bench/compare_loader.py [--workers 1,2] [--batch 128] [--images N]
                               [--data /usr/share/datasets/fashion-mnist]
                               [--lowbit build/bench/bench_loader] [--out FILE.json]
--images N uses the first N training images on both sides (default: all 60000).
"""
import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class FashionPIL(torch.utils.data.Dataset):
    """torchvision.datasets.FashionMNIST + the transforms, on PIL images."""

    def __init__(self, images, labels):
        self.images, self.labels = torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i].numpy(), mode="L")
        # RandomCrop(28, padding=2): pad (F_pil.pad, constant) then get_params + crop.
        img = ImageOps.expand(img, border=(2, 2, 2, 2), fill=0)
        top = int(torch.randint(0, 32 - 28 + 1, size=(1,)).item())
        left = int(torch.randint(0, 32 - 28 + 1, size=(1,)).item())
        img = img.crop((left, top, left + 28, top + 28))
        if torch.rand(1) < 0.5:  # RandomHorizontalFlip
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        # ToTensor for a mode "L" image.
        x = torch.from_numpy(np.array(img, np.uint8, copy=True))
        x = x.view(28, 28, 1).permute((2, 0, 1)).contiguous().to(dtype=torch.get_default_dtype()).div(255)
        mean = torch.as_tensor([MEAN], dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor([STD], dtype=x.dtype).view(-1, 1, 1)
        return x.sub_(mean).div_(std), int(self.labels[i])


class FashionTensor(FashionPIL):
    """torchvision's tensor code path on uint8 1x28x28 tensors."""

    def __getitem__(self, i):
        img = self.images[i].unsqueeze(0)
        img = F.pad(img, [2, 2, 2, 2], mode="constant", value=0)
        top = int(torch.randint(0, 32 - 28 + 1, size=(1,)).item())
        left = int(torch.randint(0, 32 - 28 + 1, size=(1,)).item())
        img = img[..., top:top + 28, left:left + 28]
        if torch.rand(1) < 0.5:
            img = img.flip(-1)
        x = img.float().div(255)
        mean = torch.as_tensor([MEAN], dtype=x.dtype).view(-1, 1, 1)
        std = torch.as_tensor([STD], dtype=x.dtype).view(-1, 1, 1)
        return x.sub_(mean).div_(std), int(self.labels[i])


def torch_rate(ds, workers, batch, epochs):
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, drop_last=False)
    checksum = 0.0
    for x, _ in loader:  # warm-up epoch: workers start, caches fill
        checksum += float(x[0, 0, 0, 0])
    t0 = time.perf_counter()
    images = 0
    for _ in range(epochs):
        for x, y in loader:
            images += x.shape[0]
            checksum += float(x[0, 0, 0, 0])
    return images / (time.perf_counter() - t0)


def lowbit_rate(exe, data, workers, batch, images, seconds):
    cmd = [exe, "--data", data, "--workers", str(workers), "--batch", str(batch), "--seconds", str(seconds), "--json"]
    if images:
        cmd += ["--limit", str(images)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")][0]["images_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=0, help="use the first N training images (0 = all)")
    ap.add_argument("--epochs", type=int, default=1, help="timed PyTorch epochs after the warm-up one")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds on the lowbit side")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "bench", "bench_loader"))
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not os.access(args.lowbit, os.X_OK):
        sys.exit("compare_loader.py: %s not built (ninja -C build bench/bench_loader)" % args.lowbit)

    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    if args.images:
        # lowbit's --limit takes a seeded random subset; the count is what matters for throughput.
        images, labels = images[:args.images], labels[:args.images]
    torch.set_num_threads(1)
    n = len(labels)
    print("loader throughput, Fashion-MNIST train (%d images): RandomCrop(28, padding=2) + RandomHorizontalFlip + "
          "ToTensor + Normalize, batch %d, shuffled" % (n, args.batch))
    print("machine: %s, %d CPUs, torch %s; torchvision not installed: PyTorch runs the calls torchvision makes "
          "(pil = its PIL path, tensor = its tensor path)" % (platform.processor() or platform.machine(),
                                                             os.cpu_count(), torch.__version__))
    print("%8s %14s %16s %19s %8s" % ("workers", "lowbit img/s", "PyTorch pil", "PyTorch tensor", "ratio"))
    rows = []
    for w in [int(x) for x in args.workers.split(",")]:
        ours = lowbit_rate(args.lowbit, args.data, w, args.batch, args.images, args.seconds)
        pil = torch_rate(FashionPIL(images, labels), w, args.batch, args.epochs)
        ten = torch_rate(FashionTensor(images, labels), w, args.batch, args.epochs)
        ratio = ours / max(pil, ten)
        rows.append({"workers": w, "lowbit_images_per_s": round(ours, 1), "pytorch_pil_images_per_s": round(pil, 1),
                     "pytorch_tensor_images_per_s": round(ten, 1), "ratio_vs_faster_pytorch": round(ratio, 2)})
        print("%8d %14.0f %16.0f %19.0f %7.1fx" % (w, ours, pil, ten, ratio))
        sys.stdout.flush()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"bench": "loader", "images": n, "batch": args.batch, "torch_version": torch.__version__,
                       "rows": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
