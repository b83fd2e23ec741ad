"""PyTorch side of the explanation comparison: the paper's network in torch.nn with the weights
of a cnnlite model file (safetensors, PyTorch names and layouts), explained with
pytorch-grad-cam's GradCAM or Captum's IntegratedGradients over the first N test images.
Prints one JSON line like cnnlite_explain_driver. Runs under the peers venv's python
(benchmarks/peers/setup.sh: torch 2.15, grad-cam 1.5.7, captum 0.9.0).

    $PY torch_explain_driver.py --model M.safetensors --data DIR --method gradcam|ig [--images 1000]
        [--batch 256] [--steps 32] [--internal-batch 0] [--frozen] [--channels-last] [--threads 2] [--seconds 3] [--maps OUT.npy]

What is explained is what cnnlite explains: the softmax probability (the model ends in softmax,
as the paper's does) of the predicted class.
  gradcam  GradCAM(model, target_layers=[the ReLU after the conv]) called on batches of --batch
           images with targets=None (the library picks the predicted class); its maps are
           ReLU'd, min-max scaled and resized to the input by the library. --frozen: every
           parameter with requires_grad=False and the library's compute_input_gradient=True,
           so that the backward pass skips the weight gradients (cnnlite's Grad-CAM skips them too)
  --channels-last  model and images in torch.channels_last memory format (for both methods)
  ig       IntegratedGradients(model).attribute(x, target=predicted, n_steps=--steps,
           method="riemann_middle", internal_batch_size=--internal-batch or all of them), the
           black baseline (Captum's default); the predicted classes come from one no_grad
           forward pass, which is timed with the rest
Timing: one warm-up call on the first --batch images, then passes over all N images until
--seconds have passed (at least one). Threads: torch.set_num_threads(T) and
torch.set_num_interop_threads(T). --maps writes the maps (IG: raw attributions summed over
channels) and predicted classes of the first 100 images, outside the timing.
"""
import argparse
import gzip
import json
import os
import resource
import time
import warnings

import numpy as np
import torch
from torch import nn


class PaperNet(nn.Module):
    """The paper's CNN; attribute names are cnnlite's layer names, so the model file loads with
    load_state_dict(strict=True). Dropout is the identity at inference."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))  # 'same' for a 2x2 kernel: one column right, one row below
        self.conv2d = nn.Conv2d(1, 64, 2)
        self.relu = nn.ReLU()                  # the Grad-CAM target: the conv's output after its ReLU
        self.pool = nn.MaxPool2d(2)
        self.dense = nn.Linear(3136, 256)
        self.dense_1 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool(self.pool(self.relu(self.conv2d(self.pad(x)))))
        x = torch.relu(self.dense(torch.flatten(x, 1)))
        return torch.softmax(self.dense_1(x), dim=1)


def read_test_images(folder, n):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
                raw = f.read(16 + n * 784)
            count = int.from_bytes(raw[4:8], "big")
            if count < n:
                raise SystemExit(f"{path}: {count} images, {n} asked for")
            pixels = np.frombuffer(raw[16:16 + n * 784], dtype=np.uint8).reshape(n, 1, 28, 28)
            return torch.from_numpy(pixels.astype(np.float32) / np.float32(255))
    raise SystemExit(f"no t10k-images-idx3-ubyte[.gz] in {folder}")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    warnings.filterwarnings("ignore", category=UserWarning)
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--method", choices=["gradcam", "ig"], default="gradcam")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--internal-batch", type=int, default=0)
    p.add_argument("--frozen", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--maps", default="")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)

    from safetensors.torch import load_file
    x = read_test_images(a.data, a.images)
    rss_loaded = peak_rss_mb()
    net = PaperNet()
    net.load_state_dict(load_file(a.model), strict=True)
    net.eval()
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    if a.method == "gradcam":
        from pytorch_grad_cam import GradCAM
        cam = GradCAM(model=net, target_layers=[net.relu])
        if a.frozen:
            for q in net.parameters():
                q.requires_grad_(False)
            cam.compute_input_gradient = True

        def explain_batch(xb):
            return cam(input_tensor=xb, targets=None), None  # None: the predicted class
    else:
        from captum.attr import IntegratedGradients
        ig = IntegratedGradients(net)

        def explain_batch(xb):
            with torch.no_grad():
                predicted = net(xb).argmax(1)
            attr = ig.attribute(xb, target=predicted, n_steps=a.steps, method="riemann_middle",
                                internal_batch_size=a.internal_batch or None)
            return attr, predicted

    def explain(images):
        out = [explain_batch(xb) for xb in torch.split(images, a.batch)]
        return out

    explain(x[:a.batch])  # warm-up
    start = time.perf_counter()
    calls = 0
    while True:
        out = explain(x)
        calls += 1
        if time.perf_counter() - start >= a.seconds:
            break
    elapsed = time.perf_counter() - start
    peak = peak_rss_mb()
    first = out[0][0]
    check = float(first.reshape(-1)[0])

    if a.maps:
        n = min(100, a.images)
        got = explain(x[:n])
        if a.method == "gradcam":
            maps = np.concatenate([g[0] for g in got])
            with torch.no_grad():
                predicted = net(x[:n]).argmax(1).numpy()
        else:
            maps = torch.cat([g[0] for g in got]).sum(1).detach().numpy()
            predicted = torch.cat([g[1] for g in got]).numpy()
        np.save(a.maps, maps.astype(np.float32))
        np.save(a.maps + ".predicted.npy", predicted.astype(np.float32))

    import importlib.metadata as md
    library = "grad-cam " + md.version("grad-cam") if a.method == "gradcam" else "captum " + md.version("captum")
    print(json.dumps({"framework": "pytorch-grad-cam" if a.method == "gradcam" else "captum", "method": a.method,
                      "images": a.images, "batch": a.batch, "steps": a.steps if a.method == "ig" else 0,
                      "internal_batch": a.internal_batch, "frozen": a.frozen, "threads": torch.get_num_threads(),
                      "images_per_second": calls * a.images / elapsed, "seconds": elapsed, "calls": calls,
                      "peak_rss_mb": peak, "rss_after_data_mb": rss_loaded, "check": check,
                      "version": f"{library}, torch {torch.__version__}"}))


if __name__ == "__main__":
    main()
