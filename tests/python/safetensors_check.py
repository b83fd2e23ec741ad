#!/usr/bin/env python3
"""Reads and writes safetensors files with only the standard library and numpy (torch optional),
so that tests can check cnnlite's files from the Python side: the `safetensors` package is not
in Debian.

Usage:
  safetensors_check.py check FILE EXPECT.json          exit 0 when FILE holds exactly the tensors
                                                       and metadata of EXPECT.json, bit for bit
  safetensors_check.py write FILE SPEC.json [--torch]  write FILE from SPEC.json, the tensors built
                                                       with torch when --torch is given

EXPECT.json and SPEC.json look like
  {"metadata": {"key": "value"},
   "tensors": {"name": {"dtype": "F32", "shape": [2, 3], "values": [1, 2, 3, 4, 5, 6]}}}
with values flat in row-major order.

As a module: read_safetensors(path) -> (metadata, {name: numpy array}),
write_safetensors(path, tensors, metadata) and load_torch(path) -> {name: torch.Tensor}, e.g. for
`module.load_state_dict(load_torch("model.safetensors"), strict=True)`.
"""
import json
import os
import struct
import sys

import numpy as np

# Element types of the format that numpy can hold directly (BF16 and F8 it cannot).
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
MAX_HEADER = 100_000_000


class FormatError(Exception):
    pass


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise FormatError(f"duplicate key {k!r} in the header")
    return dict(pairs)


def read_safetensors(path):
    """Parses and validates a safetensors file as the reference implementation does."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError(f"{path}: {len(blob)} bytes, too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        raise FormatError(f"{path}: header length {n} invalid for a file of {len(blob)} bytes")
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    data = blob[8 + n:]
    covered = 0
    tensors = {}
    for name, info in sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{path}: tensor {name!r} has fields {sorted(info)}")
        begin, end = info["data_offsets"]
        if begin != covered or end < begin:
            raise FormatError(f"{path}: tensor {name!r} offsets [{begin}, {end}] do not follow {covered}")
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise FormatError(f"{path}: tensor {name!r} has dtype {info['dtype']} that numpy cannot hold")
        shape = tuple(info["shape"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise FormatError(f"{path}: tensor {name!r} byte size does not match shape {shape}")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
        covered = end
    if covered != len(data):
        raise FormatError(f"{path}: tensors cover {covered} of {len(data)} data bytes")
    return metadata, tensors


def write_safetensors(path, tensors, metadata=None):
    """Writes numpy arrays or torch tensors in the reference implementation's layout: tensors
    ordered by element size (largest first), then by name; header padded to 8 bytes."""
    arrays = {}
    for name, value in tensors.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().contiguous().numpy()
        value = np.asarray(value)  # not ascontiguousarray, which turns a 0-d array into 1-d
        arrays[name] = np.array(value, dtype=value.dtype.newbyteorder("<"), order="C")
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    order = sorted(arrays, key=lambda name: (-arrays[name].dtype.itemsize, name))
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(arrays[name].tobytes())


def load_torch(path):
    """The file's tensors as torch tensors, e.g. for load_state_dict."""
    import torch
    return {name: torch.from_numpy(a) for name, a in read_safetensors(path)[1].items()}


def _expected_array(spec):
    dtype = DTYPES[spec["dtype"]]
    values = np.array(spec["values"], dtype=np.int64 if dtype.kind in "iu" else np.float64)
    return values.astype(dtype).reshape(spec["shape"])


def check(path, expect_path):
    with open(expect_path, encoding="utf-8") as f:
        expect = json.load(f)
    metadata, tensors = read_safetensors(path)
    problems = []
    if metadata != expect.get("metadata", {}):
        problems.append(f"metadata {metadata} != {expect.get('metadata', {})}")
    if set(tensors) != set(expect["tensors"]):
        problems.append(f"tensor names {sorted(tensors)} != {sorted(expect['tensors'])}")
    for name, spec in expect["tensors"].items():
        if name not in tensors:
            continue
        want, got = _expected_array(spec), tensors[name]
        if got.dtype != want.dtype or got.shape != want.shape:
            problems.append(f"{name}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
        elif got.tobytes() != want.tobytes():
            bad = np.flatnonzero(got.view(np.uint8).reshape(-1) != want.view(np.uint8).reshape(-1))
            problems.append(f"{name}: bytes differ from byte {bad[0]} on")
    for p in problems:
        print("safetensors_check:", p, file=sys.stderr)
    return 1 if problems else 0


def write(path, spec_path, use_torch):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    tensors = {}
    for name, t in spec["tensors"].items():
        a = _expected_array(t)
        if use_torch:
            import torch
            a = torch.from_numpy(a.copy())  # the writer takes torch tensors as they come from a model
        tensors[name] = a
    write_safetensors(path, tensors, spec.get("metadata"))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "check":
        return check(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "write":
        return write(argv[1], argv[2], "--torch" in argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (FormatError, OSError, ValueError, KeyError) as e:
        print(f"safetensors_check: {e}", file=sys.stderr)
        sys.exit(1)
