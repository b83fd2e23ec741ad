#!/usr/bin/env python3
"""cnnlite's safetensors files against the `safetensors` package, both directions, bit for bit.

Runs with the peers-ci venv's interpreter (safetensors 0.8.0, torch 2.15.0, numpy 2.4.6; made by
`bash benchmarks/peers/setup.sh --subset ci`):

    ~/.cache/cnnlite/peers-ci/bin/python tests/python/test_safetensors_parity.py [--build build]

It needs build/tests/cnnlite_safetensors_copy (reads a file with cnnlite's reader, writes it again
with cnnlite's writer) and, unless --model is given, build/examples/fashion_mnist/fashion_mnist
to write a model file and a checkpoint (1 epoch on 500 fixture images). Exit status 0 when every
check passes, 1 otherwise.

  safetensors -> cnnlite  safetensors.torch.save_file and safetensors.numpy.save_file write
                          tensors of every dtype cnnlite reads (F32, F64, I64) in six shapes
                          (scalar, empty, up to rank 4) holding awkward values (signed zeros,
                          denormals, extremes, int64 min/max) plus string metadata (non-ASCII, a
                          JSON text, empty). cnnlite must read the same names, dtypes, shapes and
                          metadata, and its copy, loaded with safetensors.torch.load_file and
                          safetensors.numpy.load_file, must hold the same bits.
  cnnlite -> safetensors  that copy is a file cnnlite wrote from those values (with its own
                          layout: tensors in name order, where safetensors orders by dtype
                          first); so are the model file and the checkpoint of a training run,
                          which both loaders must read with the names, dtypes, shapes and metadata
                          cnnlite reports, and which cnnlite must rewrite byte for byte.
  PyTorch weights         state_dicts of the paper's network written by safetensors.torch
                          (save_file without metadata, save_model with "format": "pt"), named
                          as cnnlite names its layers, as torch.nn.Sequential numbers its
                          modules, and in a naming of their own (loaded with --rename), go
                          into `fashion_mnist evaluate --model FILE`: its test loss and
                          accuracy on the fixture's test images must be PyTorch's (loss to 1e-5
                          relative), and a file with a wrong shape must be refused naming it.
  refusals                files of a dtype cnnlite does not read (F16, BF16, I32, U8, BOOL) or
                          with a NaN or an infinity must be refused with the dtype or the value
                          and the tensor named.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = [(), (5,), (2, 3), (2, 3, 4), (2, 1, 3, 2), (3, 0, 2)]
METADATA = {"format": "cnnlite-test", "architecture": '{"layers": []}', "note": "Größe ✓ – ok", "empty": ""}
DTYPE_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}


def awkward(dtype, shape, seed):
    """A C-order array of `shape` cycling through values a careless reader or writer would
    damage, starting at `seed`."""
    if dtype.kind == "f":
        info = np.finfo(dtype)
        values = [0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal, info.tiny, info.max, info.min,
                  info.eps, 1 / 3, -2.5, 1e30, -1e-30, 123456.789, np.pi]
    else:
        info = np.iinfo(dtype)
        values = [0, -1, 1, info.min, info.max, 42, -(2 ** 53) - 1, 2 ** 53 + 1]
    values = np.array(values, dtype=dtype)
    count = int(np.prod(shape, dtype=np.int64))
    return values[(np.arange(count) + seed) % len(values)].reshape(shape)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0

    def expect(self, ok, what):
        self.count += 1
        if not ok:
            self.failures.append(what)


def copy_with_cnnlite(tool, source, target, summary=None):
    cmd = [tool, source, target] + ([summary] if summary else [])
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cnnlite_view(tool, path, work):
    """(copy path, summary) of `path` as cnnlite reads it; exits when cnnlite refuses it."""
    stem = os.path.join(work, os.path.basename(path) + ".cnnlite")
    result = copy_with_cnnlite(tool, path, stem + ".safetensors", stem + ".json")
    if result.returncode != 0:
        sys.exit(f"test_safetensors_parity: cnnlite refused {path}: {result.stderr.strip()}")
    with open(stem + ".json", encoding="utf-8") as f:
        return stem + ".safetensors", json.load(f)


def peer_description(path):
    with safe_open(path, framework="np") as f:
        return (f.metadata() or {}), {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()}


def check_peer_to_cnnlite(tool, work, checks):
    """Files written by the package's two writers, read and rewritten by cnnlite."""
    arrays = {}
    for i, shape in enumerate(SHAPES):
        for dtype in DTYPE_NAMES:
            arrays[f"{DTYPE_NAMES[dtype].lower()}.rank{len(shape)}.{i}"] = awkward(dtype, shape, i)
    written = 0
    for writer in ("torch", "numpy"):
        source = os.path.join(work, f"from_{writer}.safetensors")
        if writer == "torch":
            save_torch({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, source, metadata=METADATA)
        else:
            save_numpy(arrays, source, metadata=METADATA)
        copy, summary = cnnlite_view(tool, source, work)
        written += len(arrays)
        checks.expect(summary["metadata"] == METADATA, f"{writer}: cnnlite read metadata {summary['metadata']}")
        seen = {k: (v["dtype"], v["shape"]) for k, v in summary["tensors"].items()}
        want = {k: (DTYPE_NAMES[v.dtype], list(v.shape)) for k, v in arrays.items()}
        checks.expect(seen == want, f"{writer}: cnnlite read names/dtypes/shapes {seen}, expected {want}")
        # cnnlite's copy, read back by both loaders of the package.
        back_torch = load_torch(copy)
        back_numpy = load_numpy(copy)
        for name, a in arrays.items():
            checks.expect(name in back_torch and same_bits(back_torch[name].numpy(), a),
                          f"{writer}: tensor {name} changed on its way through cnnlite (torch loader)")
            checks.expect(name in back_numpy and same_bits(back_numpy[name], a),
                          f"{writer}: tensor {name} changed on its way through cnnlite (numpy loader)")
        checks.expect(set(back_torch) == set(arrays), f"{writer}: cnnlite's copy holds {sorted(back_torch)}")
        checks.expect(peer_description(copy)[0] == METADATA, f"{writer}: metadata of cnnlite's copy differs")
        # The layouts differ (the package orders by dtype size, cnnlite by name), so the round trip
        # really went through cnnlite's own writer and the package's reader of it.
        with open(source, "rb") as f, open(copy, "rb") as g:
            checks.expect(f.read() != g.read(), f"{writer}: cnnlite's copy is the package's file byte for byte")
    # The comparison can say no: one value one ulp off.
    a = arrays["f32.rank3.3"].copy()
    a.reshape(-1)[4] = np.nextafter(a.reshape(-1)[4], np.float32(np.inf))
    checks.expect(not same_bits(a, arrays["f32.rank3.3"]), "control: a value one ulp off was not noticed")
    return written


def training_files(build, work):
    program = os.path.join(build, "examples", "fashion_mnist", "fashion_mnist")
    if not os.access(program, os.X_OK):
        sys.exit(f"test_safetensors_parity: {program} not found; build the target fashion_mnist or pass --model")
    out = os.path.join(work, "train")
    result = subprocess.run([program, "train", "--data", os.path.join(REPO, "data", "fixtures"), "--val", "200",
                             "--limit", "300", "--epochs", "1", "--out", out],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"test_safetensors_parity: training failed:\n{result.stdout}")
    return [os.path.join(out, "model.safetensors"), os.path.join(out, "checkpoint.safetensors")]


def check_cnnlite_to_peer(tool, files, work, checks):
    """Files cnnlite wrote: both loaders read what cnnlite reads, and cnnlite rewrites them as they are."""
    tensors = 0
    for path in files:
        copy, summary = cnnlite_view(tool, path, work)
        metadata, described = peer_description(path)
        checks.expect(metadata == summary["metadata"], f"{path}: metadata differs between the package and cnnlite")
        ours = {k: (v["dtype"], v["shape"]) for k, v in summary["tensors"].items()}
        checks.expect(described == ours, f"{path}: the package sees {described}, cnnlite {ours}")
        by_torch, by_numpy = load_torch(path), load_numpy(path)
        for name in summary["tensors"]:
            checks.expect(name in by_torch and name in by_numpy and same_bits(by_torch[name].numpy(), by_numpy[name]),
                          f"{path}: {name}: the torch and numpy loaders disagree")
        tensors += len(by_torch)
        with open(path, "rb") as f, open(copy, "rb") as g:
            checks.expect(f.read() == g.read(), f"{path}: cnnlite's rewrite of its own file differs from it")
    return tensors


def pytorch_networks(trained):
    """The paper's network three ways, with the weights of the cnnlite model file `trained` (so
    that predictions are not all one class): (reference, [(name, module, --rename pairs)])."""
    sys.path.insert(0, os.path.join(REPO, "tests", "python"))
    from torch_paper_model import PaperNet  # noqa: E402
    named = PaperNet().eval()
    named.load_state_dict(load_torch(trained), strict=True)
    # nn.Sequential numbers its modules: the parameters are 1.*, 8.* and 11.* (11 after 8 only
    # as numbers), with the 'same' padding of the 2x2 kernel as a module of its own.
    sequential = torch.nn.Sequential(
        torch.nn.ZeroPad2d((0, 1, 0, 1)), torch.nn.Conv2d(1, 64, 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Dropout(0.3), torch.nn.MaxPool2d(2), torch.nn.Dropout(0.3), torch.nn.Flatten(),
        torch.nn.Linear(3136, 256), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(256, 10)).eval()
    own = torch.nn.Module()
    own.features = torch.nn.Module()
    own.features.conv = torch.nn.Conv2d(1, 64, 2)
    own.fc1 = torch.nn.Linear(3136, 256)
    own.fc2 = torch.nn.Linear(256, 10)
    with torch.no_grad():
        for a, b, c in ((named.conv2d, sequential[1], own.features.conv), (named.dense, sequential[8], own.fc1),
                        (named.dense_1, sequential[11], own.fc2)):
            for target in (b, c):
                target.weight.copy_(a.weight)
                target.bias.copy_(a.bias)
    return named, [("named", named, []), ("sequential", sequential, []),
                   ("own names", own, ["features.conv=conv2d", "fc1=dense", "fc2=dense_1"])]


def check_pytorch_weights(build, trained, work, checks):
    """PyTorch's weights-only files in `fashion_mnist evaluate --model`, with the weights of the
    cnnlite model file `trained`. Returns the number of files tried."""
    from safetensors.torch import save_model
    sys.path.insert(0, os.path.join(REPO, "tests", "python"))
    from torch_paper_model import read_fixture_test  # noqa: E402
    program = os.path.join(build, "examples", "fashion_mnist", "fashion_mnist")
    if not os.access(program, os.X_OK):
        sys.exit(f"test_safetensors_parity: {program} not found; build the target fashion_mnist")
    reference, networks = pytorch_networks(trained)
    images, labels = read_fixture_test(os.path.join(REPO, "data", "fixtures"))
    with torch.no_grad():
        logits = reference.logits(torch.from_numpy(images)).double()
    loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))
    predicted = logits.argmax(1).numpy()
    top2 = torch.topk(torch.softmax(logits, 1), 2).values.numpy()
    near_tie = (top2[:, 0] - top2[:, 1] < 1e-4).any()
    accuracy = float((predicted == labels).mean())

    def evaluate(path, rename, out):
        cmd = [program, "evaluate", "--data", os.path.join(REPO, "data", "fixtures"), "--model", path, "--out", out,
               "--quiet"] + [arg for pair in rename for arg in ("--rename", pair)]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    tried = 0
    for name, net, rename in networks:
        for writer in ("save_file", "save_model"):
            path = os.path.join(work, f"pytorch_{name.replace(' ', '_')}_{writer}.safetensors")
            if writer == "save_file":
                save_torch(net.state_dict(), path)
            else:
                save_model(net, path)
            out = os.path.join(work, f"evaluate_{tried}")
            result = evaluate(path, rename, out)
            tried += 1
            what = f"PyTorch weights ({name}, {writer})"
            if result.returncode != 0:
                checks.expect(False, f"{what}: fashion_mnist evaluate failed: {result.stderr.strip()}")
                continue
            with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
                metrics = json.load(f)
            checks.expect(abs(metrics["test_loss"] - loss) <= 1e-5 * abs(loss),
                          f"{what}: cnnlite's test loss {metrics['test_loss']!r}, PyTorch's {loss!r}")
            checks.expect(near_tie or metrics["test_accuracy"] == accuracy,
                          f"{what}: cnnlite's test accuracy {metrics['test_accuracy']!r}, PyTorch's {accuracy!r}")
    # A wrong shape (a transposed dense kernel, as Keras stores it) is refused by name.
    bad = {k: v.clone() for k, v in reference.state_dict().items()}
    bad["dense.weight"] = bad["dense.weight"].t().contiguous()
    path = os.path.join(work, "pytorch_transposed.safetensors")
    save_torch(bad, path)
    result = evaluate(path, [], os.path.join(work, "evaluate_bad"))
    message = "tensor 'dense.weight' has shape [3136, 256], expected [256, 3136]"
    checks.expect(result.returncode == 1 and message in result.stderr,
                  f"transposed dense kernel: fashion_mnist exited with {result.returncode} and said "
                  f"{result.stderr.strip()!r}; expected exit status 1 and {message!r}")
    return tried + 1


def check_refusals(tool, work, checks):
    """Files the package writes that cnnlite must refuse, by name."""
    cases = {
        "F16": ({"w": torch.ones(3, dtype=torch.float16)}, "unsupported dtype 'F16'"),
        "BF16": ({"w": torch.ones(3, dtype=torch.bfloat16)}, "unsupported dtype 'BF16'"),
        "I32": ({"w": torch.ones(3, dtype=torch.int32)}, "unsupported dtype 'I32'"),
        "U8": ({"w": torch.ones(3, dtype=torch.uint8)}, "unsupported dtype 'U8'"),
        "BOOL": ({"w": torch.ones(3, dtype=torch.bool)}, "unsupported dtype 'BOOL'"),
        "NaN": ({"ok": torch.zeros(2), "w": torch.tensor([1.0, float("nan")])}, "tensor 'w' element 1 (row-major, shape [2]) is NaN"),
        "Inf": ({"w": torch.tensor([float("-inf")], dtype=torch.float64)}, "is -Inf"),
    }
    for name, (tensors, message) in cases.items():
        path = os.path.join(work, f"refuse_{name}.safetensors")
        save_torch(tensors, path)
        result = copy_with_cnnlite(tool, path, path + ".copy")
        checks.expect(result.returncode == 1 and message in result.stderr and path in result.stderr,
                      f"{name}: cnnlite exited with {result.returncode} and said {result.stderr.strip()!r}; "
                      f"expected exit status 1 and {message!r}")
    return len(cases)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"), help="CMake build folder (default: build/)")
    parser.add_argument("--model", action="append", help="a safetensors file cnnlite wrote (repeatable; default: "
                        "the model and checkpoint of a 1-epoch fixture run)")
    parser.add_argument("--summary", help="also write the one-line summary to this file")
    args = parser.parse_args()
    start = time.time()
    tool = os.path.join(args.build, "tests", "cnnlite_safetensors_copy")
    if not os.access(tool, os.X_OK):
        sys.exit(f"test_safetensors_parity: {tool} not found; build the target cnnlite_safetensors_copy")
    work = tempfile.mkdtemp(prefix="cnnlite-safetensors-parity.")
    checks = Checks()
    try:
        written = check_peer_to_cnnlite(tool, work, checks)
        files = args.model or training_files(args.build, work)
        read = check_cnnlite_to_peer(tool, files, work, checks)
        refused = check_refusals(tool, work, checks)
        trained = files[0] if not args.model else training_files(args.build, work)[0]
        pytorch = check_pytorch_weights(args.build, trained, work, checks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = (f"safetensors {version('safetensors')} parity: {written} tensors from save_file through cnnlite, "
               f"{len(files)} cnnlite files ({read} tensors) through load_file, bit for bit; {refused} bad files "
               f"refused; {pytorch} PyTorch weights files in fashion_mnist evaluate ({checks.count} checks)")
    print(f"{summary} -- {'FAILED' if checks.failures else 'passed'} in {time.time() - start:.1f} s")
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(summary + "\n")
    for failure in checks.failures:
        print("MISMATCH", failure, file=sys.stderr)
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
