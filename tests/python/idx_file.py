"""Reading Fashion-MNIST's gzip IDX files for the parity tests (numpy only)."""
import gzip
import struct

import numpy as np


def read_idx(path, count):
    """The first `count` items of a gzip IDX file (uint8), with the file's own dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    count = min(count, dims[0])
    per = int(np.prod(dims[1:], dtype=np.int64))
    start = 4 + 4 * rank
    return np.frombuffer(data[start:start + count * per], dtype=np.uint8).reshape((count,) + tuple(dims[1:]))
