#!/usr/bin/python3
"""Side-by-side UMAP of the 60,000 Fashion-MNIST training images (pixel / 255, 784 features):
cnnlite (benchmarks/compare_umap/umap_fashion.cpp) against umap-learn from the peers venv
(benchmarks/peers/setup.sh: umap-learn 0.5.12, numba 0.68, pynndescent 0.7), same machine, same
run, at each thread count, alternating the two programs over --repeats. Prints, per thread
count, the medians of fit time, peak memory, trustworthiness (k = 15, 5,000-point sample) and
the accuracy of a 10-NN classifier fit on the first 50,000 embedded points and tested on the
last 10,000 (both metrics computed here with scikit-learn, for both embeddings), and the ratios.

Both with the defaults: 15 neighbours, min_dist 0.1, 2-D, euclidean, 200 epochs (umap-learn
for more than 10,000 points). Threads are set explicitly: cnnlite --threads T; umap-learn
UMAP(n_jobs=T) with NUMBA_NUM_THREADS=T, and OMP/OPENBLAS/MKL_NUM_THREADS=T for both.
umap-learn's numba compilation is done first on a 5,000-point fit in the same process (above
the 4,096 points from which umap-learn uses pynndescent, as for the whole set) and is not
timed; its peak memory covers the whole process. TensorFlow, Keras and torch, which the venv holds
for the other comparisons and which `import umap` would load for its optional ParametricUMAP
(1.3 GB resident), are hidden from that process: umap-learn installed alone has none of them.

Runs under the peers venv's python (numpy, scikit-learn, umap-learn); started with another
interpreter it re-executes itself with that one (~/.cache/cnnlite/peers or $CNNLITE_PEERS_VENV,
or --python). Needs g++, libeigen3-dev, libspectra-dev, zlib1g-dev, dataset-fashion-mnist.

    bash benchmarks/peers/setup.sh          # the peers venv, once
    /usr/bin/python3 benchmarks/compare_umap/compare.py [--threads 1,2] [--repeats 3] [--limit N]
"""
import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
PEERS_PYTHON = os.path.join(os.environ.get("CNNLITE_PEERS_VENV") or os.path.expanduser("~/.cache/cnnlite/peers"),
                            "bin", "python")


def load(kind, limit=0):
    import numpy as np
    with gzip.open(os.path.join(DATA, f"{kind}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    with gzip.open(os.path.join(DATA, f"{kind}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return (x[:limit], y[:limit]) if limit else (x, y)


class _Hidden:
    """An import hook under which tensorflow, keras and torch are not installed."""
    NAMES = ("tensorflow", "keras", "tf_keras", "torch")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.NAMES:
            raise ImportError(f"{name} is hidden from umap-learn in this comparison")
        return None


def hide_deep_learning_frameworks():
    """`import umap` imports TensorFlow (for its optional ParametricUMAP) when it is installed,
    and with it Keras and torch: 1.3 GB resident in the peers venv, which holds them for the
    other comparisons. umap-learn installed on its own does not have them, so they are hidden
    from the child; its peak memory is then umap-learn's (with numba, pynndescent, scikit-learn)."""
    sys.meta_path.insert(0, _Hidden())


def run_umap_learn(out_path, threads, limit):
    """Child process: fit umap-learn (numba compiled first on a small fit, not timed)."""
    hide_deep_learning_frameworks()
    import numpy as np
    import umap
    x, _ = load("train", limit)
    # One-off numba compilation, not timed: 5,000 points, so that umap-learn takes the same
    # paths as for the whole set (below 4,096 points it finds neighbours exactly, without
    # pynndescent, whose compilation would then land in the timed fit).
    umap.UMAP(n_neighbors=15, min_dist=0.1, n_jobs=threads).fit_transform(x[:5000])
    start = time.perf_counter()
    emb = umap.UMAP(n_neighbors=15, min_dist=0.1, n_jobs=threads).fit_transform(x)
    seconds = time.perf_counter() - start
    np.save(out_path, emb.astype(np.float32))
    import numba
    import pynndescent
    print(f"FIT_SECONDS {seconds:.3f}")
    print(f"VERSIONS umap-learn {umap.__version__}, numba {numba.__version__}, pynndescent {pynndescent.__version__}; "
          f"numba threads {numba.get_num_threads()}")


def timed(cmd, env):
    """Runs cmd under /usr/bin/time -v; returns (stdout, peak RSS in MB)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return p.stdout, rss_kb / 1024.0


def metrics(x, labels, emb):
    import numpy as np
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import KNeighborsClassifier
    idx = np.random.default_rng(0).choice(len(x), min(5000, len(x)), replace=False)
    t = trustworthiness(x[idx], emb[idx], n_neighbors=15)
    test = min(10000, len(x) // 6)  # the last 10,000 of 60,000; a sixth of a --limit'ed set
    acc = KNeighborsClassifier(n_neighbors=10).fit(emb[:-test], labels[:-test]).score(emb[-test:], labels[-test:])
    return t, acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="only the first N training images (quick checks)")
    ap.add_argument("--python", default=PEERS_PYTHON, help="the interpreter with umap-learn and scikit-learn")
    ap.add_argument("--json", default="")
    ap.add_argument("--umap-learn-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    if args.umap_learn_child:
        run_umap_learn(args.umap_learn_child, thread_counts[0], args.limit)
        return
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.dirname(os.path.dirname(args.python))):
        if not os.path.exists(args.python):
            sys.exit(f"{args.python} not found: run bash benchmarks/peers/setup.sh (or give --python)")
        print(f"re-running under {args.python}", flush=True)
        os.execv(args.python, [args.python, os.path.abspath(__file__)] + sys.argv[1:])

    tmp = tempfile.mkdtemp(prefix="compare_umap_")
    driver = os.path.join(tmp, "umap_fashion")
    build = ["g++", "-std=c++17", "-O3", "-march=native", "-fopenmp", f"-I{ROOT}/include", "-I/usr/include/eigen3",
             os.path.join(HERE, "umap_fashion.cpp"), "-o", driver, "-lz"]
    print("build:", " ".join(build), flush=True)
    subprocess.run(build, check=True)
    print(f"interpreters and programs: cnnlite {driver} (C++); umap-learn and the metrics {sys.executable}", flush=True)

    x, labels = load("train", args.limit)
    n = len(x)
    loads = [os.getloadavg()[0]]
    results = {}  # (name, threads) -> list of (seconds, rss, trust, acc)
    versions = ""
    limit = ["--limit", str(args.limit)] if args.limit else []
    for r in range(args.repeats):
        for threads in thread_counts:
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
                       OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            order = ["cnnlite", "umap-learn"] if r % 2 == 0 else ["umap-learn", "cnnlite"]
            for name in order:
                if name == "cnnlite":
                    csv = os.path.join(tmp, "cnnlite.csv")
                    out, rss = timed([driver, "--data", DATA, "--threads", str(threads), "--out", csv, "--recall", "1000"] + limit,
                                     env)
                    print("  " + out.strip().replace("\n", "\n  "), flush=True)
                    seconds = float(re.search(r"total ([0-9.]+) s", out).group(1))
                    import numpy as np
                    emb = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.float32)
                else:
                    npy = os.path.join(tmp, "umap_learn.npy")
                    out, rss = timed([sys.executable, os.path.abspath(__file__), "--umap-learn-child", npy,
                                      "--threads", str(threads)] + limit, env)
                    seconds = float(re.search(r"FIT_SECONDS ([0-9.]+)", out).group(1))
                    versions = re.search(r"VERSIONS (.*);", out).group(1)
                    numba_threads = re.search(r"numba threads (\d+)", out).group(1)
                    print(f"  umap-learn: numba threads {numba_threads}", flush=True)
                    import numpy as np
                    emb = np.load(npy)
                t, acc = metrics(x, labels, emb)
                results.setdefault((name, threads), []).append((seconds, rss, t, acc))
                print(f"  repeat {r + 1}, {threads} thr: {name:10s} fit {seconds:7.1f} s, peak {rss:6.0f} MB, "
                      f"trust@15 {t:.4f}, 10-NN acc {acc:.4f}", flush=True)
            loads.append(os.getloadavg()[0])

    print(f"\numap-learn: {versions}")
    print(f"load average: start {loads[0]:.2f}, after each run pair " + ", ".join(f"{l:.2f}" for l in loads[1:]))
    if max(loads) > max(thread_counts) + 0.75:
        print("WARNING: the machine was busy during the runs; these timings are not clean measurements.")
    for threads in thread_counts:
        med = {k[0]: [statistics.median(v[i] for v in runs) for i in range(4)]
               for k, runs in results.items() if k[1] == threads}
        print(f"\nFashion-MNIST train ({n:,} x 784), {threads} thread{'s' if threads > 1 else ''}, "
              f"medians of {args.repeats} runs")
        print(f"{'':14}{'fit s':>9}{'peak MB':>10}{'trust@15':>10}{'10-NN acc':>11}")
        for name in ("umap-learn", "cnnlite"):
            s, m, t, acc = med[name]
            print(f"{name:14}{s:9.1f}{m:10.0f}{t:10.4f}{acc:11.4f}")
        (cs, cm, ct, ca), (us, um, ut, ua) = med["cnnlite"], med["umap-learn"]
        print(f"{'cnnlite/umap-learn':18} time {cs / us:.2f}x, memory {cm / um:.2f}x, "
              f"trustworthiness {ct - ut:+.4f}, 10-NN accuracy {ca - ua:+.4f}")
    print("(umap-learn's numba compilation is excluded from its fit time; its peak memory covers the whole process)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": n, "threads": thread_counts, "repeats": args.repeats, "load_averages": loads,
                       "umap_learn": versions,
                       "runs": [{"name": k[0], "threads": k[1], "fit_seconds": v[0], "peak_rss_mb": v[1],
                                 "trustworthiness": v[2], "knn10_accuracy": v[3]} for k, runs in results.items()
                                for v in runs]}, f, indent=1)


if __name__ == "__main__":
    main()
