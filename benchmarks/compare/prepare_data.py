"""Writes the few Fashion-MNIST images that every driver of the comparison reads, as raw bytes:
the first TRAIN training images and the first 1,000 test images (1x28x28 uint8 each) and their
labels (one uint8 each). Reading the same small files keeps the drivers' peak memory about the
frameworks, not about holding the 60,000-image data set.

    /usr/bin/python3 prepare_data.py OUT_DIR [SOURCE_DIR] [TRAIN]
SOURCE_DIR defaults to Debian's /usr/share/datasets/fashion-mnist; TRAIN to 512 (8 batches of 64).
Standard library only.
"""
import gzip
import os
import struct
import sys


def read_idx(path, count):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        if dims[0] < count:
            sys.exit(f"{path}: only {dims[0]} samples, need {count}")
        per_sample = 1
        for d in dims[1:]:
            per_sample *= d
        return f.read(count * per_sample)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    sys.exit(f"{stem}[.gz] not found in {folder}")


def main():
    out = sys.argv[1]
    source = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    train = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    os.makedirs(out, exist_ok=True)
    for split, stem, count in (("train", "train", train), ("test", "t10k", 1000)):
        images = read_idx(find(source, f"{stem}-images-idx3-ubyte"), count)
        labels = read_idx(find(source, f"{stem}-labels-idx1-ubyte"), count)
        with open(os.path.join(out, f"{split}_images.u8"), "wb") as f:
            f.write(images)
        with open(os.path.join(out, f"{split}_labels.u8"), "wb") as f:
            f.write(labels)


if __name__ == "__main__":
    main()
