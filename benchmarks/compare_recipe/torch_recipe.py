"""PyTorch trains the network of a cnnlite model file with the recipe it records.

The network is rebuilt from the file's "architecture" metadata (the layer graph that cnnlite's
load_model reads; cnnlite_graph.py), the recipe from its "fashion_mnist.recipe" metadata (what
`fashion_mnist train --arch A --recipe R` wrote), so PyTorch and cnnlite train the same
architecture with the same settings: optimiser, per-step warm-up and cosine schedule, weight
decay off biases and BatchNorm parameters, label smoothing, augmentation (flip, 2-pixel shift,
random erasing), a moving average of the weights, the weights of the epoch with the lowest
validation loss kept, flip test-time augmentation. The data split is the program's: validation
= the first 5,000 training images, training = the other 55,000.

    --check   loads the file's weights instead of training and evaluates them on the test set:
              the accuracy and loss must equal cnnlite's metrics.json next to the file (this
              proves the rebuilt network is cnnlite's, layer for layer).

Interpreter: the peers venv (~/.cache/cnnlite/peers/bin/python, set up by
benchmarks/peers/setup.sh; torch 2.x). Threads are set explicitly (--threads, default 2).

    ~/.cache/cnnlite/peers/bin/python benchmarks/compare_recipe/torch_recipe.py \
        --model out/r8-fast-s0/model.safetensors --seed 0 --threads 2 --json torch-s0.json
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The rebuilt graph lives next to this script, importable by the tests too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnnlite_graph import Graph, read_header  # noqa: E402


def read_idx(folder, name):
    """An IDX file of the data set (plain or .gz) as a NumPy array."""
    for candidate in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.exists(candidate):
            opener = gzip.open if candidate.endswith(".gz") else open
            with opener(candidate, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    sys.exit(f"{name} not found in {folder}")


def augment(images, generator, recipe):
    """Flip (p 0.5) and a shift of up to 2 pixels with zero fill; random erasing (Zhong et al.:
    p 0.5, area 0.02-0.4, aspect 0.3-3.3, random values) for flip-shift-erase."""
    if recipe["augment"] == "none":
        return images
    n = images.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    padded = F.pad(images, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=generator)
    dx = torch.randint(0, 5, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(28)[None, :])[:, None, :, None].expand(n, 1, 28, 32)
    padded = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, None, :].expand(n, 1, 28, 28)
    images = padded.gather(3, cols)
    if recipe["augment"] == "flip-shift-erase":
        images = images.clone()
        for i in range(n):
            if torch.rand(1, generator=generator).item() >= 0.5:
                continue
            for _ in range(10):
                area = 784 * (0.02 + (0.4 - 0.02) * torch.rand(1, generator=generator).item())
                aspect = math.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) *
                                  torch.rand(1, generator=generator).item())
                h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
                if 0 < h < 28 and 0 < w < 28:
                    y = torch.randint(0, 28 - h + 1, (1,), generator=generator).item()
                    x = torch.randint(0, 28 - w + 1, (1,), generator=generator).item()
                    images[i, :, y:y + h, x:x + w] = torch.rand((1, h, w), generator=generator)
                    break
    return images


def evaluate(model, images, labels, tta, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for first in range(0, len(images), batch):
            x, y = images[first:first + batch], labels[first:first + batch]
            logits = model(x)
            if tta:
                logits = (logits + model(x.flip(3))) / 2
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    return loss / len(images), correct / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="cnnlite model file (architecture and recipe)")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    parser.add_argument("--limit", type=int, help="train on the first N training images after the validation "
                        "images (as fashion_mnist --limit), for timing")
    parser.add_argument("--check", action="store_true", help="evaluate the file's weights instead of training")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)
    header, metadata = read_header(args.model)
    if "architecture" not in metadata or "fashion_mnist.recipe" not in metadata:
        sys.exit(f"{args.model}: no architecture or fashion_mnist.recipe metadata (train it with fashion_mnist)")
    architecture = json.loads(metadata["architecture"])
    recipe = json.loads(metadata["fashion_mnist.recipe"])
    if args.epochs:
        recipe["epochs"] = args.epochs
    model = Graph(architecture)

    def tensors(prefix):
        images = read_idx(args.data, f"{prefix}-images-idx3-ubyte").astype(np.float32) / 255.0
        labels = read_idx(args.data, f"{prefix}-labels-idx1-ubyte").astype(np.int64)
        return torch.from_numpy(images[:, None, :, :].copy()), torch.from_numpy(labels.copy())

    test_x, test_y = tensors("t10k")
    result = {"torch": torch.__version__, "threads": args.threads, "seed": args.seed, "recipe": recipe,
              "parameters": sum(p.numel() for p in model.parameters())}

    if args.check:
        model.load_cnnlite_weights(args.model, header)
        loss, accuracy = evaluate(model, test_x, test_y, recipe.get("flip_tta", False))
        result.update({"test_loss": loss, "test_accuracy": accuracy})
        metrics_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), "metrics.json")
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                metrics = json.load(f)
            result["cnnlite_test_accuracy"] = metrics.get("test_accuracy")
            result["cnnlite_test_loss"] = metrics.get("test_loss")
        print(json.dumps(result, indent=1))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        return

    train_x, train_y = tensors("train")
    val_x, val_y, train_x, train_y = train_x[:5000], train_y[:5000], train_x[5000:], train_y[5000:]
    if args.limit:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or isinstance(model.modules_[name.split(".")[1]], nn.BatchNorm2d)
         else decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    lr = recipe["learning_rate"]
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    elif recipe["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=lr)
    else:
        optimizer = torch.optim.Adam(groups, lr=lr, eps=1e-7)
    batch = recipe["batch_size"]
    steps_per_epoch = -(-len(train_x) // batch)
    warmup = int(round(recipe["warmup_epochs"] * steps_per_epoch))
    rest = max(1, recipe["epochs"] * steps_per_epoch - warmup)

    def rate(step):
        """Factor of the peak rate at `step`: cnnlite's linear_warmup(start_factor 0.1), then
        constant or cosine(period = the remaining steps) down to 0."""
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        if recipe["schedule"] == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step - warmup, rest) / rest))
        return 1.0

    # The weight average as cnnlite keeps it: avg = decay avg + (1 - decay) p after every step,
    # from the initial weights, of the trainable parameters; buffers stay the live ones.
    ema_decay = recipe.get("ema_decay", 0)
    average = {n: p.detach().clone() for n, p in model.named_parameters()} if ema_decay > 0 else None
    judged = Graph(architecture) if average is not None else model

    def with_average():
        state = model.state_dict()
        state.update(average)
        judged.load_state_dict(state)
        return judged
    generator = torch.Generator().manual_seed(args.seed)
    best = (math.inf, 0, None)
    epochs, step = [], 0
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(train_x), generator=generator)
        for first in range(0, len(train_x), batch):
            index = order[first:first + batch]
            x = augment(train_x[index], generator, recipe)
            for g in optimizer.param_groups:
                g["lr"] = lr * rate(step)
            loss = F.cross_entropy(model(x), train_y[index], label_smoothing=recipe["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.get("clip_norm", 0) > 0:
                nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_norm"])
            optimizer.step()
            if average is not None:
                with torch.no_grad():
                    for n, p in model.named_parameters():
                        average[n].mul_(ema_decay).add_(p.detach(), alpha=1 - ema_decay)
            step += 1
        train_seconds = time.perf_counter() - start
        if average is not None:
            with_average()
        val_loss, val_accuracy = evaluate(judged, val_x, val_y, False)
        epochs.append({"epoch": epoch, "train_seconds": train_seconds, "val_loss": val_loss,
                       "val_accuracy": val_accuracy, "learning_rate": lr * rate(step - 1)})
        print(f"epoch {epoch}/{recipe['epochs']}: {train_seconds:.1f} s, val_loss {val_loss:.4f}, "
              f"val_accuracy {val_accuracy:.4f}", flush=True)
        if val_loss < best[0]:
            best = (val_loss, epoch, {k: v.clone() for k, v in judged.state_dict().items()})
    final = Graph(architecture)
    final.load_state_dict(best[2])
    test_loss, test_accuracy = evaluate(final, test_x, test_y, recipe.get("flip_tta", False))
    result.update({"epochs": epochs, "best_epoch": best[1], "test_loss": test_loss, "test_accuracy": test_accuracy,
                   "median_epoch_train_seconds": float(np.median([e["train_seconds"] for e in epochs]))})
    print(f"kept epoch {best[1]}; test accuracy {test_accuracy:.4f}, test loss {test_loss:.4f}; median epoch "
          f"{result['median_epoch_train_seconds']:.1f} s on {args.threads} thread(s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
