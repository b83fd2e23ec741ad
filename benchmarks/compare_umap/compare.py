#!/usr/bin/python3
"""Side-by-side UMAP of the 60,000 Fashion-MNIST training images (pixel / 255, 784 features):
cnnlite (benchmarks/compare_umap/umap_fashion.cpp) against Debian's umap-learn, same machine,
same run. Prints fit time, peak memory, trustworthiness (k = 15, 5,000-point sample) and the
accuracy of a 10-NN classifier fit on the first 50,000 embedded points and tested on the last
10,000, both metrics computed here with scikit-learn for both embeddings, and the ratios.

Needs: apt-get install umap-learn python3-sklearn libspectra-dev zlib1g-dev
Run from the repository root:  /usr/bin/python3 benchmarks/compare_umap/compare.py [--threads 2]
"""
import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = "/usr/share/datasets/fashion-mnist"


def load(kind):
    with gzip.open(os.path.join(DATA, f"{kind}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    with gzip.open(os.path.join(DATA, f"{kind}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def run_umap_learn(out_path):
    """Child process: fit umap-learn (numba compiled first on a small fit, not timed)."""
    import umap
    x, _ = load("train")
    umap.UMAP(n_neighbors=15, min_dist=0.1).fit_transform(x[:2000])  # one-off numba compilation
    start = time.perf_counter()
    emb = umap.UMAP(n_neighbors=15, min_dist=0.1).fit_transform(x)
    seconds = time.perf_counter() - start
    np.save(out_path, emb.astype(np.float32))
    print(f"FIT_SECONDS {seconds:.3f}")


def timed(cmd, env):
    """Runs cmd under /usr/bin/time -v; returns (stdout, peak RSS in MB)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return p.stdout, rss_kb / 1024.0


def metrics(x, labels, emb):
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import KNeighborsClassifier
    idx = np.random.default_rng(0).choice(len(x), 5000, replace=False)
    t = trustworthiness(x[idx], emb[idx], n_neighbors=15)
    acc = KNeighborsClassifier(n_neighbors=10).fit(emb[:50000], labels[:50000]).score(emb[50000:], labels[50000:])
    return t, acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--umap-learn-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.umap_learn_child:
        run_umap_learn(args.umap_learn_child)
        return

    tmp = tempfile.mkdtemp(prefix="compare_umap_")
    driver = os.path.join(tmp, "umap_fashion")
    build = ["g++", "-std=c++17", "-O3", "-march=native", "-fopenmp", f"-I{ROOT}/include", "-I/usr/include/eigen3",
             os.path.join(HERE, "umap_fashion.cpp"), "-o", driver, "-lz"]
    print("build:", " ".join(build), flush=True)
    subprocess.run(build, check=True)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    cn_csv = os.path.join(tmp, "cnnlite.csv")
    out, cn_rss = timed([driver, "--threads", str(args.threads), "--out", cn_csv, "--recall", "1000"], env)
    print(out.strip(), flush=True)
    cn_seconds = float(re.search(r"total ([0-9.]+) s", out).group(1))

    ul_npy = os.path.join(tmp, "umap_learn.npy")
    out, ul_rss = timed([sys.executable, os.path.abspath(__file__), "--umap-learn-child", ul_npy], env)
    ul_seconds = float(re.search(r"FIT_SECONDS ([0-9.]+)", out).group(1))

    x, labels = load("train")
    cn_emb = np.loadtxt(cn_csv, delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.float32)
    ul_emb = np.load(ul_npy)
    cn_t, cn_acc = metrics(x, labels, cn_emb)
    ul_t, ul_acc = metrics(x, labels, ul_emb)

    print(f"\nFashion-MNIST train (60,000 x 784), {args.threads} threads")
    print(f"{'':14}{'fit s':>9}{'peak MB':>10}{'trust@15':>10}{'10-NN acc':>11}")
    print(f"{'umap-learn':14}{ul_seconds:9.1f}{ul_rss:10.0f}{ul_t:10.4f}{ul_acc:11.4f}")
    print(f"{'cnnlite':14}{cn_seconds:9.1f}{cn_rss:10.0f}{cn_t:10.4f}{cn_acc:11.4f}")
    print(f"{'cnnlite/umap-learn':18} time {cn_seconds / ul_seconds:.2f}x, memory {cn_rss / ul_rss:.2f}x, "
          f"trustworthiness {cn_t - ul_t:+.4f}, 10-NN accuracy {cn_acc - ul_acc:+.4f}")
    print("(umap-learn's numba compilation is excluded from its fit time; its peak memory covers the whole process)")


if __name__ == "__main__":
    main()
