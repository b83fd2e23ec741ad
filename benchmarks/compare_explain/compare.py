"""Runs the explanation comparison: cnnlite's batched Grad-CAM against pytorch-grad-cam's
GradCAM, and cnnlite's Integrated Gradients against Captum's IntegratedGradients, on the same
weights (one cnnlite model file) and the same test images, for each thread count. Each
measurement is its own process; a repeat runs every configuration once per (threads, method)
and the order rotates between repeats. Prints medians of images/s and peak resident memory for
every configuration (batch sizes), the best configuration of each library and the ratios, and
first checks that both libraries compute the same maps (first 100 images).

    /usr/bin/python3 compare.py --build BUILD_DIR --model M.safetensors [--data DIR] [--repeats 5]
        [--seconds 3] [--threads 1,2] [--methods gradcam,ig] [--images 1000] [--ig-images 1000]
        [--steps 32] [--cnnlite-gradcam-batches 64,256,1000] [--torch-gradcam-batches 64,256,1000]
        [--frozen-batches 256] [--torch-gradcam-cl-batches 64] [--cnnlite-ig-batches 64,256]
        [--captum-ig-batches 8,32] [--captum-ig-cl-batches 32]
        [--peers-python PY] [--json OUT]

Interpreters: this script runs under /usr/bin/python3 (standard library only; the agreement
check runs numpy in the peers venv); cnnlite_explain_driver is C++; torch_explain_driver.py
runs under the peers venv's python (~/.cache/cnnlite/peers or $CNNLITE_PEERS_VENV).
run.sh builds the driver, trains the model file once and calls this.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_PYTHON = os.path.join(os.environ.get("CNNLITE_PEERS_VENV") or os.path.expanduser("~/.cache/cnnlite/peers"),
                            "bin", "python")
CLEARED_ENV = ["LD_PRELOAD", "MALLOC_CONF", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"]

AGREEMENT = r"""
import sys
import numpy as np
folder = sys.argv[1]
def minmax(m):  # pytorch-grad-cam's scaling: (m - min) / (max + 1e-7)
    m = m - m.min(axis=(1, 2), keepdims=True)
    return m / (1e-7 + m.max(axis=(1, 2), keepdims=True))
def relu_max(m):  # cnnlite's default post-processing: ReLU, divided by the max
    m = np.maximum(m, 0)
    return m / np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-30)
for method, scale_cnnlite, scale_peer in (("gradcam", minmax, lambda m: m), ("ig", lambda m: m, relu_max)):
    try:
        a, b = np.load(f"{folder}/cnnlite_{method}.npy"), np.load(f"{folder}/peer_{method}.npy")
    except FileNotFoundError:
        continue
    same = (np.load(f"{folder}/cnnlite_{method}.npy.predicted.npy") == np.load(f"{folder}/peer_{method}.npy.predicted.npy")).mean()
    d = np.abs(scale_cnnlite(a) - scale_peer(b))
    print(f"  {method:8s} {len(a)} images: same predicted class {same:.0%}; maps (both scaled as the peer scales "
          f"them) differ by at most {d.max():.2e}, on average {d.mean():.2e}")
"""


def run_driver(argv, threads, seconds):
    env = dict(os.environ)
    for key in CLEARED_ENV:
        env.pop(key, None)
    args = argv + ["--threads", str(threads), "--seconds", str(seconds)]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = "\n    ".join(out.stderr.strip().splitlines()[-6:])
        print(f"  FAILED ({out.returncode}): {' '.join(args)}\n    {tail}", flush=True)
        return None
    return json.loads(lines[-1])


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def ints(text):
    return [int(x) for x in text.split(",") if x]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--methods", default="gradcam,ig")
    p.add_argument("--images", type=int, default=1000, help="test images explained by Grad-CAM")
    p.add_argument("--ig-images", type=int, default=1000, help="test images explained by Integrated Gradients")
    p.add_argument("--steps", type=int, default=32, help="Integrated Gradients' steps (both libraries)")
    p.add_argument("--cnnlite-gradcam-batches", default="64,256,1000")
    p.add_argument("--torch-gradcam-batches", default="64,256,1000")
    p.add_argument("--frozen-batches", default="256", help="pytorch-grad-cam with frozen weights (see the driver)")
    p.add_argument("--torch-gradcam-cl-batches", default="64", help="pytorch-grad-cam with channels_last tensors")
    p.add_argument("--cnnlite-ig-batches", default="64,256")
    p.add_argument("--captum-ig-batches", default="8,32")
    p.add_argument("--captum-ig-cl-batches", default="32", help="Captum with channels_last tensors")
    p.add_argument("--peers-python", default=PEERS_PYTHON)
    p.add_argument("--json", default="")
    a = p.parse_args()
    thread_counts, methods = ints(a.threads), a.methods.split(",")

    cnnlite = [os.path.join(a.build, "cnnlite_explain_driver"), "--model", a.model, "--data", a.data]
    torch = [a.peers_python, os.path.join(HERE, "torch_explain_driver.py"), "--model", a.model, "--data", a.data]
    configs = {"gradcam": [], "ig": []}  # (library, label, argv)
    n_gc, n_ig = str(a.images), str(a.ig_images)
    for b in ints(a.cnnlite_gradcam_batches):
        configs["gradcam"].append(("cnnlite", f"batch {b}", cnnlite + ["--method", "gradcam", "--images", n_gc, "--batch", str(b)]))
    for b in ints(a.torch_gradcam_batches):
        configs["gradcam"].append(("pytorch-grad-cam", f"batch {b}",
                                   torch + ["--method", "gradcam", "--images", n_gc, "--batch", str(b)]))
    for b in ints(a.frozen_batches):
        configs["gradcam"].append(("pytorch-grad-cam", f"batch {b}, frozen weights",
                                   torch + ["--method", "gradcam", "--images", n_gc, "--batch", str(b), "--frozen"]))
    for b in ints(a.torch_gradcam_cl_batches):
        configs["gradcam"].append(("pytorch-grad-cam", f"batch {b}, channels_last",
                                   torch + ["--method", "gradcam", "--images", n_gc, "--batch", str(b), "--channels-last"]))
    steps = ["--steps", str(a.steps)]
    for b in ints(a.cnnlite_ig_batches):
        configs["ig"].append(("cnnlite", f"batch {b}", cnnlite + ["--method", "ig", "--images", n_ig, "--batch", str(b)] + steps))
    for b in ints(a.captum_ig_batches):
        configs["ig"].append(("captum", f"batch {b} ({b * a.steps} per pass)",
                              torch + ["--method", "ig", "--images", n_ig, "--batch", str(b)] + steps))
    for b in ints(a.captum_ig_cl_batches):
        configs["ig"].append(("captum", f"batch {b} ({b * a.steps} per pass), channels_last",
                              torch + ["--method", "ig", "--images", n_ig, "--batch", str(b), "--channels-last"] + steps))

    print("interpreters and programs:")
    print(f"  cnnlite                      C++ ({cnnlite[0]})")
    print(f"  pytorch-grad-cam, captum     {a.peers_python} {torch[1]}")
    print(f"model file: {a.model}; images from {a.data}")

    # Same work: the maps of the first 100 images, from each library's first configuration.
    tmp = tempfile.mkdtemp(prefix="compare_explain_")
    print("agreement check (first 100 test images, 2 threads):", flush=True)
    for method in methods:
        for library, out in (("cnnlite", "cnnlite"), (None, "peer")):
            lib, _, argv = next(c for c in configs[method] if (c[0] == "cnnlite") == (library == "cnnlite"))
            argv = list(argv)
            argv[argv.index("--images") + 1] = "100"
            run_driver(argv + ["--maps", os.path.join(tmp, f"{out}_{method}.npy")], 2, 0)
    check = subprocess.run([a.peers_python, "-c", AGREEMENT, tmp], capture_output=True, text=True)
    print(check.stdout.rstrip() or check.stderr.strip(), flush=True)

    loads = [load_average()]
    print(f"load average at start: {loads[0]:.2f}; {a.repeats} repeats, threads {a.threads}, "
          f">= {a.seconds:g} s timed per run (at least one pass over the images)", flush=True)
    results = {}  # (method, threads, library, label) -> runs
    for r in range(a.repeats):
        for threads in thread_counts:
            for method in methods:
                cs = configs[method]
                k = r % len(cs)
                for library, label, argv in cs[k:] + cs[:k]:
                    run = run_driver(argv, threads, a.seconds)
                    if run is None:
                        continue
                    results.setdefault((method, threads, library, label), []).append(run)
                    print(f"  repeat {r + 1}, {threads} thr: {method:8s} {library:17s} {label:28s} "
                          f"{run['images_per_second']:9.1f} img/s, peak {run['peak_rss_mb']:6.0f} MB", flush=True)
        loads.append(load_average())

    def med(runs, key):
        return statistics.median(x[key] for x in runs)

    print(f"\nload average: start {loads[0]:.2f}, after each repeat " + ", ".join(f"{x:.2f}" for x in loads[1:]))
    if max(loads) > max(thread_counts) + 0.75:
        print("WARNING: the machine was busy during the runs; these figures understate every library.")
    names = {"gradcam": "Grad-CAM", "ig": f"Integrated Gradients ({a.steps} steps, riemann_middle)"}
    counts = {"gradcam": a.images, "ig": a.ig_images}
    summary = []
    for method in methods:
        for threads in thread_counts:
            print(f"\n### {names[method]}, {counts[method]} images, {threads} thread{'s' if threads > 1 else ''}: "
                  f"medians of {a.repeats} runs\n")
            print("| library | configuration | images/s | peak MB | MB after import + data |")
            print("|---|---|---|---|---|")
            best = {}
            for library, label, _ in configs[method]:
                runs = results.get((method, threads, library, label))
                if not runs:
                    print(f"| {library} | {label} | failed | | |")
                    continue
                ips, peak = med(runs, "images_per_second"), med(runs, "peak_rss_mb")
                print(f"| {library} | {label} | {ips:,.1f} | {peak:,.0f} | {med(runs, 'rss_after_data_mb'):,.0f} |")
                if library not in best or ips > best[library][1]:
                    best[library] = (label, ips, peak, runs[0].get("version", ""))
            summary.append((method, threads, best))
    print("\n### Best configuration of each library\n")
    print("| method | threads | library | configuration | images/s | peak MB | cnnlite speed-up | cnnlite memory |")
    print("|---|---|---|---|---|---|---|---|")
    for method, threads, best in summary:
        c = best.get("cnnlite")
        for library, (label, ips, peak, version) in best.items():
            ratio = f"{c[1] / ips:.1f}x" if c and library != "cnnlite" else ""
            mem = f"{c[2] / peak:.2f}x" if c and library != "cnnlite" else ""
            print(f"| {names[method].split(' (')[0]} | {threads} | {library}{' (' + version + ')' if version else ''} | "
                  f"{label} | {ips:,.1f} | {peak:,.0f} | {ratio} | {mem} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": thread_counts, "repeats": a.repeats, "seconds": a.seconds, "load_averages": loads,
                       "runs": [{"library": k[2], "configuration": k[3], **run} for k, runs in results.items()
                                for run in runs]}, f, indent=1)
        print(f"\nall runs: {a.json}")


if __name__ == "__main__":
    main()
