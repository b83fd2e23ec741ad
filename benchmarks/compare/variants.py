"""The configurations tried for the Python peers of the comparison, by name: command-line
options of torch_driver.py / keras_driver.py and environment variables. sweep.py measures
them and writes the fastest per (threads, mode, batch) into fastest.json, which compare.py
runs as "pytorch-fastest", "keras" and "keras-2.14". Standard library only.

Each variant is one change from the framework's defaults ("installed" for PyTorch,
"train_on_batch"/"predict_on_batch" for Keras). kind:
  base    a way of running the model (eager, torch.compile, TorchScript, tf.function, XLA);
          sweep.py's combined candidate starts from the fastest base
  toggle  a setting added on top (allocator, denormals, memory format, oneDNN, chunking);
          toggles of the same group exclude each other
modes: which of train, infer (batch 64) and infer (batch 1,000) the variant applies to.
"""
import os

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"            # Debian: libjemalloc2
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"    # Debian: libtcmalloc-minimal4

# glibc malloc settings that keep freed memory instead of returning it to the kernel (PyTorch
# otherwise pays page faults for its large temporaries on every step).
GLIBC_TUNED = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "4294967296",
               "MALLOC_TOP_PAD_": "268435456"}
# The jemalloc settings PyTorch's CPU performance guide suggests.
JEMALLOC_CONF = "oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"

# Environment variables the runners clear before applying a variant's own, so that a variant
# never inherits another's tuning from the caller's shell.
CLEARED_ENV = list(GLIBC_TUNED) + ["LD_PRELOAD", "MALLOC_CONF", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS",
                                   "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                   "TF_NUM_INTEROP_THREADS"]

ALL_MODES = ("train", "infer64", "infer1000")
INFER = ("infer64", "infer1000")


def mode_key(mode, batch):
    return f"{mode}{batch}" if mode == "infer" else mode


class Variant:
    def __init__(self, name, flags=None, env=None, modes=ALL_MODES, kind="toggle", group="", needs="", about="",
                 min_threads=1):
        self.name, self.flags, self.env, self.min_threads = name, dict(flags or {}), dict(env or {}), min_threads
        self.modes, self.kind, self.group, self.needs, self.about = tuple(modes), kind, group or name, needs, about

    def available(self):
        return not self.needs or os.path.exists(self.needs)

    def applies(self, key, threads):
        return key in self.modes and threads >= self.min_threads and self.available()

    def argv(self):
        out = []
        for k, v in self.flags.items():
            out += [f"--{k}"] if v is True else [f"--{k}", str(v)]
        return out

    def as_json(self):
        return {"variant": self.name, "flags": self.flags, "env": self.env}


TORCH = [
    Variant("installed", kind="base", about="PyTorch as installed: eval() + inference_mode(), foreach Adam; threads set"),
    Variant("compile", {"compile": "default"}, kind="base",
            about="torch.compile(model), Inductor CPU backend (C++/OpenMP); compiled in the warm-up"),
    Variant("compile-max-autotune", {"compile": "max-autotune"}, kind="base",
            about="torch.compile(mode='max-autotune'): also benchmarks GEMM templates at compile time"),
    Variant("compile+optimizer", {"compile": "default", "compile-optimizer": True, "adam": "fused"}, modes=["train"],
            kind="base", about="torch.compile of the model and of the (fused) Adam step"),
    Variant("compile-freeze", {"compile": "default", "freeze": True, "grad-mode": "no_grad"}, modes=INFER, kind="base",
            about="torch.compile with Inductor freezing (weights folded, prepacked for oneDNN), under no_grad"),
    Variant("compile-freeze-cpp", {"compile": "default", "freeze": True, "grad-mode": "no_grad", "cpp-wrapper": True},
            modes=INFER, kind="base", about="as compile-freeze, with Inductor's C++ wrapper (less Python per call)"),
    Variant("jit-freeze", {"jit-freeze": True}, modes=INFER, kind="base",
            about="torch.jit.trace + torch.jit.freeze (TorchScript)"),
    Variant("glibc-malloc", env=GLIBC_TUNED, group="allocator",
            about="glibc malloc keeps freed memory (MALLOC_MMAP_THRESHOLD_/TRIM_THRESHOLD_/TOP_PAD_)"),
    Variant("jemalloc", env={"LD_PRELOAD": JEMALLOC, "MALLOC_CONF": JEMALLOC_CONF}, group="allocator", needs=JEMALLOC,
            about="LD_PRELOAD jemalloc with the settings of PyTorch's CPU tuning guide"),
    Variant("tcmalloc", env={"LD_PRELOAD": TCMALLOC}, group="allocator", needs=TCMALLOC, about="LD_PRELOAD tcmalloc"),
    Variant("flush-denormal", {"flush-denormal": True}, about="torch.set_flush_denormal(True)"),
    Variant("channels-last", {"channels-last": True}, about="model and input in channels_last memory format"),
    Variant("mkldnn-off", {"mkldnn": "off"}, about="torch.backends.mkldnn.enabled = False"),
    Variant("fused-adam", {"adam": "fused"}, modes=["train"], group="adam", about="Adam(fused=True)"),
    Variant("no-grad", {"grad-mode": "no_grad"}, modes=INFER, group="grad-mode",
            about="torch.no_grad() instead of inference_mode()"),
    Variant("chunk64", {"chunk": 64}, modes=["infer1000"], group="chunk", about="batch of 1,000 run in slices of 64"),
    Variant("chunk256", {"chunk": 256}, modes=["infer1000"], group="chunk", about="batch of 1,000 run in slices of 256"),
]

KERAS = [
    Variant("train_on_batch", modes=["train"], kind="base",
            about="model.compile() + model.train_on_batch(): Keras' own compiled train function, jit_compile default"),
    Variant("train_on_batch-xla", {"jit": "on"}, modes=["train"], kind="base",
            about="model.compile(jit_compile=True) + train_on_batch: the step compiled by XLA"),
    Variant("tf-function", {"train-step": "function"}, modes=["train"], kind="base",
            about="tf.function of GradientTape + optimizer.apply_gradients"),
    Variant("tf-function-xla", {"train-step": "function", "jit": "on"}, modes=["train"], kind="base",
            about="the same tf.function with jit_compile=True"),
    Variant("predict_on_batch", modes=INFER, kind="base", about="model.predict_on_batch(x)"),
    Variant("call-function", {"infer": "function"}, modes=INFER, kind="base",
            about="tf.function of model(x, training=False)"),
    Variant("call-function-xla", {"infer": "function", "jit": "on"}, modes=INFER, kind="base",
            about="the same tf.function with jit_compile=True"),
    Variant("onednn-off", env={"TF_ENABLE_ONEDNN_OPTS": "0"}, about="TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's Eigen kernels)"),
    Variant("inter-op-1", {"inter-op": 1}, min_threads=2, about="inter-op threads 1 instead of the thread count"),
    Variant("chunk64", {"chunk": 64}, modes=["infer1000"], group="chunk", about="batch of 1,000 run in slices of 64"),
    Variant("chunk256", {"chunk": 256}, modes=["infer1000"], group="chunk", about="batch of 1,000 run in slices of 256"),
]

def table(framework):
    return TORCH if framework == "pytorch" else KERAS


def default_variant(framework, key):
    """What the framework does as installed; compare.py's choice when fastest.json has none."""
    if framework == "pytorch":
        return TORCH[0]
    return KERAS[0] if key == "train" else next(v for v in KERAS if v.name == "predict_on_batch")


def combine(variants):
    """One variant made of several: flags and environment merged (later ones win)."""
    flags, env = {}, {}
    for v in variants:
        flags.update(v.flags)
        env.update(v.env)
    named = [v.name for v in variants if v.flags or v.env] or [variants[0].name]  # defaults add nothing
    return Variant("+".join(named), flags, env, kind="combined")
