#!/usr/bin/python3
"""The roofline of the modern model's 3x3 convolutions, as a Markdown table.

Runs bench_kernels on the ceilings (FP32 FMA peak, DRAM triad and copy) and on ResNet-8's 3x3
convolutions (cnnlite and, when the binary has it, oneDNN), with repetitions, and writes per
thread count: each pass's GFLOP/s, its compulsory bytes and arithmetic intensity, its fraction
of the FMA peak and of the DRAM bandwidth, the roofline's attainable rate min(peak, intensity x
bandwidth), oneDNN's figures with the cnnlite/oneDNN speed ratio and, when given, PyTorch's
(roofline_torch.py, run in the peers' venv after bench_kernels). Figures are the medians
of the repetitions; the FMA peak is the one bench_kernels measured at its start (the
denominator of its peak_frac counters).

    /usr/bin/python3 benchmarks/roofline.py --binary build-bench/benchmarks/bench_kernels
    /usr/bin/python3 benchmarks/roofline.py --json run.json      # a table from an earlier run
    /usr/bin/python3 benchmarks/roofline.py --binary build-bench/benchmarks/bench_kernels \
        --torch-python ~/.cache/cnnlite/peers/bin/python          # with the PyTorch column

Standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys

FILTER = "ceiling/(fma_peak|triad_DRAM|copy_DRAM)|conv3x3/"
PASSES = ("forward", "backward_data", "backward_weights")


def run_benchmark(binary, repetitions, min_time, interleave, out):
    command = [binary, "--benchmark_filter=" + FILTER, "--benchmark_repetitions=%d" % repetitions,
               "--benchmark_report_aggregates_only=true", "--benchmark_out=" + out,
               "--benchmark_out_format=json"]
    if interleave:
        # Repetitions of all benchmarks in random order: cnnlite and oneDNN then meet the same
        # mix of quiet and busy moments, which keeps their ratio fair on a shared machine.
        command.append("--benchmark_enable_random_interleaving=true")
    if min_time:
        command.append("--benchmark_min_time=%g" % min_time)
    print("running: " + " ".join(command), file=sys.stderr)
    # bench_kernels' own console table goes to our stderr; the JSON file is what we read.
    subprocess.run(command, check=True, stdout=sys.stderr)
    return command


def medians(report):
    """{(name without /threads:N/real_time, threads): benchmark entry} for the median aggregates
    (or the single runs, without repetitions)."""
    out = {}
    for b in report["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            continue
        m = re.match(r"(.*)/threads:(\d+)(/real_time)?$", b.get("run_name", b["name"]))
        if m:
            out[(m.group(1), int(m.group(2)))] = b
    return out


def machine():
    model, family, number = "?", "?", "?"
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "Model name":
                model = value
            elif key == "CPU family":
                family = value
            elif key == "Model":
                number = value
    except (OSError, subprocess.CalledProcessError):
        pass
    return "%s (CPU family %s, model %s), %d logical CPUs" % (model, family, number, os.cpu_count() or 0)


def fmt(value, digits=1):
    return "-" if value is None else "%.*f" % (digits, value)


def table(results, context, threads, torch_results):
    peak = float(context.get("fma_peak_threads_%d" % threads, "nan"))
    triad = results.get(("ceiling/triad_DRAM", threads))
    copy = results.get(("ceiling/copy_DRAM", threads))
    fma = results.get(("ceiling/fma_peak", threads))
    bandwidth = triad["bandwidth"] if triad else None
    lines = ["#### %d thread%s" % (threads, "s" if threads > 1 else ""), ""]
    lines.append("FMA peak %.0f GFLOP/s (best burst at start; the team's wall-clock rate in the run: %s GFLOP/s); "
                 "DRAM triad %s GB/s, copy %s GB/s; ridge point %s FLOP/byte."
                 % (peak / 1e9, fmt(fma["flops"] / 1e9 if fma else None, 0),
                    fmt(bandwidth / 1e9 if bandwidth else None), fmt(copy["bandwidth"] / 1e9 if copy else None),
                    fmt(peak / bandwidth if bandwidth else None)))
    lines.append("")
    lines.append("| convolution | pass | cnnlite GFLOP/s | MB moved | FLOP/byte | of FMA peak | of DRAM bandwidth "
                 "| roofline bound | of bound | oneDNN GFLOP/s | oneDNN of peak | cnnlite / oneDNN "
                 "| PyTorch GFLOP/s | PyTorch of peak | cnnlite / PyTorch |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    names = []  # in registration order (the run's order is random with interleaving)
    for (name, t), b in sorted(results.items(), key=lambda item: item[1].get("family_index", 0)):
        m = re.match(r"conv3x3/(.*)/(%s)$" % "|".join(PASSES), name)
        if t == threads and m and m.group(1) not in names:
            names.append(m.group(1))
    for conv in names:
        for p in PASSES:
            ours = results.get(("conv3x3/%s/%s" % (conv, p), threads))
            theirs = results.get(("onednn/conv3x3/%s/%s" % (conv, p), threads))
            if not ours:
                continue
            bound = min(peak, ours["intensity"] * bandwidth) if bandwidth else None
            torch = torch_results.get(("%s/%s" % (conv, p), threads)) if torch_results is not None else None
            if torch_results is None:
                torch_cells = "not measured | - | -"
            elif torch is None:
                torch_cells = "- | - | -"
            else:
                torch_cells = "%s | %s%% | %s" % (fmt(torch / 1e9), fmt(100 * torch / peak, 0),
                                                   fmt(ours["flops"] / torch, 2))
            lines.append("| %s | %s | %s | %s | %s | %s%% | %s%% | %s | %s%% | %s | %s | %s | %s |" % (
                conv, p.replace("_", "-"), fmt(ours["flops"] / 1e9), fmt(ours["bytes"] / 1e6, 2),
                fmt(ours["intensity"]), fmt(100 * ours["flops"] / peak, 0),
                fmt(100 * ours["bandwidth"] / bandwidth if bandwidth else None, 0),
                "compute" if bound == peak else "memory", fmt(100 * ours["flops"] / bound if bound else None, 0),
                fmt(theirs["flops"] / 1e9 if theirs else None),
                (fmt(100 * theirs["flops"] / peak, 0) + "%") if theirs else "-",
                fmt(ours["flops"] / theirs["flops"] if theirs else None, 2), torch_cells))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", help="bench_kernels to run")
    parser.add_argument("--json", help="read this Google Benchmark JSON instead of running (or, with --binary, "
                                       "where to write the run's JSON)")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0, help="--benchmark_min_time (default: Google Benchmark's)")
    parser.add_argument("--no-interleave", action="store_true",
                        help="run each benchmark's repetitions back to back instead of in random order")
    parser.add_argument("--torch", help="PyTorch's figures: the JSON of roofline_torch.py (or, with "
                                        "--torch-python, where to write it)")
    parser.add_argument("--torch-python", help="after bench_kernels, run roofline_torch.py with this Python "
                                               "(the peers' venv, e.g. ~/.cache/cnnlite/peers/bin/python)")
    parser.add_argument("--out", help="write the Markdown here (default: standard output)")
    args = parser.parse_args()
    if not args.binary and not args.json:
        parser.error("need --binary or --json")

    load_before = os.getloadavg()
    command = None
    if args.binary:
        path = args.json or "bench_kernels_roofline.json"
        command = run_benchmark(args.binary, args.repetitions, args.min_time, not args.no_interleave, path)
        args.json = path
    torch_command = None
    if args.torch_python:
        args.torch = args.torch or os.path.splitext(args.json)[0] + "_torch.json"
        torch_command = [args.torch_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "roofline_torch.py"),
                         "--out", args.torch, "--repetitions", str(args.repetitions)]
        print("running: " + " ".join(torch_command), file=sys.stderr)
        subprocess.run(torch_command, check=True, stdout=sys.stderr)
    torch_results, torch_info = None, None
    if args.torch:
        with open(args.torch) as f:
            torch_report = json.load(f)
        torch_results = {(r["name"], r["threads"]): r["flops"] for r in torch_report["results"]}
        torch_info = "PyTorch %s (oneDNN inside: %s), NCHW as installed, medians of %d repetitions of at least %g s, " \
                     "run after bench_kernels in its own process" % (
                         torch_report["torch"], "yes" if torch_report["mkldnn"] else "no",
                         torch_report["repetitions"], torch_report["seconds"])
    with open(args.json) as f:
        report = json.load(f)
    results = medians(report)
    context = report.get("context", {})

    lines = []
    if command:
        lines += ["Command: `%s`" % " ".join(["/usr/bin/python3", "benchmarks/roofline.py"] + sys.argv[1:]),
                  "(runs `%s`)." % " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(command)), ""]
        load_after = os.getloadavg()
        lines += ["Machine: %s. 1-minute load average %.2f before the run, %.2f after%s." % (
            machine(), load_before[0], load_after[0],
            " (other work was running: the 2-thread figures are the most affected)"
            if max(load_before[0], load_after[0]) > 1.0 else ""), ""]
    lines += ["FMA peak kernel: %s; oneDNN: %s (reorders into its layouts done before timing, not counted)." % (
        context.get("fma_isa", "?"), context.get("onednn", "not built in")), ""]
    lines += ["PyTorch: %s." % (torch_info or "not measured (see --torch-python)"), ""]
    lines += ["Bytes are compulsory traffic (each tensor a pass reads or writes, once, fp32); FLOP are "
              "2 N O P C kh kw for every pass, padding taps included. Medians of %s repetitions." % (
                  args.repetitions if command else "the run's"), ""]
    for threads in (1, 2):
        if any(t == threads for (_, t) in results):
            lines += table(results, context, threads, torch_results) + [""]
    text = "\n".join(lines)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
