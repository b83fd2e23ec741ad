#!/usr/bin/env python3
"""cnnlite's ONNX import (load_onnx, io/onnx_import.hpp) of what PyTorch's exporters write,
against PyTorch and onnxruntime.

Runs with the peers-ci venv's interpreter (torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2,
onnxruntime 1.32.0, numpy 2.4.6; made by `bash benchmarks/peers/setup.sh --subset ci`):

    ~/.cache/cnnlite/peers-ci/bin/python tests/python/test_onnx_import.py --build DIR

DIR is a CMake build configured with -DCNNLITE_WITH_ONNX=ON and holding tests/cnnlite_onnx_import
(default: build-mpi/, which the CI's mpi stage configures so, else build/). Exit status 0 when
every check passes, 1 otherwise.

Networks (torch.nn, weights from torch.manual_seed(--seed), BatchNorm running statistics from a
few training-mode forwards over random inputs, then eval mode):
  chain     Conv 3x3 -> BatchNorm2d -> ReLU -> MaxPool 3, stride 2, padding 1 -> Conv 5x5 padding 2
            -> ReLU -> AvgPool 2 -> Flatten -> Linear -> BatchNorm1d -> ELU(0.5) -> Dropout ->
            Linear -> Softmax;
  branches  Conv 3x3 stride 2 without bias -> BatchNorm2d -> LeakyReLU(0.2); a Conv 4x4
            padding='same' -> Sigmoid and a Conv 1x1 -> Tanh added to it (three-way sum);
            concatenated with AvgPool 3, stride 1, padding 1, count_include_pad=False; MaxPool 2
            with ceil_mode; Softplus; global average and max pooling concatenated -> Linear ->
            Softmax;
  padded    F.pad(x, (0, 1, 0, 1)) -> Conv 2x2 -> ReLU -> MaxPool 2 -> Flatten -> Linear -> Softmax
            (the paper network's start; the TorchScript exporter computes the Pad's pads with
            ConstantOfShape, Concat, Reshape, Slice, Transpose and Cast nodes);
  mlp       Flatten -> Linear -> ReLU -> Linear -> SiLU -> Linear (logits, no softmax);
  grouped   Conv 3x3 -> ReLU -> Conv 3x3 in 2 groups at dilation 2 -> depthwise Conv 3x3
            (groups = channels, a multiplier of 2) with stride 2, padding 2 and dilation (2, 1)
            -> ReLU -> Flatten -> Linear -> Softmax.
Each is exported by torch.onnx.export's torch.export-based exporter (dynamo=True, opset 18) and
by its TorchScript exporter (dynamo=False) at opsets 17 and 13, run on the first --images test
images (default 200; Debian's /usr/share/datasets/fashion-mnist when present, else
data/fixtures; pixels / 255). Checks:
  torch      max |p_cnnlite - p_torch| <= 1e-5 (float; and in double for the chain);
  runtime    max |p_cnnlite - p_onnxruntime| <= 1e-5.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

import numpy as np
import onnxruntime as ort
import torch

from idx_file import read_idx  # the test set's images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "test_onnx_import"
TOLERANCE = 1e-5
DEBIAN_DATA = "/usr/share/datasets/fashion-mnist"
EXPORTS = (("dynamo", 18), ("torchscript", 17), ("torchscript", 13))

torch.set_num_threads(1)


class Chain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.MaxPool2d(3, stride=2, padding=1),                          # 14 x 14
            torch.nn.Conv2d(8, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.AvgPool2d(2))  # 7 x 7
        self.head = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 32), torch.nn.BatchNorm1d(32), torch.nn.ELU(0.5),
            torch.nn.Dropout(0.3), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))

    def forward(self, x):
        return self.head(self.features(x))


class Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False),
                                        torch.nn.BatchNorm2d(8), torch.nn.LeakyReLU(0.2))  # 14 x 14
        self.wide = torch.nn.Conv2d(8, 8, 4, padding="same")
        self.narrow = torch.nn.Conv2d(8, 8, 1)
        self.side = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.pool = torch.nn.MaxPool2d(2, ceil_mode=True)
        self.fc = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        s = torch.sigmoid(self.wide(x)) + torch.tanh(self.narrow(x)) + x
        c = torch.nn.functional.softplus(self.pool(torch.cat([s, self.side(x)], 1)))     # [16, 7, 7]
        g = torch.cat([torch.nn.functional.adaptive_avg_pool2d(c, 1), torch.nn.functional.adaptive_max_pool2d(c, 1)], 1)
        return torch.softmax(self.fc(torch.flatten(g, 1)), dim=1)


class Padded(torch.nn.Module):
    """The paper network's start, as tests/python/torch_paper_model.py writes it: an explicit
    F.pad before an even-kernel convolution (the TorchScript exporter computes the Pad's pads
    with a chain of constant nodes)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 2)
        self.fc = torch.nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(torch.nn.functional.pad(x, (0, 1, 0, 1)))), 2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(),
                                       torch.nn.Linear(64, 32), torch.nn.SiLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class Grouped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, groups=2, dilation=2)
        self.depthwise = torch.nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=(2, 1), groups=8)
        self.fc = torch.nn.Linear(16 * 11 * 12, 10)

    def forward(self, x):
        h = self.conv2(torch.relu(self.conv1(x)))  # [8, 22, 22]
        h = torch.relu(self.depthwise(h))            # [16, 11, 12]
        return torch.softmax(self.fc(torch.flatten(h, 1)), dim=1)


def prepared(cls, seed):
    """An eval-mode network with seeded weights and BatchNorm statistics away from 0 and 1."""
    torch.manual_seed(seed)
    net = cls()
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(16, 1, 28, 28) * 2)
    return net.eval()


def export(net, kind, opset, path, example):
    if kind == "dynamo":
        program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, input_names=["input"],
                                    output_names=["output"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        program.save(path)
    else:
        torch.onnx.export(net, (example,), path, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def cnnlite(tool, onnx_path, images_path, out_path, dtype="float"):
    result = subprocess.run([tool, onnx_path, images_path, out_path, "--dtype", dtype], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", help="CMake build with CNNLITE_WITH_ONNX=ON (default: build-mpi/, else build/)")
    parser.add_argument("--images", type=int, default=200, help="test images compared (default 200)")
    parser.add_argument("--data", help=f"folder of the IDX files (default: {DEBIAN_DATA} if present, else data/fixtures)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the networks' weights (default 1)")
    parser.add_argument("--keep", help="keep the files in this folder")
    parser.add_argument("--summary", help="also write the one-line summary to this file")
    args = parser.parse_args()
    start = time.time()

    build = args.build or next((os.path.join(REPO, b) for b in ("build-mpi", "build")
                                if os.path.exists(os.path.join(REPO, b, "tests", "cnnlite_onnx_import"))), None)
    tool = os.path.join(build or "", "tests", "cnnlite_onnx_import")
    if not os.path.exists(tool):
        sys.exit(f"{NAME}: {tool} not found: build the target cnnlite_onnx_import with -DCNNLITE_WITH_ONNX=ON")
    data = args.data or (DEBIAN_DATA if os.path.exists(os.path.join(DEBIAN_DATA, "t10k-images-idx3-ubyte.gz"))
                         else os.path.join(REPO, "data", "fixtures"))
    images = read_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"), args.images).astype(np.float32) / 255.0
    images = images.reshape(len(images), 1, 28, 28)
    work = args.keep or tempfile.mkdtemp(prefix="cnnlite_onnx_import_")
    os.makedirs(work, exist_ok=True)
    images_path = os.path.join(work, "images.npy")
    np.save(images_path, images)

    failures, worst_torch, worst_ort, compared = [], 0.0, 0.0, 0
    for name, cls in (("chain", Chain), ("branches", Branches), ("padded", Padded), ("mlp", Mlp),
                      ("grouped", Grouped)):
        net = prepared(cls, args.seed)
        with torch.no_grad():
            expected = net(torch.from_numpy(images)).numpy().astype(np.float64)
        for kind, opset in EXPORTS:
            label = f"{name} ({kind}, opset {opset})"
            onnx_path = os.path.join(work, f"{name}_{kind}_{opset}.onnx")
            export(net, kind, opset, onnx_path, torch.from_numpy(images[:2]))
            theirs = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).run(
                ["output"], {"input": images})[0].astype(np.float64)
            for dtype in ("float", "double") if name == "chain" else ("float",):
                out_path = os.path.join(work, f"{name}_{kind}_{opset}_{dtype}.npy")
                result = cnnlite(tool, onnx_path, images_path, out_path, dtype)
                if result.returncode != 0:
                    failures.append(f"{label}: load_onnx refused it: {result.stderr.strip()}")
                    print("MISMATCH", failures[-1], file=sys.stderr)
                    continue
                ours = np.load(out_path).astype(np.float64)
                d_torch = float(np.abs(ours - expected).max())
                d_ort = float(np.abs(ours - theirs).max())
                worst_torch, worst_ort, compared = max(worst_torch, d_torch), max(worst_ort, d_ort), compared + 1
                print(f"{label} {dtype}: {len(result.stdout.splitlines())} layers; max |cnnlite - torch| = "
                      f"{d_torch:.2e}, max |cnnlite - onnxruntime| = {d_ort:.2e}")
                if not (d_torch <= TOLERANCE and d_ort <= TOLERANCE):
                    failures.append(f"{label} {dtype}: differences {d_torch:.2e} (torch), {d_ort:.2e} (onnxruntime)")
                    print("MISMATCH", failures[-1], file=sys.stderr)

    summary = (f"ONNX import (torch {version('torch')}, onnxruntime {version('onnxruntime')}, {len(images)} images, "
               f"{compared} imports): max |cnnlite - torch| {worst_torch:.1e}, max |cnnlite - onnxruntime| "
               f"{worst_ort:.1e}")
    print(f"{summary} -- {'FAILED' if failures else 'passed'} in {time.time() - start:.1f} s")
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(summary + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
