#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets (committed; rerun to remake).

   /usr/bin/python3 tests/fuzz/make_seeds.py     → tests/fuzz/seeds/{idx,cifar,image}/

Small valid inputs of every shape the parsers accept, so fuzzing starts
inside the formats: IDX labels/images plain and gzip; one CIFAR-10 and one
CIFAR-100 record (first byte = the layout selector of fuzz_cifar.cpp);
8×6 images as PNG (gray, RGB, RGBA, palette), JPEG (baseline, progressive),
BMP, GIF, TGA, PPM/PGM, written by PIL (python3-pil).
"""
import gzip
import io
import os

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, name, data):
    d = os.path.join(HERE, "seeds", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    b = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return b + bytes(payload)


def main():
    labels = idx([5], [9, 0, 0, 3, 1])
    images = idx([2, 3, 4], [(i * 37) & 255 for i in range(24)])
    write("idx", "labels.idx", labels)
    write("idx", "images.idx", images)
    write("idx", "images.idx.gz", gzip.compress(images, mtime=0))
    write("idx", "labels.idx.gz", gzip.compress(labels, mtime=0))

    px = bytes((i * 7) & 255 for i in range(3072))
    write("cifar", "cifar10.bin", bytes([0, 3]) + px)           # selector 0: CIFAR-10
    write("cifar", "cifar100_fine.bin", bytes([2, 4, 57]) + px)  # selector 2: CIFAR-100 fine

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
