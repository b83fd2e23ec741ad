"""Runs the side-by-side comparison: the paper's network in cnnlite, PyTorch 2.x (its fastest
configuration found on this machine, and as installed), Keras 3 on TensorFlow 2.21, tf.keras
2.14 (when its venv exists) and tiny-dnn; same batches, same thread count, set explicitly in
every framework. Each measurement is its own process; a repeat runs every framework once per
(threads, mode) and the order rotates between repeats; the tables give medians over the repeats
of training images/s (batch 64), inference images/s (batch 64 and 1,000) and peak resident
memory, one table per thread count, and the ratios cnnlite/other.

    /usr/bin/python3 compare.py --build BUILD_DIR --data DATA_DIR [--repeats 5] [--seconds 3]
        [--threads 1,2] [--only cnnlite,pytorch-fastest,...] [--extras debian-torch,cnnlite+openblas]
        [--fastest fastest.json] [--peers-python PY] [--keras214-python PY] [--busy N] [--json OUT]
        [--model FILE] [--modes train:64,infer:64,infer:1000] [--torch-variants channels-last,compile+tcmalloc]

--model FILE compares on the network of a cnnlite model file instead of the paper's (e.g. ResNet-8:
`fashion_mnist train --arch resnet8 --epochs 1 --limit 128 --out D`, then D/model.safetensors):
cnnlite and PyTorch only (torch_driver.py rebuilds the graph with compare_recipe/cnnlite_graph.py),
both trained with SGD and Nesterov momentum, and by default in the modes train:128, infer:256
and infer:1. "pytorch-fastest" is left out there (fastest.json was swept on the paper's network);
--torch-variants adds one PyTorch column per named variant of variants.py ("+" combines them).

--busy N measures a machine that is not idle: N CPU-bound processes (`yes > /dev/null`) run
during every measurement; this script starts them before the first run and stops them after the
last (also when it fails or is interrupted). With --busy 1 on two cores, one core is taken.

Interpreters: this script and prepare_data.py run under /usr/bin/python3 (standard library
only); torch_driver.py and keras_driver.py run under the peers venv's python
(benchmarks/peers/setup.sh; ~/.cache/cnnlite/peers or $CNNLITE_PEERS_VENV), keras_driver.py
for "keras-2.14" under the keras214 venv's (~/.cache/cnnlite/peers-keras214 or
$CNNLITE_PEERS_KERAS214_VENV), and the optional Debian PyTorch 1.13 under /usr/bin/python3.
"pytorch-fastest", "keras" and "keras-2.14" run, for each thread count and mode, the variant
that fastest.json names (written by sweep.py; variants.py says what each one is).
run.sh builds the drivers, writes the data and calls this; call it directly to rerun without
rebuilding.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import variants  # noqa: E402

MODES = [("train", 64), ("infer", 64), ("infer", 1000)]
DEBIAN_PYTHON = "/usr/bin/python3"


def venv_python(variable, default):
    folder = os.environ.get(variable) or os.path.expanduser(default)
    return os.path.join(folder, "bin", "python")


PEERS_PYTHON = venv_python("CNNLITE_PEERS_VENV", "~/.cache/cnnlite/peers")
KERAS214_PYTHON = venv_python("CNNLITE_PEERS_KERAS214_VENV", "~/.cache/cnnlite/peers-keras214")


def imports(python, module):
    if not os.path.exists(python):
        return False
    r = subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return r.returncode == 0


def openblas_core_type():
    """OPENBLAS_CORETYPE for the runs that go through Debian's OpenBLAS (the Debian PyTorch 1.13
    extra, cnnlite+openblas), or None to leave OpenBLAS's own choice. A value the machine sets
    is kept. Otherwise AVX-512 CPUs get SkylakeX: Debian's OpenBLAS 0.3.21 does not recognise
    newer CPUs and may fall back to its SSE3 "Prescott" kernels, which run SGEMM ~6x slower."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    return "SkylakeX" if "avx512f" in flags else None


class Framework:
    """One column of the comparison: how to start its driver for (threads, mode, batch)."""

    def __init__(self, name, interpreter, command, choose=None, extra=False):
        self.name, self.interpreter, self.command, self.extra = name, interpreter, command, extra
        self.choose = choose  # (threads, key) -> Variant, for the peers with variants

    def start(self, threads, mode, batch):
        if self.choose:
            v = self.choose(threads, variants.mode_key(mode, batch))
            if v is None:
                return None, {}, ""
            return self.command + v.argv() + ["--variant", v.name], v.env, v.name
        argv = self.command(threads) if callable(self.command) else self.command
        return argv, getattr(self, "env", {}), ""


def load_fastest(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def chooser(framework, fastest, notes):
    table = fastest.get(framework, {})

    def choose(threads, key):
        c = table.get(str(threads), {}).get(key)
        if c:
            return variants.Variant(c["variant"], c["flags"], c["env"])
        notes.add(f"{framework}: no choice in fastest.json for {threads} threads, {key}: ran it as installed")
        return variants.default_variant(framework, key)
    return choose


def named_variant(name):
    """A chooser for one PyTorch variant of variants.py by name ('+' combines several); a mode the
    variant does not apply to is skipped (None)."""
    parts = []
    for part in name.split("+"):
        v = next((v for v in variants.TORCH if v.name == part), None)
        if v is None:
            sys.exit(f"--torch-variants: unknown variant {part!r}; known: {', '.join(v.name for v in variants.TORCH)}")
        parts.append(v)
    chosen = variants.combine(parts) if len(parts) > 1 else parts[0]
    modes = set.intersection(*(set(v.modes) for v in parts))

    def choose(threads, key):
        applies = ("train" if key == "train" else "infer64") in modes
        return chosen if applies else None
    return choose


def frameworks(a, fastest, notes):
    b = a.build
    torch = [a.peers_python, os.path.join(HERE, "torch_driver.py")]
    keras = os.path.join(HERE, "keras_driver.py")
    found = []
    found.append(Framework("cnnlite", "C++ (" + os.path.join(b, "cnnlite_driver") + ")", [os.path.join(b, "cnnlite_driver")]))
    if imports(a.peers_python, "torch"):
        if not a.model:
            found.append(Framework("pytorch-fastest", a.peers_python, torch, chooser("pytorch", fastest, notes)))
        found.append(Framework("pytorch-installed", a.peers_python, torch,
                               lambda t, k: variants.default_variant("pytorch", k)))
        for name in (v for v in a.torch_variants.split(",") if v):
            found.append(Framework("pytorch-" + name, a.peers_python, torch, named_variant(name)))
    else:
        notes.add(f"PyTorch 2.x skipped: {a.peers_python} cannot import torch (bash benchmarks/peers/setup.sh)")
    if a.model:
        notes.add("--model: cnnlite and PyTorch only (the other peers cannot rebuild a cnnlite model file); "
                  "pytorch-fastest left out (fastest.json was swept on the paper's network)")
        return found
    if imports(a.peers_python, "tensorflow"):
        found.append(Framework("keras", a.peers_python, [a.peers_python, keras], chooser("keras", fastest, notes)))
    else:
        notes.add(f"Keras 3 skipped: {a.peers_python} cannot import tensorflow")
    if imports(a.keras214_python, "tensorflow"):
        found.append(Framework("keras-2.14", a.keras214_python, [a.keras214_python, keras],
                               chooser("keras-2.14", fastest, notes)))
    else:
        notes.add(f"tf.keras 2.14 skipped: no {a.keras214_python} (bash benchmarks/peers/setup.sh --subset keras214)")

    # tiny-dnn's threads are std::thread::hardware_concurrency() workers and cannot be set: one
    # thread is its CNN_SINGLE_THREAD build (tinydnn_driver_1thread), otherwise the default one.
    def tinydnn(threads):
        if threads == 1:
            return [os.path.join(b, "tinydnn_driver_1thread")]
        if threads != os.cpu_count():
            notes.add(f"tiny-dnn runs std::thread::hardware_concurrency() = {os.cpu_count()} workers, not {threads}")
        return [os.path.join(b, "tinydnn_driver")]
    if os.path.exists(os.path.join(b, "tinydnn_driver")):
        found.append(Framework("tiny-dnn", "C++ (" + os.path.join(b, "tinydnn_driver[_1thread]") + ")", tinydnn))

    core = openblas_core_type()
    blas = {"OPENBLAS_CORETYPE": core} if core else {}
    if "debian-torch" in a.extras:
        if imports(DEBIAN_PYTHON, "torch"):
            f = Framework("pytorch-1.13-debian", DEBIAN_PYTHON,
                          [DEBIAN_PYTHON, os.path.join(HERE, "torch_driver.py"), "--flush-denormal"], extra=True)
            f.env = {**variants.GLIBC_TUNED, "OPENBLAS_NUM_THREADS": "1", **blas}
            found.append(f)
        else:
            notes.add("pytorch-1.13-debian skipped: /usr/bin/python3 cannot import torch (apt-get install python3-torch)")
    if "cnnlite+openblas" in a.extras:
        path = os.path.join(b, "cnnlite_driver_openblas")
        if os.path.exists(path):
            f = Framework("cnnlite+openblas", "C++ (" + path + ")", [path], extra=True)
            f.env = blas
            found.append(f)
        else:
            notes.add("cnnlite+openblas skipped: not built (apt-get install libopenblas0-pthread, rebuild)")
    return found


def run_driver(argv, extra_env, data, mode, batch, threads, seconds, model=""):
    """Runs one driver process; returns its JSON line as a dict, or None (and prints why)."""
    args = argv + ["--data", data, "--mode", mode, "--batch", str(batch), "--threads", str(threads),
                   "--seconds", str(seconds)] + (["--model", model] if model else [])
    env = dict(os.environ)
    for key in variants.CLEARED_ENV:
        env.pop(key, None)
    env.update(extra_env or {})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = "\n    ".join(out.stderr.strip().splitlines()[-6:])
        print(f"  FAILED ({out.returncode}): {' '.join(args)}\n    {tail}", flush=True)
        return None
    return json.loads(lines[-1])


class LoadGenerator:
    """N `yes > /dev/null` processes for the duration of a with-block."""

    def __init__(self, n):
        self.n, self.processes = n, []

    def __enter__(self):
        for _ in range(self.n):
            self.processes.append(subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc):
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            proc.wait()
        return False


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def version_of(run):
    if not run:
        return ""
    if "torch" in run:
        return "torch " + run["torch"]
    if "tensorflow" in run:
        return f"TF {run['tensorflow']}, Keras {run['keras']}"
    return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--only", default="", help="comma-separated frameworks (default: all found)")
    p.add_argument("--extras", default="", help="comma-separated optional columns: debian-torch, cnnlite+openblas")
    p.add_argument("--fastest", default=os.path.join(HERE, "fastest.json"))
    p.add_argument("--peers-python", default=PEERS_PYTHON)
    p.add_argument("--keras214-python", default=KERAS214_PYTHON)
    p.add_argument("--busy", type=int, default=0, help="CPU-bound load processes to run during the measurements")
    p.add_argument("--model", default="", help="a cnnlite model file: compare on its network (cnnlite and PyTorch)")
    p.add_argument("--modes", default="", help="comma-separated mode:batch, e.g. train:64,infer:1")
    p.add_argument("--torch-variants", default="", help="comma-separated variants.py names, '+' to combine")
    p.add_argument("--json", default="")
    a = p.parse_args()
    if a.busy < 0:
        sys.exit("--busy: the number of load processes cannot be negative")
    if a.model and not os.path.isfile(a.model):
        sys.exit(f"--model: no file {a.model}")
    global MODES
    if a.modes:
        try:
            MODES = [(m, int(b)) for m, b in (item.split(":") for item in a.modes.split(","))]
        except ValueError:
            sys.exit(f"--modes: expected mode:batch items such as train:64,infer:1, got {a.modes!r}")
        if any(m not in ("train", "infer") or b < 1 for m, b in MODES):
            sys.exit(f"--modes: modes are train or infer with a batch of at least 1, got {a.modes!r}")
    elif a.model:
        MODES = [("train", 128), ("infer", 256), ("infer", 1)]
    a.extras = [e for e in a.extras.split(",") if e]
    thread_counts = [int(t) for t in a.threads.split(",")]

    notes = set()
    fastest = load_fastest(a.fastest)
    fw = frameworks(a, fastest, notes)
    names = [f.name for f in fw]
    if a.only:
        wanted = a.only.split(",")
        unknown = set(wanted) - set(names)
        if unknown:
            sys.exit(f"unknown or unavailable framework(s): {', '.join(sorted(unknown))}; available: {', '.join(names)}")
        fw = [f for f in fw if f.name in wanted]
    print("interpreters and programs:")
    for f in fw:
        print(f"  {f.name:20s} {f.interpreter}")
    for name, column in (("pytorch", "pytorch-fastest"), ("keras", "keras"), ("keras-2.14", "keras-2.14")):
        m = fastest.get(name, {}).get("measured")
        if m and any(f.name == column for f in fw):
            print(f"{name} variants chosen by {a.fastest} (sweep.py, {m['date']}, {m['version']}, {m['repeats']} "
                  f"repeats of {m['seconds']:g} s, load {m['load_averages'][0]} at its start)")
    loads = [load_average()]
    print(f"load average at start: {loads[0]:.2f}; {a.repeats} repeats, threads {a.threads}, "
          f">= {a.seconds:g} s timed per run", flush=True)
    if a.busy:
        print(f"load generator: {a.busy} x `yes > /dev/null` running during every measurement", flush=True)
    with LoadGenerator(a.busy):
        results, used = measure(a, fw, thread_counts, loads)
    report(a, fw, thread_counts, loads, results, used, notes)


def measure(a, fw, thread_counts, loads):
    """Every framework once per (repeat, threads, mode), the order rotating between repeats."""
    results = {}  # (name, threads, mode, batch) -> list of runs
    used = {}     # (name, threads, mode, batch) -> variant name
    for r in range(a.repeats):
        k = r % len(fw)
        order = fw[k:] + fw[:k]
        for threads in thread_counts:
            for mode, batch in MODES:
                for f in order:
                    argv, env, variant = f.start(threads, mode, batch)
                    if argv is None:  # a variant that does not apply to this mode
                        continue
                    run = run_driver(argv, env, a.data, mode, batch, threads, a.seconds, a.model)
                    used[(f.name, threads, mode, batch)] = variant
                    if run is None:
                        continue
                    results.setdefault((f.name, threads, mode, batch), []).append(run)
                    print(f"  repeat {r + 1}, {threads} thr: {f.name:20s} {mode} {batch:5d}: "
                          f"{run['images_per_second']:9.0f} img/s, peak {run['peak_rss_mb']:6.0f} MB"
                          + (f"  [{variant}]" if variant else ""), flush=True)
        loads.append(load_average())
    return results, used


def report(a, fw, thread_counts, loads, results, used, notes):
    """The tables: medians per framework and thread count, and cnnlite's ratios to the others."""
    def median(name, threads, mode, batch, key):
        runs = results.get((name, threads, mode, batch), [])
        return statistics.median(r[key] for r in runs) if runs else float("nan")

    print(f"\nload average: start {loads[0]:.2f}, after each repeat " + ", ".join(f"{l:.2f}" for l in loads[1:]))
    if a.busy:
        print(f"every run shared the machine with {a.busy} CPU-bound process(es) (--busy)")
    elif max(loads) > max(thread_counts) + 0.75:
        print("WARNING: the machine was busy during the runs; these figures understate every framework.")
    columns = [(m, b, f"{m} img/s ({b:,})") for m, b in MODES]
    for threads in thread_counts:
        busy = f", {a.busy} core(s) busy with another process" if a.busy else ""
        print(f"\n### {threads} thread{'s' if threads > 1 else ''}{busy}: medians of {a.repeats} runs\n")
        header = "| framework | " + " | ".join(c[2] for c in columns) + \
                 "".join(f" | peak MB {m} {b:,}" for m, b, _ in columns) + " | version |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for f in fw:
            cells = [f"{median(f.name, threads, m, b, 'images_per_second'):,.0f}" for m, b, _ in columns]
            cells += [f"{median(f.name, threads, m, b, 'peak_rss_mb'):,.0f}" for m, b, _ in columns]
            first = next((runs[0] for (n, t, _, _), runs in results.items() if n == f.name and t == threads), None)
            label = f.name + (" (extra)" if f.extra else "")
            print(f"| {label} | " + " | ".join(cells) + f" | {version_of(first)} |")
        chosen = [(f.name, [used.get((f.name, threads, m, b), "") for m, b, _ in columns]) for f in fw if f.choose]
        if chosen:
            print("\nvariants run (" + " / ".join(f"{m} {b:,}" for m, b, _ in columns) + "): " +
                  "; ".join(f"{n}: {' / '.join(v)}" for n, v in chosen))
        if any(f.name == "cnnlite" for f in fw):
            print("\nratios cnnlite / other (speed: above 1 = cnnlite faster; memory: below 1 = cnnlite smaller)\n")
            names = [f"{m} {b:,}" for m, b, _ in columns]
            print("| other | " + " | ".join(names) + " | " + " | ".join("peak memory " + n for n in names) + " |")
            print("|" + "---|" * (1 + 2 * len(names)))
            for f in fw:
                if f.name == "cnnlite":
                    continue
                speed = [median("cnnlite", threads, m, b, "images_per_second") /
                         median(f.name, threads, m, b, "images_per_second") for m, b, _ in columns]
                memory = [median("cnnlite", threads, m, b, "peak_rss_mb") / median(f.name, threads, m, b, "peak_rss_mb")
                          for m, b, _ in columns]
                print(f"| {f.name} | " + " | ".join(f"{x:.2f}x" for x in speed) + " | " +
                      " | ".join(f"{x:.2f}x" for x in memory) + " |")
    for n in sorted(notes):
        print("note:", n)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": thread_counts, "repeats": a.repeats, "seconds": a.seconds, "busy": a.busy,
                       "load_averages": loads,
                       "interpreters": {f.name: f.interpreter for f in fw}, "notes": sorted(notes),
                       "runs": [{"name": k[0], **run} for k, runs in results.items() for run in runs]}, f, indent=1)
        print(f"\nall runs: {a.json}")


if __name__ == "__main__":
    main()
