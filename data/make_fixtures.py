#!/usr/bin/env python3
"""Makes the small Fashion-MNIST fixture under data/fixtures/ from the real gzip IDX files.

The fixture holds the first 2,000 training and the first 1,000 test images with their labels,
in the same four gzip IDX files as the real data set, so that tests and quick runs of the
example need neither the package nor minutes of loading.

Usage: python3 data/make_fixtures.py [SOURCE_FOLDER [OUTPUT_FOLDER]]
  SOURCE_FOLDER  defaults to /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
  OUTPUT_FOLDER  defaults to data/fixtures next to this script

Standard library only. The output bytes are deterministic: gzip's header gets mtime 0 and no
file name, so rerunning the script reproduces the committed files.
"""

import gzip
import os
import struct
import sys

TRAIN_COUNT = 2000
TEST_COUNT = 1000

# (file name, IDX magic, number of samples kept)
FILES = [
    ("train-images-idx3-ubyte.gz", 0x00000803, TRAIN_COUNT),
    ("train-labels-idx1-ubyte.gz", 0x00000801, TRAIN_COUNT),
    ("t10k-images-idx3-ubyte.gz", 0x00000803, TEST_COUNT),
    ("t10k-labels-idx1-ubyte.gz", 0x00000801, TEST_COUNT),
]


def read_idx(path, expected_magic):
    """Returns (dims, data bytes) of an IDX file after checking its magic and length."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        sys.exit(f"{path}: too short for an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        sys.exit(f"{path}: magic 0x{magic:08x}, expected 0x{expected_magic:08x}")
    rank = magic & 0xFF
    header = 4 + 4 * rank
    dims = list(struct.unpack(">" + "I" * rank, raw[4:header]))
    size = 1
    for d in dims:
        size *= d
    if len(raw) != header + size:
        sys.exit(f"{path}: header promises {size} data bytes, file has {len(raw) - header}")
    return dims, raw[header:]


def write_idx(path, magic, dims, data):
    """Writes a gzip IDX file with deterministic bytes (mtime 0, no stored file name)."""
    header = struct.pack(">I" + "I" * len(dims), magic, *dims)
    with open(path, "wb") as out:
        out.write(gzip.compress(header + data, compresslevel=9, mtime=0))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    output = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "fixtures")
    os.makedirs(output, exist_ok=True)
    for name, magic, count in FILES:
        dims, data = read_idx(os.path.join(source, name), magic)
        if dims[0] < count:
            sys.exit(f"{name}: has {dims[0]} samples, the fixture needs {count}")
        per_sample = len(data) // dims[0] if dims[0] else 0
        kept = [count] + dims[1:]
        write_idx(os.path.join(output, name), magic, kept, data[: count * per_sample])
        print(f"wrote {os.path.join(output, name)}: dims {kept}")


if __name__ == "__main__":
    main()
