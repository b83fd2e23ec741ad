#!/usr/bin/env python3
"""Checks and writes .npy files with numpy itself, so that tests prove cnnlite's .npy files are
what numpy.load expects and that cnnlite reads what numpy.save writes.

Usage (several FILE/JSON pairs may follow, to pay for Python's start-up once):
  npy_check.py check FILE EXPECT.json ...  exit 0 when numpy.load(FILE) has the dtype, shape and
                                           values (bit for bit) of EXPECT.json
  npy_check.py write FILE SPEC.json ...    numpy.save(FILE, array described by SPEC.json)

EXPECT.json and SPEC.json look like {"dtype": "<f4", "shape": [2, 3], "values": [1, 2, 3, 4, 5, 6]}
with values flat in row-major order.
"""
import json
import sys

import numpy as np


def _array(spec):
    return np.array(spec["values"], dtype=np.float64).astype(np.dtype(spec["dtype"])).reshape(spec["shape"])


def check(path, expect_path):
    with open(expect_path, encoding="utf-8") as f:
        want = _array(json.load(f))
    got = np.load(path, allow_pickle=False)
    if got.dtype != want.dtype or got.shape != want.shape:
        print(f"npy_check: {path}: {got.dtype}{got.shape} != {want.dtype}{want.shape}", file=sys.stderr)
        return 1
    if not got.flags.c_contiguous or got.tobytes() != want.tobytes():
        print(f"npy_check: {path}: values differ", file=sys.stderr)
        return 1
    return 0


def write(path, spec_path):
    with open(spec_path, encoding="utf-8") as f:
        a = _array(json.load(f))
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy"
        np.save(f, a)
    return 0


def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0 or argv[0] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    action = check if argv[0] == "check" else write
    return max(action(argv[i], argv[i + 1]) for i in range(1, len(argv), 2))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError, KeyError) as e:
        print(f"npy_check: {e}", file=sys.stderr)
        sys.exit(1)
