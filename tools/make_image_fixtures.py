#!/usr/bin/python3
"""PNG fixtures for `lowbit infer` (tests/fixtures/images/), from the
Fashion-MNIST test set of Debian's dataset-fashion-mnist:

  fmnist_test_<i>_<label>.png   test images 0, 1 and 2, 28x28 grayscale, as stored
  fmnist_test_0_rgb.png         test image 0 as 3-channel RGB (the wrong channel
                                count for a 1-channel model)

usage: tools/make_image_fixtures.py [--data /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os

from PIL import Image

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "images"))
    args = ap.parse_args()
    with gzip.open(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")) as f:
        images = f.read()[16:]
    with gzip.open(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = f.read()[8:]
    os.makedirs(args.out, exist_ok=True)
    for i in range(3):
        img = Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784])
        name = CLASSES[labels[i]].lower().replace("/", "_").replace(" ", "_")
        img.save(os.path.join(args.out, f"fmnist_test_{i}_{name}.png"), optimize=True)
        if i == 0:
            img.convert("RGB").save(os.path.join(args.out, "fmnist_test_0_rgb.png"), optimize=True)


if __name__ == "__main__":
    main()
