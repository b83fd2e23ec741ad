#!/usr/bin/env python3
"""Loads a cnnlite model file of the paper's network into the equivalent PyTorch module with
load_state_dict(strict=True) and writes its softmax outputs for the first N fixture images.

Usage: torch_paper_model.py MODEL.safetensors IMAGES.idx.gz N OUT.json

Needs torch, numpy and the `safetensors` package: run it with the peers-ci venv's interpreter,
~/.cache/cnnlite/peers-ci/bin/python (made by `bash benchmarks/peers/setup.sh --subset ci`).
PaperNet is also the module tests/python/test_explain_parity.py compares explanations with; the
README shows a shorter version of it for using cnnlite's weights from PyTorch.
"""
import gzip
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file


class PaperNet(torch.nn.Module):
    """The paper's CNN with cnnlite's layer names as attributes (cnnlite stores NCHW tensors
    with PyTorch's names and layouts, so the state dict loads as it is)."""

    def __init__(self):
        super().__init__()
        self.conv2d = torch.nn.Conv2d(1, 64, 2)
        # The convolution's ReLU as a module of its own: its output is the layer cnnlite's
        # Grad-CAM explains (conv2d after its fused ReLU), and hooks need a module. No weights.
        self.conv2d_relu = torch.nn.ReLU()
        self.dense = torch.nn.Linear(3136, 256)
        self.dense_1 = torch.nn.Linear(256, 10)

    def logits(self, x):
        x = self.conv2d_relu(self.conv2d(F.pad(x, (0, 1, 0, 1))))  # 'same' for a 2x2 kernel
        x = F.max_pool2d(F.max_pool2d(x, 2), 2)                  # dropout is off at inference
        x = F.relu(self.dense(torch.flatten(x, 1)))
        return self.dense_1(x)

    def forward(self, x):
        return F.softmax(self.logits(x), dim=1)


def read_fixture_test(folder):
    """The test images (N x 1 x 28 x 28 float32, pixels / 255) and labels (int64) of an IDX folder."""
    with gzip.open(f"{folder}/t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    images = np.frombuffer(raw[16:16 + n * 784], dtype=np.uint8).reshape(n, 1, 28, 28)
    with gzip.open(f"{folder}/t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = np.frombuffer(f.read()[8:8 + n], dtype=np.uint8)
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


def main():
    model_path, images_path, n, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(1)
    net = PaperNet()
    net.load_state_dict(load_file(model_path), strict=True)
    net.eval()
    with gzip.open(images_path, "rb") as f:
        raw = f.read()
    pixels = np.frombuffer(raw[16:16 + n * 784], dtype=np.uint8).reshape(n, 1, 28, 28)
    x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0))
    with torch.no_grad():
        probs = net(x)
    with open(out_path, "w") as f:
        json.dump({"probabilities": probs.flatten().tolist()}, f)


if __name__ == "__main__":
    main()
