"""Runs the side-by-side comparison: the paper's network in cnnlite, PyTorch (fastest
configuration and as installed) and tiny-dnn, same batch and thread count, each measurement in
its own process, alternating the frameworks over several repeats (the order rotates every
repeat), then prints the medians and the ratios cnnlite/other for training images/s (batch 64),
inference images/s (batch 64 and 1,000) and peak resident memory of each of those processes.

    /usr/bin/python3 compare.py --build BUILD_DIR --data DATA_DIR [--repeats 5] [--seconds 3]
                                [--threads 2] [--only cnnlite,pytorch-fast,...] [--json OUT]
run.sh builds the drivers, writes the data and calls this; call it directly to rerun without
rebuilding. Standard library only (the PyTorch driver runs under /usr/bin/python3).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# glibc malloc settings that keep freed memory instead of returning it to the kernel (PyTorch
# otherwise pays page faults for its large temporaries on every step), and a single-threaded
# OpenBLAS so that its pool does not compete with PyTorch's OpenMP threads.
TORCH_FAST_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "4294967296",
    "MALLOC_TOP_PAD_": "268435456",
    "OPENBLAS_NUM_THREADS": "1",
}

MODES = [("train", 64), ("infer", 64), ("infer", 1000)]


def openblas_core_type():
    """OPENBLAS_CORETYPE for the runs that go through OpenBLAS (PyTorch's fastest configuration,
    cnnlite+openblas), or None to leave OpenBLAS's own choice. A value the machine sets is kept.
    Otherwise AVX-512 CPUs get SkylakeX: Debian's OpenBLAS 0.3.21 does not recognise newer Xeons
    and falls back to its SSE3 "Prescott" kernels, which run SGEMM ~6x slower."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    return "SkylakeX" if "avx512f" in flags else None


def frameworks(build, core_type):
    torch = ["/usr/bin/python3", os.path.join(HERE, "torch_driver.py")]
    blas = {"OPENBLAS_CORETYPE": core_type} if core_type else {}
    found = {
        "cnnlite": ([os.path.join(build, "cnnlite_driver")], {}),
        # Flushing denormals as cnnlite's training does (no measurable change for PyTorch here).
        "pytorch-fast": (torch + ["--flush-denormal"], {**TORCH_FAST_ENV, **blas}),
        "pytorch-installed": (torch, None),  # None: the environment without the tuning above
        "tiny-dnn": ([os.path.join(build, "tinydnn_driver")], {}),
        # Experimental build, not cnnlite's default: Eigen's products through OpenBLAS.
        "cnnlite+openblas": ([os.path.join(build, "cnnlite_driver_openblas")], blas),
    }
    return {k: v for k, v in found.items() if k.startswith("pytorch") or os.path.exists(v[0][0])}


def environment(extra):
    env = dict(os.environ)
    for key in TORCH_FAST_ENV:
        env.pop(key, None)
    env.update(extra or {})
    return env


def run_one(command, extra_env, data, mode, batch, threads, seconds):
    args = command + ["--data", data, "--mode", mode, "--batch", str(batch), "--threads", str(threads),
                      "--seconds", str(seconds)]
    out = subprocess.run(args, env=environment(extra_env), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{out.stderr}")
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="")
    p.add_argument("--json", default="")
    a = p.parse_args()

    core_type = openblas_core_type()
    fw = frameworks(a.build, core_type)
    names = [n for n in fw if not a.only or n in a.only.split(",")]
    unknown = set(a.only.split(",")) - set(fw) if a.only else set()
    if unknown:
        sys.exit(f"unknown or unbuilt framework(s): {', '.join(sorted(unknown))}; known: {', '.join(fw)}")
    results = {}  # (name, mode, batch) -> list of runs
    loads = [load_average()]
    if core_type:
        print(f"OPENBLAS_CORETYPE={core_type} for pytorch-fast and cnnlite+openblas (this OpenBLAS would "
              "pick its SSE3 kernels on this CPU); pytorch-installed keeps OpenBLAS's own choice")
    else:
        print(f"OPENBLAS_CORETYPE: {os.environ.get('OPENBLAS_CORETYPE') or 'OpenBLAS picks'} for every run")
    print(f"load average at start: {loads[0]:.2f}; {a.repeats} repeats, {a.threads} threads, "
          f">= {a.seconds:g} s timed per run", flush=True)
    for r in range(a.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for mode, batch in MODES:
            for name in order:
                command, extra = fw[name]
                run = run_one(command, extra, a.data, mode, batch, a.threads, a.seconds)
                results.setdefault((name, mode, batch), []).append(run)
                print(f"  repeat {r + 1}: {name:18s} {mode} {batch:5d}: {run['images_per_second']:9.0f} img/s, "
                      f"peak {run['peak_rss_mb']:7.0f} MB", flush=True)
        loads.append(load_average())

    def median(name, mode, batch, key):
        runs = results.get((name, mode, batch), [])
        return statistics.median(r[key] for r in runs) if runs else float("nan")

    print(f"\nload average: start {loads[0]:.2f}, after each repeat " + ", ".join(f"{l:.2f}" for l in loads[1:]))
    # The runs themselves keep `threads` cores busy, so a 1-minute average near that is expected.
    if max(loads) > a.threads + 0.75:
        print("WARNING: the machine was busy during the runs; these figures understate every framework.")
    columns = [("train", 64, "training img/s (batch 64)"), ("infer", 64, "inference img/s (batch 64)"),
               ("infer", 1000, "inference img/s (batch 1,000)")]
    print("\nMedians of %d runs, %d threads" % (a.repeats, a.threads))
    header = "| framework | " + " | ".join(c[2] for c in columns) + \
             " | peak MB train | peak MB infer 64 | peak MB infer 1,000 |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in names:
        cells = [f"{median(name, m, b, 'images_per_second'):,.0f}" for m, b, _ in columns]
        cells += [f"{median(name, m, b, 'peak_rss_mb'):,.0f}" for m, b, _ in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "cnnlite" in names:
        print("\nRatios cnnlite / other (speed: higher is better for cnnlite; memory: lower is better)")
        print("| other | " + " | ".join(c[2] for c in columns) + " | peak memory train | infer 64 | infer 1,000 |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            if name == "cnnlite":
                continue
            speed = [median("cnnlite", m, b, "images_per_second") / median(name, m, b, "images_per_second")
                     for m, b, _ in columns]
            memory = [median("cnnlite", m, b, "peak_rss_mb") / median(name, m, b, "peak_rss_mb") for m, b, _ in columns]
            print(f"| {name} | " + " | ".join(f"{x:.2f}x" for x in speed) + " | " +
                  " | ".join(f"{x:.2f}x" for x in memory) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "repeats": a.repeats, "load_averages": loads, "openblas_coretype": core_type,
                       "runs": [{"name": k[0], **run} for k, runs in results.items() for run in runs]}, f, indent=1)
        print(f"\nall runs: {a.json}")


if __name__ == "__main__":
    main()
