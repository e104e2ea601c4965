#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets (committed; rerun to remake).

   /usr/bin/python3 tests/fuzz/make_seeds.py [KIND...]
       → tests/fuzz/seeds/{idx,cifar,image,safetensors,int8}/ (all kinds without arguments)

Small valid inputs of every shape the parsers accept, so fuzzing starts
inside the formats: IDX labels/images plain and gzip; one CIFAR-10 and one
CIFAR-100 record (first byte = the layout selector of fuzz_cifar.cpp);
8×6 images as PNG (gray, RGB, RGBA, palette), JPEG (baseline, progressive),
BMP, GIF, TGA, PPM/PGM, written by PIL (python3-pil, needed for "image" only);
safetensors files of every dtype the reader takes (F32, F64, I32, I64, I8, U8,
an empty tensor, escapes in names); int8 model files (quant/engine/model.h),
written by hand: a conv → global average pool → linear net, and one with a
depthwise conv, max pooling (ceil mode), a residual add, a narrow grid and a
linear layer on a spatial map. The int8 files are safetensors files too, so
they seed fuzz_safetensors as well.
"""
import gzip
import io
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, name, data):
    d = os.path.join(HERE, "seeds", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    b = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return b + bytes(payload)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] in order; header padded to 8 bytes with spaces."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def i8(values):
    return struct.pack("<%db" % len(values), *values)


def i32(values):
    return struct.pack("<%di" % len(values), *values)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def int8_model(graph, layers, extra=None, version="1", float_bias=False):
    """layers: [(op name, weight shape, weights, biases, weight scales)]."""
    tensors = []
    for name, shape, w, b, s in layers:
        tensors += [(name + ".weight", "I8", shape, i8(w)),
                    (name + ".bias", "F32", [len(b)], f32(b)) if float_bias else
                    (name + ".bias", "I32", [len(b)], i32(b)),
                    (name + ".weight_scale", "F32", [len(s)], f32(s))]
    md = {"format": "lowbit.int8", "format_version": version, "graph": graph}
    md.update(extra or {})
    return safetensors(tensors, md)


def seeds_int8():
    # 1×4×4 → conv 1→2 3×3 pad 1 (ReLU folded: zp 0) → global average pool → linear 2→3.
    tiny = int8_model(
        "input 1,4,4\n"
        "value 0 shape=1,4,4 scale=0.0078125 zp=128 qmin=0 qmax=255\n"
        "value 1 shape=2,4,4 scale=0.03125 zp=0 qmin=0 qmax=255\n"
        "value 2 shape=2,1,1 scale=0.03125 zp=0 qmin=0 qmax=255\n"
        "value 3 shape=3 scale=0.0625 zp=128 qmin=0 qmax=255\n"
        "op quantize quant out=0\n"
        "op conv conv1 in=0 out=1 stride=1,1 pad=1,1 dil=1,1 groups=1\n"
        "op global_avg_pool pool in=1 out=2\n"
        "op linear fc in=2 out=3\n"
        "output 3\n",
        [("conv1", [2, 1, 3, 3], [(i * 37) % 255 - 127 for i in range(18)], [100, -50], [0.01, 0.02]),
         ("fc", [3, 2], [5, -7, 127, -127, 0, 33], [1, -2, 3], [0.015])],
        {"model": "fuzz-seed", "classes": "3"})
    # 2×5×5 → depthwise 3×3 → max pool 2×2 ceil → pointwise 2→2 (narrow grid 0..127)
    # → add(pool, pointwise) → linear on the 2×3×3 map → 4.
    branchy = int8_model(
        "input 2,5,5\n"
        "value 0 shape=2,5,5 scale=0.015625 zp=128 qmin=0 qmax=255\n"
        "value 1 shape=2,5,5 scale=0.0234375 zp=120 qmin=0 qmax=255\n"
        "value 2 shape=2,3,3 scale=0.0234375 zp=120 qmin=0 qmax=255\n"
        "value 3 shape=2,3,3 scale=0.046875 zp=0 qmin=0 qmax=127\n"
        "value 4 shape=2,3,3 scale=0.0390625 zp=10 qmin=10 qmax=255\n"
        "value 5 shape=4 scale=0.125 zp=128 qmin=0 qmax=255\n"
        "op quantize quant out=0\n"
        "op conv dw in=0 out=1 stride=1,1 pad=1,1 dil=1,1 groups=2\n"
        "op max_pool pool in=1 out=2 kernel=2,2 stride=2,2 pad=0,0 ceil=1\n"
        "op conv pw in=2 out=3 stride=1,1 pad=0,0 dil=1,1 groups=1\n"
        "op add res in=2,3 out=4\n"
        "op linear fc in=4 out=5\n"
        "output 5\n",
        [("dw", [2, 1, 3, 3], [(i * 53) % 255 - 127 for i in range(18)], [7, -9], [0.004, 0.006]),
         ("pw", [2, 2, 1, 1], [64, -32, 16, 127], [0, 500], [0.008]),
         ("fc", [4, 18], [(i * 29) % 255 - 127 for i in range(72)], [10, -10, 0, 1000], [0.002, 0.003, 0.004, 0.005])])
    # Dynamic quantization (format 2): float 1×3×3 → dynamic_linear 9→4 (ReLU) → dynamic_linear 4→2.
    dynamic = int8_model(
        "input 1,3,3\n"
        "value 0 shape=1,3,3 dtype=f32\n"
        "value 1 shape=4 dtype=f32\n"
        "value 2 shape=2 dtype=f32\n"
        "op input input out=0\n"
        "op dynamic_linear fc1 in=0 out=1 relu=1 reduce_range=0\n"
        "op dynamic_linear fc2 in=1 out=2 relu=0 reduce_range=1\n"
        "output 2\n",
        [("fc1", [4, 9], [(i * 31) % 255 - 127 for i in range(36)], [0.5, -0.25, 0.0, 1.0], [0.01, 0.02, 0.03, 0.04]),
         ("fc2", [2, 4], [127, -128, 3, 9, -5, 66, 0, 1], [0.125, -2.0], [0.05])],
        version="2", float_bias=True)
    return {"tiny.int8.safetensors": tiny, "branchy.int8.safetensors": branchy, "dynamic.int8.safetensors": dynamic}


def seeds_safetensors():
    plain = safetensors(
        [("weight", "F32", [2, 3], f32([0.5, -1.0, 2.0, 3.25, -0.0, 1e-3])),
         ("bn.num_batches_tracked", "I64", [], struct.pack("<q", 42)),
         ("double", "F64", [2], struct.pack("<2d", 1.5, -2.25)),
         ("counts", "I32", [3], i32([1, -2, 2147483647])),
         ("bytes", "U8", [2, 2], bytes([0, 1, 254, 255])),
         ("empty", "F32", [0, 4], b""),
         ("caf\u00e9 \"q\"\n", "I8", [1], i8([-128]))],
        {"model": "seed", "note": "\u00fc\ud83d\ude00"})
    no_metadata = safetensors([("x", "F32", [1, 1, 2], f32([1.0, 2.0]))])
    return {"plain.safetensors": plain, "no_metadata.safetensors": no_metadata}


def main():
    kinds = sys.argv[1:] or ["idx", "cifar", "image", "safetensors", "int8"]
    if "safetensors" in kinds:
        for name, data in seeds_safetensors().items():
            write("safetensors", name, data)
        for name, data in seeds_int8().items():  # an int8 model file is a safetensors file too
            write("safetensors", name, data)
    if "int8" in kinds:
        for name, data in seeds_int8().items():
            write("int8", name, data)
    if "idx" in kinds:
        seeds_idx()
    if "cifar" in kinds:
        seeds_cifar()
    if "image" in kinds:
        seeds_image()


def seeds_idx():
    labels = idx([5], [9, 0, 0, 3, 1])
    images = idx([2, 3, 4], [(i * 37) & 255 for i in range(24)])
    write("idx", "labels.idx", labels)
    write("idx", "images.idx", images)
    write("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    write("idx", "labels.idx.gz", gzip.compress(labels, mtime=0))


def seeds_cifar():
    px = bytes((i * 7) & 255 for i in range(3072))
    write("cifar", "cifar10.bin", bytes([0, 3]) + px)           # selector 0: CIFAR-10
    write("cifar", "cifar100_fine.bin", bytes([2, 4, 57]) + px)  # selector 2: CIFAR-100 fine


def seeds_image():
    from PIL import Image  # python3-pil: only the image seeds need it

    rgb = Image.new("RGB", (8, 6))
    rgb.putdata([(x * 30, y * 40, (x + y) * 15) for y in range(6) for x in range(8)])
    for name, img, fmt, kw in (("gray.png", rgb.convert("L"), "PNG", {}),
                               ("rgb.png", rgb, "PNG", {}),
                               ("rgba.png", rgb.convert("RGBA"), "PNG", {}),
                               ("palette.png", rgb.convert("P"), "PNG", {}),
                               ("base.jpg", rgb, "JPEG", {"quality": 90}),
                               ("progressive.jpg", rgb, "JPEG", {"quality": 90, "progressive": True}),
                               ("rgb.bmp", rgb, "BMP", {}),
                               ("anim.gif", rgb.convert("P"), "GIF", {}),
                               ("rgb.tga", rgb, "TGA", {}),
                               ("rgb.ppm", rgb, "PPM", {}),
                               ("gray.pgm", rgb.convert("L"), "PPM", {})):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        write("image", name, buf.getvalue())


if __name__ == "__main__":
    main()
