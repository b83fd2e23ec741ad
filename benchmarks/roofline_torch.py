"""PyTorch's convolutions on the shapes of bench_kernels' roofline, for roofline.py's PyTorch column.

The 3x3 convolutions of ResNet-8 at batch 64 (the names and shapes of `modern_convs` in
bench_kernels.cpp), forward, backward-data and backward-weights, each timed alone through the
operators autograd calls (`aten.convolution` and `aten.convolution_backward` with one output
asked for), on 1 and 2 threads (intra-op threads set, inter-op 1), fp32, NCHW as installed.
PyTorch's padding is symmetric, so the stride-2 convolutions pad 1 on each side instead of
TensorFlow's 0 above and 1 below: the same output size and the same FLOP, windows one pixel
apart. Medians of the repetitions, each at least --seconds long.

Run with the peers' venv (benchmarks/peers/setup.sh), not Debian's python:

    ~/.cache/cnnlite/peers/bin/python benchmarks/roofline_torch.py --out /tmp/roofline_torch.json
    ~/.cache/cnnlite/peers/bin/python benchmarks/roofline_torch.py --depthwise --out /tmp/depthwise_torch.json
    /usr/bin/python3 benchmarks/roofline.py --json /tmp/roofline.json --torch /tmp/roofline_torch.json
"""
import argparse
import json
import statistics
import time

import torch

# name, in channels, out channels, input size, stride (as in bench_kernels.cpp)
SHAPES = [
    ("stem_1to32_28x28", 1, 32, 28, 1),
    ("c32_28x28", 32, 32, 28, 1),
    ("c32to64_s2_28x28", 32, 64, 28, 2),
    ("c64_14x14", 64, 64, 14, 1),
    ("c64to128_s2_14x14", 64, 128, 14, 2),
    ("c128_7x7", 128, 128, 7, 1),
]
# --depthwise: the depthwise 3x3 layers of bench_kernels' `depthwise_convs` (groups = channels)
DEPTHWISE = [
    ("dw_c32_28x28", 32, 32, 28, 1),
    ("dw_c64_s2_28x28", 64, 64, 28, 2),
    ("dw_c128_14x14", 128, 128, 14, 1),
    ("dw_c256_7x7", 256, 256, 7, 1),
]
BATCH = 64


def seconds_per_call(fn, seconds, repetitions):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repetitions):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        times.append(elapsed / calls)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--depthwise", action="store_true", help="time the depthwise shapes instead")
    args = parser.parse_args()
    shapes = DEPTHWISE if args.depthwise else SHAPES

    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, c, o, size, stride in shapes:
            groups = c if args.depthwise else 1
            out_size = (size + stride - 1) // stride
            x = torch.rand(BATCH, c, size, size) * 2 - 1
            w = (torch.rand(o, c // groups, 3, 3) * 2 - 1) * 0.1
            dy = (torch.rand(BATCH, o, out_size, out_size) * 2 - 1) * 1e-3
            conv = dict(stride=[stride, stride], padding=[1, 1], dilation=[1, 1], transposed=False,
                        output_padding=[0, 0], groups=groups)
            assert torch.ops.aten.convolution(x, w, None, **conv).shape == dy.shape
            passes = {
                "forward": lambda: torch.ops.aten.convolution(x, w, None, **conv),
                "backward_data": lambda: torch.ops.aten.convolution_backward(
                    dy, x, w, None, **conv, output_mask=[True, False, False]),
                "backward_weights": lambda: torch.ops.aten.convolution_backward(
                    dy, x, w, None, **conv, output_mask=[False, True, False]),
            }
            flop = 2.0 * BATCH * o * out_size * out_size * (c // groups) * 9
            for p, fn in passes.items():
                with torch.no_grad():
                    s = seconds_per_call(fn, args.seconds, args.repetitions)
                results.append({"name": "%s/%s" % (name, p), "threads": threads, "seconds": s, "flops": flop / s})
                print("%-40s %d thread(s) %8.1f GFLOP/s" % (results[-1]["name"], threads, flop / s / 1e9), flush=True)
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
                   "repetitions": args.repetitions, "seconds": args.seconds, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
