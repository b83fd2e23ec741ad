"""PyTorch side of the side-by-side comparison: the paper's network written with torch.nn,
trained with Adam (epsilon 1e-7 as Keras) and cross-entropy on the logits, or run in inference
mode. Prints one JSON line like the other drivers.

    /usr/bin/python3 torch_driver.py --data DIR --mode train|infer --batch 64 --threads 2 [--seconds 3]
                                     [--flush-denormal]

The thread count is set explicitly (Debian's PyTorch starts with one thread). The environment
decides the rest: run.sh starts it once as installed and once in its fastest configuration
found (glibc malloc tuned to keep freed memory, OPENBLAS_NUM_THREADS=1, denormals flushed as
cnnlite's training flushes them).
"""
import argparse
import json
import os
import resource
import time
import warnings

import numpy as np
import torch
from torch import nn


def read_raw(folder, split):
    images = np.fromfile(os.path.join(folder, f"{split}_images.u8"), dtype=np.uint8)
    labels = np.fromfile(os.path.join(folder, f"{split}_labels.u8"), dtype=np.uint8)
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255))
    return x, torch.from_numpy(labels.astype(np.int64))


def paper_network():
    # The paper's Figure 4: conv 64@2x2 'same' + ReLU, pool, dropout .3, pool, dropout .3,
    # dense 256 + ReLU, dropout .5, dense 10 (softmax folded into the loss).
    return nn.Sequential(
        nn.Conv2d(1, 64, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.3),
        nn.MaxPool2d(2), nn.Dropout(0.3), nn.Flatten(),
        nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    # 'same' with the even 2x2 kernel pads a copy of the input; that copy is part of its cost.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    train_x, train_y = read_raw(a.data, "train")
    test_x, _ = read_raw(a.data, "test")
    rss_loaded = peak_rss_mb()
    model = paper_network()

    if a.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(train_x.shape[0])
        ring = [(train_x[order[i:i + a.batch]].contiguous(), train_y[order[i:i + a.batch]].contiguous())
                for i in range(0, train_x.shape[0] - a.batch + 1, a.batch)]
        state = {"step": 0, "loss": 0.0}

        def train_once():
            x, y = ring[state["step"] % len(ring)]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            state["step"] += 1
            return loss

        for _ in range(5):
            train_once()
        start = time.perf_counter()
        steps = 0
        while True:
            loss = train_once()
            steps += 1
            if steps >= 10 and time.perf_counter() - start >= a.seconds:
                break
        check = float(loss)  # forces the last step to finish before the clock stops
        elapsed = time.perf_counter() - start
        images = steps * a.batch
    else:
        model.eval()
        x = test_x[:a.batch].contiguous()
        with torch.inference_mode():
            y = model(x)
            start = time.perf_counter()
            calls = 0
            while True:
                y = model(x)
                calls += 1
                if calls >= 5 and time.perf_counter() - start >= a.seconds:
                    break
            elapsed = time.perf_counter() - start
            check = float(y[0, 0])
        images = calls * a.batch

    print(json.dumps({"framework": "pytorch", "mode": a.mode, "batch": a.batch, "threads": a.threads,
                      "images_per_second": images / elapsed, "seconds": elapsed, "peak_rss_mb": peak_rss_mb(),
                      "rss_after_data_mb": rss_loaded, "check": check, "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(), "flush_denormal": a.flush_denormal}))


if __name__ == "__main__":
    main()
