"""PyTorch side of the side-by-side comparison: the paper's network written with torch.nn,
trained with Adam (epsilon 1e-7 as Keras) and cross-entropy on the logits, or run for
inference; or, with --model FILE, the network of a cnnlite model file rebuilt module by module
(benchmarks/compare_recipe/cnnlite_graph.py: e.g. ResNet-8 with BatchNorm), trained with SGD
(Nesterov momentum 0.9, learning rate 0.01) as cnnlite_driver trains it. Prints one JSON line
like the other drivers. fp32 throughout.

    PY=$(bash benchmarks/peers/setup.sh --print-venv)/bin/python     # torch 2.x (the peers venv)
    $PY torch_driver.py --data DIR --mode train|infer --batch 64 --threads 2 [--seconds 3] [options]

Without options this is PyTorch as installed: eval() + torch.inference_mode() for inference,
zero_grad(set_to_none=True) and the default (foreach) Adam for training; only the threads are
set, torch.set_num_threads(T) and torch.set_num_interop_threads(T). The options are the
configurations tried for PyTorch's fastest run (variants.py names the combinations):
  --channels-last         model and input in torch.channels_last memory format
  --mkldnn off            torch.backends.mkldnn.enabled = False (convolution and pooling without oneDNN)
  --compile MODE          torch.compile (Inductor's CPU backend, C++/OpenMP code): default,
                          max-autotune (also tunes the GEMMs), reduce-overhead; compiled
                          during the warm-up, which is not timed
  --compile-optimizer     (train) also torch.compile the Adam step
  --freeze                (infer, with --compile) Inductor's freezing: weights as constants, prepacked for oneDNN
  --cpp-wrapper           (with --compile) Inductor's C++ wrapper instead of the Python one
  --jit-freeze            (infer) torch.jit.trace + torch.jit.freeze (TorchScript, oneDNN fusion off)
  --grad-mode MODE        (infer) inference_mode (default) or no_grad
  --chunk N               (infer) run the batch in slices of N images and concatenate
                          (what cnnlite's predict() does inside); 0 = the whole batch at once
  --adam KIND             (train) foreach (default), fused or loop
  --flush-denormal        torch.set_flush_denormal(True) (cnnlite's training flushes denormals)
Memory allocators are chosen by the environment (glibc MALLOC_* settings, LD_PRELOAD of
jemalloc or tcmalloc): compare.py and sweep_torch.py set them. The driver also runs under
Debian's PyTorch 1.13 (/usr/bin/python3) with the options that version has.
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compare_recipe"))


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


def allocator():
    preload = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload:
        return "jemalloc"
    if "tcmalloc" in preload:
        return "tcmalloc"
    return "glibc (tuned)" if "MALLOC_TRIM_THRESHOLD_" in os.environ else "glibc"


def main():
    # 'same' with the even 2x2 kernel pads a copy of the input; that copy is part of its cost.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.jit")
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--variant", default="", help="a name recorded in the output (variants.py)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--mkldnn", choices=["on", "off"], default="on")
    p.add_argument("--compile", default="", choices=["", "default", "max-autotune", "reduce-overhead"])
    p.add_argument("--compile-optimizer", action="store_true")
    p.add_argument("--freeze", action="store_true")
    p.add_argument("--cpp-wrapper", action="store_true")
    p.add_argument("--jit-freeze", action="store_true")
    p.add_argument("--grad-mode", choices=["inference_mode", "no_grad"], default="inference_mode")
    p.add_argument("--chunk", type=int, default=0)
    p.add_argument("--adam", choices=["foreach", "fused", "loop"], default="foreach")
    p.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)")
    p.add_argument("--model", default="", help="a cnnlite model file: its network instead of the paper's")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    torch.backends.mkldnn.enabled = a.mkldnn == "on"
    if a.compile:
        import torch._inductor.config as inductor
        inductor.freezing = a.freeze
        inductor.cpp_wrapper = a.cpp_wrapper
    torch.manual_seed(0)
    train_x, train_y = read_raw(a.data, "train")
    test_x, _ = read_raw(a.data, "test")
    rss_loaded = peak_rss_mb()
    if a.model:
        from cnnlite_graph import Graph, read_header
        header, metadata = read_header(a.model)
        model = Graph(json.loads(metadata["architecture"]))
        model.load_cnnlite_weights(a.model, header)
    else:
        model = paper_network()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)

    def compiled(fn):
        return torch.compile(fn, mode=None if a.compile == "default" else a.compile) if a.compile else fn

    if a.mode == "train":
        model.train()
        adam = {"foreach": {}, "fused": {"fused": True}, "loop": {"foreach": False}}[a.adam]
        if a.model:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, **adam)
        loss_fn = nn.CrossEntropyLoss()
        forward = compiled(model)
        step = compiled(opt.step) if a.compile_optimizer else opt.step
        order = torch.randperm(train_x.shape[0])
        ring = [(train_x[order[i:i + a.batch]].contiguous(memory_format=fmt), train_y[order[i:i + a.batch]].contiguous())
                for i in range(0, train_x.shape[0] - a.batch + 1, a.batch)]
        state = {"step": 0}

        def train_once():
            x, y = ring[state["step"] % len(ring)]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(forward(x), y)
            loss.backward()
            step()
            state["step"] += 1
            return loss

        for _ in range(8 if a.compile else 5):  # warm-up (and compilation), not timed
            train_once()
        start = time.perf_counter()
        steps = 0
        while True:
            loss = train_once()
            steps += 1
            if steps >= 10 and time.perf_counter() - start >= a.seconds:
                break
        check = float(loss.detach())  # forces the last step to finish before the clock stops
        elapsed = time.perf_counter() - start
        images = steps * a.batch
    else:
        model.eval()
        x = test_x[:a.batch].contiguous(memory_format=fmt)
        grad_mode = torch.inference_mode if a.grad_mode == "inference_mode" else torch.no_grad
        if a.jit_freeze:
            with torch.no_grad():
                forward = torch.jit.freeze(torch.jit.trace(model, x[:min(a.batch, a.chunk or a.batch)]))
        else:
            forward = compiled(model)

        def infer():
            if a.chunk and a.chunk < a.batch:
                return torch.cat([forward(c) for c in torch.split(x, a.chunk)])
            return forward(x)

        with grad_mode():
            for _ in range(3 if (a.compile or a.jit_freeze) else 1):  # warm-up (and compilation), not timed
                y = infer()
            start = time.perf_counter()
            calls = 0
            while True:
                y = infer()
                calls += 1
                if calls >= 5 and time.perf_counter() - start >= a.seconds:
                    break
            elapsed = time.perf_counter() - start
            check = float(y[0, 0])
        images = calls * a.batch

    options = {k: v for k, v in vars(a).items()
               if k not in ("data", "mode", "batch", "threads", "seconds", "variant", "model")}
    print(json.dumps({"framework": "pytorch", "variant": a.variant, "model": a.model or "paper", "mode": a.mode,
                      "batch": a.batch, "threads": a.threads,
                      "images_per_second": images / elapsed, "seconds": elapsed, "peak_rss_mb": peak_rss_mb(),
                      "rss_after_data_mb": rss_loaded, "check": check, "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                      "allocator": allocator(), "options": options}))


if __name__ == "__main__":
    main()
