"""Where PyTorch's training step spends its time: the network of a cnnlite model file (e.g.
ResNet-8, rebuilt by compare_recipe/cnnlite_graph.py) trained as torch_driver.py trains it (SGD
with Nesterov momentum, batch 128, cross-entropy on the logits), profiled with torch.profiler.
Prints the self CPU time of the step's operators grouped by what they do (convolutions,
BatchNorm, ReLU, ...), the framework's own time (the step's wall time minus every operator's
self time: Python, the autograd engine and the dispatcher between operators), and the top
operators. The shares are what matters; on a busy machine the times stretch but the shares hold.

    PY=$(bash benchmarks/peers/setup.sh --print-venv)/bin/python     # torch 2.x (the peers venv)
    $PY benchmarks/compare/profile_torch_step.py --model FILE [--threads 1] [--batch 128]
        [--steps 20] [--channels-last] [--json OUT]

The data are random images (the time of a step does not depend on the pixels); threads are set
explicitly with torch.set_num_threads and torch.set_num_interop_threads.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compare_recipe"))
from cnnlite_graph import Graph, read_header  # noqa: E402

# Operator name fragments (aten::<name>) of each group, tried in order; the rest is "other".
GROUPS = (
    ("convolution, forward", ("mkldnn_convolution", "_convolution", "conv2d", "thnn_conv")),
    ("convolution, backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("BatchNorm", ("batch_norm",)),
    ("ReLU", ("relu", "threshold_backward", "clamp_min")),
    ("residual add", ("aten::add",)),
    ("pooling", ("avg_pool", "adaptive_avg", "mean", "max_pool", "sum")),
    ("dense layer", ("addmm", "aten::mm", "linear", "aten::t")),
    ("loss", ("softmax", "nll_loss", "cross_entropy")),
    ("optimizer", ("_foreach", "sgd", "lerp", "addcmul")),
    ("zeroing, copies, allocation", ("zero", "fill", "copy", "empty", "clone", "to", "contiguous", "as_strided",
                                     "view", "reshape", "detach", "resize", "set_")),
)


def group_of(name):
    for label, fragments in GROUPS:
        if any(f in name for f in fragments):
            return label
    return "other operators"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="cnnlite model file (its architecture is rebuilt)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="profiled steps (after 5 untimed ones)")
    p.add_argument("--channels-last", action="store_true", help="model and input in torch.channels_last")
    p.add_argument("--json", help="also write the groups and top operators here")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)
    torch.manual_seed(0)
    header, metadata = read_header(a.model)
    model = Graph(json.loads(metadata["architecture"]))
    model.load_cnnlite_weights(a.model, header)
    shape = json.loads(metadata["architecture"])["input_shape"]
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, *shape).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(a.steps):
            loss = step()
        float(loss.detach())
        wall_us = (time.perf_counter() - start) * 1e6
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    # With several threads the operators' self times overlap the step's wall time, so the
    # framework's share is only meaningful at one thread.
    op_us = sum(e.self_cpu_time_total for e in events)
    totals = {}
    for e in events:
        totals[group_of(e.key)] = totals.get(group_of(e.key), 0.0) + e.self_cpu_time_total
    framework = max(0.0, wall_us - op_us)
    rows = sorted(totals.items(), key=lambda kv: -kv[1]) + [("framework (between operators)", framework)]
    per_step_ms = wall_us / a.steps / 1e3
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s), batch {a.batch}, "
          f"{'channels_last' if a.channels_last else 'contiguous'}: {per_step_ms:.1f} ms per step "
          f"({a.batch / per_step_ms * 1e3:.0f} images/s under the profiler), {a.steps} steps")
    print(f"{'share':>6}  {'ms/step':>8}  group")
    for label, us in rows:
        print(f"{100 * us / wall_us:5.1f}%  {us / a.steps / 1e3:8.2f}  {label}")
    print("\ntop operators by self CPU time:")
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    for e in top:
        print(f"{100 * e.self_cpu_time_total / wall_us:5.1f}%  {e.count // a.steps:4d} calls/step  {e.key}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"torch": torch.__version__, "threads": a.threads, "batch": a.batch,
                       "channels_last": a.channels_last, "ms_per_step": per_step_ms,
                       "groups": {label: us / wall_us for label, us in rows},
                       "top": [{"op": e.key, "share": e.self_cpu_time_total / wall_us,
                                "calls_per_step": e.count // a.steps} for e in top]}, f, indent=1)


if __name__ == "__main__":
    main()
