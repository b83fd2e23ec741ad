#!/usr/bin/env python3
"""cnnlite's ONNX export (save_onnx, io/onnx_export.hpp) run by the real ONNX tools: onnx's
checker with full shape inference and onnxruntime, against cnnlite's own predictions.

Runs with the peers-ci venv's interpreter (onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6; made by
`bash benchmarks/peers/setup.sh --subset ci`):

    ~/.cache/cnnlite/peers-ci/bin/python tests/python/test_onnx_export.py --build DIR

DIR is a CMake build configured with -DCNNLITE_WITH_ONNX=ON and holding tests/cnnlite_onnx_export
(default: build-mpi/, which the CI's mpi stage configures so, else build/). Exit status 0 when
every check passes, 1 otherwise.

Models (made by `cnnlite_onnx_export make`, seeded; --model adds model files of your own):
  paper    fashion_mnist's paper network (Conv2D relu, MaxPool2D, Dropout, Flatten, Dense relu,
           Dense softmax), untrained (Keras initialisation from the seed);
  resnet8  fashion_mnist --arch resnet8 (Conv2D without bias, BatchNormalization in PyTorch's
           convention, ReLU, residual Add, GlobalAveragePooling2D, Dense softmax), untrained,
           its BatchNorm running statistics taken from training-mode forward passes over the
           images and gamma and beta drawn from the seed (none is the trivial 1 or 0);
  layers   every layer and activation the exporter writes (a depthwise dilated and a grouped
           strided Conv2D, GELU exact and tanh, SiLU, ELU,
           LeakyReLU, softplus, sigmoid, tanh, AveragePooling2D 'same', padded MaxPool2D,
           GlobalMax/AveragePooling2D, Concatenate, 3-way Add, BatchNormalization in both
           conventions and without beta, SpatialDropout2D, Dropout, Softmax layer).

For each model, loaded as Model<float> and as Model<double> (`export --dtype`), the program
writes the ONNX file and cnnlite's probabilities (Model::predict) for the first --images test
images (default 1,000; Debian's /usr/share/datasets/fashion-mnist when present, else
data/fixtures; pixels / 255). Checks:
  checker    onnx.checker.check_model(path, full_check=True): the checker and strict shape
             inference; opset 17, input "input" [batch, 1, 28, 28], output "output" [batch, 10].
  names      every layer of the model file's architecture is a node of that name, except Dropout
             and SpatialDropout2D, which are absent; the model file's tensors are the
             initialisers of the same names and shapes (BatchNorm's running statistics included).
  runtime    onnxruntime (CPUExecutionProvider, intra_op_num_threads = --threads, default
             optimisations) on the same images: max |p_ort - p_cnnlite| <= 1e-5.
  control    the same with the first convolution's kernel scaled by 1.01 in the ONNX file must
             differ by more than 1e-5 (the comparison can fail).
  program    `fashion_mnist export --model FILE --to OUT.onnx` (DIR/examples/fashion_mnist, when
             built) writes the same bytes as the library's float export of the same model file.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from idx_file import read_idx  # the test set's images and labels

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "test_onnx_export"
TOLERANCE = 1e-5
DEBIAN_DATA = "/usr/share/datasets/fashion-mnist"
MODELS = ("paper", "resnet8", "layers")
REMOVED = {"Dropout", "SpatialDropout2D"}


def run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{NAME}: command failed (exit status {result.returncode}): {' '.join(cmd)}\n{result.stdout}")
    return result.stdout


def safetensors_header(path):
    """(tensors {name: (shape, dtype)}, architecture) of a cnnlite model file, read by hand (8-byte
    length, JSON header)."""
    with open(path, "rb") as f:
        length, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    meta = header.pop("__metadata__", {})
    return {k: (tuple(v["shape"]), v["dtype"]) for k, v in header.items()}, json.loads(meta["architecture"])


class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0

    def expect(self, ok, message):
        self.count += 1
        if not ok:
            self.failures.append(message)
            print("MISMATCH", message, file=sys.stderr)
        return ok


def dims(value_info):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def session(model_bytes, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def predict(sess, images, batch=250):
    return np.concatenate([sess.run(["output"], {"input": images[i:i + batch]})[0]
                           for i in range(0, len(images), batch)])


def check_structure(checks, label, model_path, onnx_path, images_shape):
    """The checker, the names and the initialisers; returns the loaded ModelProto."""
    try:
        onnx.checker.check_model(onnx_path, full_check=True)
        checks.expect(True, "")
    except Exception as e:  # noqa: BLE001 (any checker or inference error is a failure)
        checks.expect(False, f"{label}: onnx.checker.check_model(full_check=True) failed: {e}")
    proto = onnx.load(onnx_path)
    checks.expect([(o.domain, o.version) for o in proto.opset_import] == [("", 17)],
                  f"{label}: opset imports {proto.opset_import}")
    graph = proto.graph
    checks.expect([i.name for i in graph.input] == ["input"] and dims(graph.input[0]) == ["batch", *images_shape[1:]],
                  f"{label}: graph input {[(i.name, dims(i)) for i in graph.input]}")
    checks.expect([o.name for o in graph.output] == ["output"] and dims(graph.output[0]) == ["batch", 10],
                  f"{label}: graph output {[(o.name, dims(o)) for o in graph.output]}")

    tensors, architecture = safetensors_header(model_path)
    nodes = {n.name: n for n in graph.node}
    for layer in architecture["layers"]:
        if layer["type"] in REMOVED:
            checks.expect(layer["name"] not in nodes and not any(n.op_type == "Dropout" for n in graph.node),
                          f"{label}: {layer['type']} '{layer['name']}' is in the ONNX graph")
        else:
            checks.expect(layer["name"] in nodes, f"{label}: no node named after layer '{layer['name']}' ({layer['type']})")
    initializers = {t.name: tuple(t.dims) for t in graph.initializer}
    for name, (shape, dtype) in tensors.items():
        if dtype == "I64":
            # Counters (BatchNorm's num_batches_tracked) are training state: not in an inference graph.
            checks.expect(name.endswith(".num_batches_tracked") and name not in initializers,
                          f"{label}: int64 tensor {name} of the model file is unexpected or was exported")
            continue
        checks.expect(initializers.get(name) == shape,
                      f"{label}: tensor {name} {shape} is initializer {initializers.get(name)} in the ONNX file")
    return proto


def scaled_first_conv(proto):
    """The model with the first Conv's kernel times 1.01 (the control)."""
    control = onnx.ModelProto()
    control.CopyFrom(proto)
    conv = next(n for n in control.graph.node if n.op_type == "Conv")
    for t in control.graph.initializer:
        if t.name == conv.input[1]:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(1.01), t.name))
    return control.SerializeToString()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", help="CMake build with CNNLITE_WITH_ONNX=ON (default: build-mpi/, else build/)")
    parser.add_argument("--images", type=int, default=1000, help="test images compared (default 1000)")
    parser.add_argument("--data", help=f"folder of the IDX files (default: {DEBIAN_DATA} if present, else data/fixtures)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime's intra_op_num_threads and cnnlite's "
                                                                "OMP_NUM_THREADS (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the models made (default 1)")
    parser.add_argument("--model", action="append", default=[], help="also check this cnnlite model file (repeatable)")
    parser.add_argument("--keep", help="keep the files in this folder")
    parser.add_argument("--summary", help="also write the one-line summary to this file")
    args = parser.parse_args()
    start = time.time()

    builds = [args.build] if args.build else [os.path.join(REPO, "build-mpi"), os.path.join(REPO, "build")]
    tool = next((os.path.join(b, "tests", "cnnlite_onnx_export") for b in builds
                 if os.access(os.path.join(b, "tests", "cnnlite_onnx_export"), os.X_OK)), None)
    if tool is None:
        sys.exit(f"{NAME}: tests/cnnlite_onnx_export not found in {' or '.join(builds)}; configure a build with "
                 "-DCNNLITE_WITH_ONNX=ON and build the target cnnlite_onnx_export")
    program = next((p for p in (os.path.join(b, "examples", "fashion_mnist", "fashion_mnist") for b in builds)
                    if os.access(p, os.X_OK)), None)
    data = args.data or (DEBIAN_DATA if os.path.exists(os.path.join(DEBIAN_DATA, "t10k-images-idx3-ubyte.gz"))
                         else os.path.join(REPO, "data", "fixtures"))
    images = (read_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"), args.images).astype(np.float32) / 255.0)
    images = images.reshape(len(images), 1, 28, 28)

    work = args.keep or tempfile.mkdtemp(prefix="cnnlite-onnx-")
    os.makedirs(work, exist_ok=True)
    images_path = os.path.join(work, "images.npy")
    np.save(images_path, images)
    models = []
    for name in MODELS:
        path = os.path.join(work, f"{name}.safetensors")
        print(run([tool, "make", name, path, images_path, "--seed", str(args.seed)], args.threads).strip())
        models.append((name, path))
    models += [(os.path.basename(m), m) for m in args.model]

    checks = Checks()
    results = []
    for name, model_path in models:
        for dtype in ("float", "double"):
            label = f"{name}/{dtype}"
            onnx_path = os.path.join(work, f"{name}-{dtype}.onnx")
            probs_path = os.path.join(work, f"{name}-{dtype}-probabilities.npy")
            run([tool, "export", model_path, onnx_path, images_path, probs_path, "--dtype", dtype], args.threads)
            proto = check_structure(checks, label, model_path, onnx_path, images.shape)
            ours = np.load(probs_path).astype(np.float64)
            theirs = predict(session(proto.SerializeToString(), args.threads), images).astype(np.float64)
            if not checks.expect(theirs.shape == ours.shape, f"{label}: onnxruntime gave {theirs.shape}, cnnlite {ours.shape}"):
                continue
            difference = float(np.max(np.abs(theirs - ours)))
            checks.expect(difference <= TOLERANCE, f"{label}: max |p_ort - p_cnnlite| = {difference:.3g} > {TOLERANCE:g}")
            control = predict(session(scaled_first_conv(proto), args.threads), images).astype(np.float64)
            control_difference = float(np.max(np.abs(control - ours)))
            checks.expect(control_difference > TOLERANCE,
                          f"{label}: control (first Conv kernel x 1.01) differs by only {control_difference:.3g}")
            agree = int(np.sum(np.argmax(theirs, 1) == np.argmax(ours, 1)))
            print(f"{label}: max |p_ort - p_cnnlite| = {difference:.2e} over {len(images)} images "
                  f"(argmax agrees on {agree}); control {control_difference:.2e}")
            results.append((label, difference))
            if program and dtype == "float":
                exported = os.path.join(work, f"{name}-program.onnx")
                run([program, "export", "--model", model_path, "--to", exported, "--out",
                     os.path.join(work, "unused-out"), "--quiet"], args.threads)
                with open(exported, "rb") as a, open(onnx_path, "rb") as b:
                    checks.expect(a.read() == b.read(), f"{label}: `fashion_mnist export` wrote other bytes than save_onnx")

    worst = {}
    for label, difference in results:
        model = label.split("/")[0]
        worst[model] = max(worst.get(model, 0.0), difference)
    summary = (f"ONNX export (onnx {version('onnx')}, onnxruntime {version('onnxruntime')}, {len(images)} images of "
               f"{os.path.relpath(data, REPO) if data.startswith(REPO) else data}): max |difference| "
               + ", ".join(f"{m} {d:.1e}" for m, d in worst.items())
               + ("; fashion_mnist export identical" if program else "; fashion_mnist export not built")
               + f"; {checks.count} checks, "
               f"{len(checks.failures)} failed")
    print(f"{summary} -- {'FAILED' if checks.failures else 'passed'} in {time.time() - start:.1f} s")
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(summary + "\n")
    if not args.keep:
        shutil.rmtree(work)
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
