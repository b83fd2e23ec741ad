"""Finds the fastest configuration of each Python peer on this machine, for every thread count
and mode of the comparison, by measurement, and records it in fastest.json for compare.py.

    /usr/bin/python3 sweep.py --build BUILD_DIR --data DATA_DIR [--frameworks pytorch,keras,keras-2.14]
        [--threads 1,2] [--repeats 3] [--seconds 2] [--write fastest.json] [--margin 0.03]

Stage 1 runs every variant of variants.py that applies (one change from the framework's
defaults each), alternating: a repeat runs every variant once per (threads, mode) and the
order rotates. Stage 2 builds one combined candidate per (threads, mode): the fastest base
(eager / torch.compile / TorchScript, or train_on_batch / tf.function / XLA) plus every toggle
that beat the defaults by more than --margin (the best of each group: one allocator, one chunk
size), measures it against the best single variant (alternating, same repeats), and keeps the
faster. The tables printed (medians, img/s) are the record of what was tried; fastest.json
keeps them with the choice, the date, the load and the versions. Only the thread counts and
frameworks swept are replaced in an existing file. Interpreters: as compare.py.
"""
import argparse
import datetime
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402
import variants  # noqa: E402

KEYS = [("train", 64), ("infer", 64), ("infer", 1000)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--frameworks", default="pytorch,keras,keras-2.14")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--modes", default="train,infer64,infer1000")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--margin", type=float, default=0.03, help="a toggle joins the combination when this much faster")
    p.add_argument("--variants", default="", help="only these variant names (and the defaults)")
    p.add_argument("--write", default=os.path.join(HERE, "fastest.json"))
    p.add_argument("--peers-python", default=compare.PEERS_PYTHON)
    p.add_argument("--keras214-python", default=compare.KERAS214_PYTHON)
    a = p.parse_args()
    thread_counts = [int(t) for t in a.threads.split(",")]
    keys = [(m, b) for m, b in KEYS if variants.mode_key(m, b) in a.modes.split(",")]
    commands = {"pytorch": [a.peers_python, os.path.join(HERE, "torch_driver.py")],
                "keras": [a.peers_python, os.path.join(HERE, "keras_driver.py")],
                "keras-2.14": [a.keras214_python, os.path.join(HERE, "keras_driver.py")]}
    frameworks = []
    for fw in a.frameworks.split(","):
        module = "torch" if fw == "pytorch" else "tensorflow"
        if compare.imports(commands[fw][0], module):
            frameworks.append(fw)
            print(f"{fw}: {commands[fw][0]} {os.path.basename(commands[fw][1])}")
        else:
            print(f"{fw}: skipped, {commands[fw][0]} cannot import {module}")
    only = set(a.variants.split(",")) if a.variants else None

    def candidates(fw, threads, key):
        default = variants.default_variant(fw, key)
        return [v for v in variants.table(fw) if v.applies(key, threads) and (only is None or v.name in only or v is default)]

    medians, runs_of, versions = {}, {}, {}
    loads = [compare.load_average()]

    def measure(jobs, label):
        """jobs: list of (fw, threads, mode, batch, Variant); alternating repeats."""
        groups = {}
        for j in jobs:
            groups.setdefault(j[:4], []).append(j[4])
        for r in range(a.repeats):
            for (fw, threads, mode, batch), vs in groups.items():
                k = r % len(vs)
                for v in vs[k:] + vs[:k]:
                    run = compare.run_driver(commands[fw] + v.argv() + ["--variant", v.name], v.env, a.data, mode, batch,
                                             threads, a.seconds)
                    key = (fw, threads, variants.mode_key(mode, batch), v.name)
                    if run:
                        runs_of.setdefault(key, []).append(run["images_per_second"])
                        versions[fw] = compare.version_of(run)
                        print(f"  {label} {r + 1}/{a.repeats} {fw:10s} {threads} thr {mode} {batch:5d} {v.name:34s} "
                              f"{run['images_per_second']:9.0f} img/s  peak {run['peak_rss_mb']:5.0f} MB", flush=True)
            loads.append(compare.load_average())
        for key, xs in runs_of.items():
            medians[key] = statistics.median(xs)

    print(f"load average at start: {loads[0]:.2f}; {a.repeats} repeats, >= {a.seconds:g} s per run", flush=True)
    jobs = [(fw, t, m, b, v) for fw in frameworks for t in thread_counts for m, b in keys
            for v in candidates(fw, t, variants.mode_key(m, b))]
    print(f"stage 1: {len(jobs)} variants x {a.repeats} repeats", flush=True)
    measure(jobs, "stage 1")

    # Stage 2: the fastest base plus the toggles that helped.
    combined, jobs = {}, []
    for fw in frameworks:
        for t in thread_counts:
            for m, b in keys:
                key = variants.mode_key(m, b)
                cands = candidates(fw, t, key)
                got = {v.name: medians.get((fw, t, key, v.name)) for v in cands}
                ref = got.get(variants.default_variant(fw, key).name)
                if not ref:
                    continue
                bases = [v for v in cands if v.kind == "base" and got[v.name]]
                best_base = max(bases, key=lambda v: got[v.name])
                best_of_group = {}
                for v in cands:
                    if v.kind == "toggle" and got[v.name] and got[v.name] > ref * (1 + a.margin):
                        if v.group not in best_of_group or got[v.name] > got[best_of_group[v.group].name]:
                            best_of_group[v.group] = v
                if not best_of_group:
                    continue
                c = variants.combine([best_base] + list(best_of_group.values()))
                if c.name in got:
                    continue
                best_single = max((v for v in cands if got[v.name]), key=lambda v: got[v.name])
                combined[(fw, t, key)] = c
                jobs += [(fw, t, m, b, c), (fw, t, m, b, best_single)]
    if jobs:
        print(f"stage 2: {len(jobs) // 2} combined candidates, each against the best single variant", flush=True)
        measure(jobs, "stage 2")

    # The choice and the record.
    out = compare.load_fastest(a.write)
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    for fw in frameworks:
        table = out.setdefault(fw, {})
        table["measured"] = {"date": date, "repeats": a.repeats, "seconds": a.seconds, "version": versions.get(fw, ""),
                             "load_averages": [round(x, 2) for x in loads], "cpu": cpu_model()}
        names = []
        for v in variants.table(fw):
            names.append(v.name)
        names += sorted({c.name for (f, _, _), c in combined.items() if f == fw})
        print(f"\n### {fw} ({versions.get(fw, '')}): medians of {a.repeats} runs, images/s; * = chosen\n")
        cols = [(t, variants.mode_key(m, b)) for t in thread_counts for m, b in keys]
        print("| variant | " + " | ".join(f"{t} thr {k}" for t, k in cols) + " |")
        print("|---|" + "---|" * len(cols))
        chosen = {}
        for t, k in cols:
            best = max(((n, medians[(fw, t, k, n)]) for n in names if (fw, t, k, n) in medians),
                       key=lambda x: x[1], default=None)
            if best:
                chosen[(t, k)] = best
        for n in names:
            cells = []
            for t, k in cols:
                x = medians.get((fw, t, k, n))
                cells.append("-" if x is None else f"{x:,.0f}" + (" *" if chosen.get((t, k), ("",))[0] == n else ""))
            if any(c != "-" for c in cells):
                print(f"| {n} | " + " | ".join(cells) + " |")
        tried = table.setdefault("tried", {})
        for (t, k), (n, x) in chosen.items():
            v = next((v for v in variants.table(fw) if v.name == n), None) or combined[(fw, t, k)]
            ref = medians.get((fw, t, k, variants.default_variant(fw, k).name))
            table.setdefault(str(t), {})[k] = {**v.as_json(), "images_per_second": round(x, 1),
                                               "vs_default": round(x / ref, 3) if ref else None, "date": date}
            tried.setdefault(str(t), {})[k] = {n2: round(medians[(fw, t, k, n2)], 1) for n2 in names
                                               if (fw, t, k, n2) in medians}
    for fw in frameworks:
        print(f"\n{fw} variants:")
        for v in variants.table(fw):
            print(f"  {v.name:22s} {v.about}" + ("" if v.available() else f"  (not available: {v.needs} missing)"))
    print(f"\nload average: start {loads[0]:.2f}, after each repeat " + ", ".join(f"{x:.2f}" for x in loads[1:]))
    with open(a.write + ".tmp", "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(a.write + ".tmp", a.write)
    print(f"choices written to {a.write}")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
