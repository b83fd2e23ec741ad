#!/usr/bin/env python3
"""Parity of cnnlite's Grad-CAM, HiResCAM and LayerCAM with pytorch-grad-cam at the last residual
block of the resnet8 network (Conv2D without bias, BatchNormalization, ReLU, Add), on the same
weights.

Runs with the peers-ci venv's interpreter (torch 2.15.0, grad-cam 1.5.7, numpy 2.4.6; made by
`bash benchmarks/peers/setup.sh --subset ci`):

    ~/.cache/cnnlite/peers-ci/bin/python tests/python/test_explain_parity_graph.py [--build build]

It needs build/tests/cnnlite_explain_maps and, unless --model is given, the example program
build/examples/fashion_mnist/fashion_mnist, which trains resnet8 on the committed fixture
(`train --arch resnet8 --val 500 --limit 1500 --epochs 1 --batch-size 32`, a few seconds).
Exit status 0 when every check passes, 1 otherwise.

The torch side is the model file's own graph, rebuilt from its "architecture" metadata by
benchmarks/compare_recipe/cnnlite_graph.py (the module torch_recipe.py trains and checks with),
weights loaded by cnnlite's tensor names, in eval mode. Every cnnlite ReLU layer is an nn.ReLU
module there under the layer's name, so pytorch-grad-cam hooks the explained layer's output as
cnnlite's CamOptions::layer selects it. The layer is the one fashion_mnist explains: the input
of GlobalAveragePooling2D, i.e. the last block's final ReLU (re_lu_6, [128, 7, 7]).

What is compared, for the first --images test images of data/fixtures, explained for the class
cnnlite predicts and for the true label on the softmax probability, and for the predicted class
on the logit (RUNS below); conventions as in test_explain_parity.py, whose helpers this reuses:

  probabilities  cnnlite's softmax output and softmax(Graph(x)): |difference| <= 1e-5.
  batchnorm      every BatchNorm2d module is in eval mode before and after the peer runs, its
                 running statistics and num_batches_tracked are the file's bit for bit (the
                 count, a 0-d I64 tensor, as the safetensors package reads it), and the same
                 network with BatchNorm in training mode (batch statistics) fails the
                 probability check.
  gradcam/raw    pytorch_grad_cam.GradCAM, target layer = the ReLU module, target callable
                 softmax(logits)[c]; its map as get_cam_image returns it, at the layer's 7x7,
                 before the package's ReLU, min-max scaling and resize, against cnnlite's
                 PostProcess::raw() map (7x7, before its ReLU, max scaling and resize). The
                 resize conventions of the two libraries play no part here.
  gradcam/shown  cnnlite's ReLU and division by the max, without the resize (7x7), against the
                 same two steps applied to the peer's raw map.
  gradcam/upsampled  cnnlite's default output (the shown map resized bilinearly to 28x28)
                 against the peer's shown map resized by cv2.resize, the resize
                 pytorch-grad-cam applies (scale_cam_image; in float32, also in the float64 pass).
  hirescam/...   the same with pytorch_grad_cam.HiResCAM (sum_k g_k * A_k). At the input of
                 global average pooling the gradient is the same at every position, so its maps
                 equal Grad-CAM's; both are compared, each library computing them its own way.
  layercam/...   the same with pytorch_grad_cam.LayerCAM (sum_k relu(g_k) * A_k): Grad-CAM's
                 map without the channels whose (position-independent) gradient is negative.
  *-logit/...    the same on the logit: cnnlite's --score logit, the peer's ClassifierOutputTarget.

A map passes when max |cnnlite - peer| <= 1e-4 * max |peer|, map by map; maps that are zero
everywhere on both sides (a shown Grad-CAM map whose ReLU removes everything) are counted, not
compared. Controls, comparisons that must fail: cnnlite's Grad-CAM maps at the explained
layer against the peer's at an earlier ReLU of the same shape (re_lu_5, the last block's first
ReLU), and cnnlite's probability maps against the peer's logit maps; at least 90% of the maps
must differ in each.

Both sides run twice: in float64 (`--dtype double` of cnnlite_explain_maps, Graph.double();
every map must pass) and in float32. Downstream of the explained layer there is only global
average pooling, the dense layer and the softmax, so the maps are smooth functions of the
layer's output: float32 meets no kinks here (upstream ReLUs change the activations
continuously). What float32 does meet is the probability's conditioning near 1: the gradient of
p_c with respect to the logits is p_c (e_c - p), whose c-th entry 1 - p_c float32 holds only to
2^-24 / (1 - p_c) relative, and the channel sum amplifies that (cnnlite's own float32 and
float64 maps differ by 1.0e-4 at 1 - p = 1.1e-3 on the fixture model). So a float32 map of a
probability score passes at max(1e-4, FLOAT32_ROUNDING / (1 - p)) x max |peer|, and such a
map is listed as accepted, only when the same map passes in float64. Any other mismatch fails.

Measured (fixture model, 64 images, torch 2.15.0, grad-cam 1.5.7; 30 s on a loaded 2-core
machine): float64 at most 1.3e-7 relative; float32 at most 5.5e-7 on the logit and 9.5e-5 on
the probability (image 52, 1 - p = 1.1e-3; all other images below 5e-5, none accepted);
probabilities within 2.9e-8 (float64; cnnlite hands out float32) and 9.5e-7 (float32); controls
64 of 64 maps differ, BatchNorm in training mode moves the probabilities by 0.99. Three other
resnet8 models (two more fixture runs, one trained on the full set) with --images 200: float32
at most 4.3e-5, float64 at most 1.9e-7.
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

import cv2
import numpy as np
import torch
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "benchmarks", "compare_recipe"))
from cnnlite_graph import load_graph, read_header  # noqa: E402  (the model file's graph in torch.nn)
from test_explain_parity import (PROBABILITY_TOLERANCE, TOLERANCE, ProbabilityTarget,  # noqa: E402
                                 UnscaledGradCAM, UnscaledHiResCAM, UnscaledLayerCAM, check_controls,
                                 explain_maps_tool, finish, fixture_test_images, relative_errors, shown, tally)

from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

NAME = "test_explain_parity_graph"
CONTROL_SHARE = 0.9    # of the control maps that must differ
# float32 rounds p to 2^-24 (6e-8) relative, so 1 - p carries up to 6e-8 / (1 - p); the maps
# showed twice that (above). 1e-6 leaves a factor 16; it widens the tolerance only for
# explained probabilities above 0.99.
FLOAT32_ROUNDING = 1e-6

# What is explained: (name, --targets, score). The true labels check given classes, the logit
# runs Score::logit.
RUNS = (("predicted class", "predicted", "probability"),
        ("true label", "labels", "probability"),
        ("predicted class, logit", "predicted", "logit"))
METHODS = {"gradcam": UnscaledGradCAM, "hirescam": UnscaledHiResCAM, "layercam": UnscaledLayerCAM}


def run(cmd):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"{NAME}: command failed (exit status {result.returncode}): {' '.join(cmd)}\n{result.stdout}")
    return result.stdout


def train_fixture_model(build, out):
    program = os.path.join(build, "examples", "fashion_mnist", "fashion_mnist")
    if not os.access(program, os.X_OK):
        sys.exit(f"{NAME}: {program} not found; build the target fashion_mnist or pass --model")
    run([program, "train", "--arch", "resnet8", "--data", os.path.join(REPO, "data", "fixtures"), "--val", "500",
         "--limit", "1500", "--epochs", "1", "--batch-size", "32", "--out", out])
    return os.path.join(out, "model.safetensors")


def explained_layers(architecture, net, x):
    """(layer, control layer, output shape): the input of GlobalAveragePooling2D, which must be
    a ReLU layer (fashion_mnist explains it), and the last ReLU before it with the same output
    shape."""
    layers = {layer["name"]: layer for layer in architecture["layers"]}
    pooled = [layer["inputs"][0] for layer in architecture["layers"] if layer["type"] == "GlobalAveragePooling2D"]
    if len(pooled) != 1 or layers[pooled[0]]["type"] != "ReLU":
        sys.exit(f"{NAME}: expected one GlobalAveragePooling2D fed by a ReLU layer, got inputs {pooled}")
    relus = [layer["name"] for layer in architecture["layers"] if layer["type"] == "ReLU"]
    shapes = {}
    hooks = [net.modules_[name].register_forward_hook(
        lambda module, inputs, output, name=name: shapes.__setitem__(name, tuple(output.shape[1:]))) for name in relus]
    with torch.no_grad():
        net(x[:1])
    for hook in hooks:
        hook.remove()
    target = pooled[0]
    same = [name for name in relus[:relus.index(target)] if shapes[name] == shapes[target]]
    if not same:
        sys.exit(f"{NAME}: no ReLU layer before {target} has its output shape {shapes[target]} (for the control)")
    return target, same[-1], shapes[target]


def cnnlite_maps(tool, model, images_npy, method, layer, targets, score, dtype, out):
    run([tool, model, images_npy, method, out, "--layer", layer, "--targets", targets, "--score", score,
         "--dtype", dtype])
    with open(os.path.join(out, "info.json"), encoding="utf-8") as f:
        info = json.load(f)
    arrays = {name[:-4]: np.load(os.path.join(out, name)) for name in os.listdir(out) if name.endswith(".npy")}
    return info, arrays


def peer_cam(cls, net, layer, x, classes, score):
    """The peer's raw maps [N, h, w] at the layer's resolution (get_cam_image)."""
    cam = cls(model=net, target_layers=[net.modules_[layer]])
    target = ProbabilityTarget if score == "probability" else ClassifierOutputTarget  # the latter: logits[c]
    try:
        return cam(input_tensor=x, targets=[target(int(c)) for c in classes])
    finally:
        cam.activations_and_grads.release()


def peer_upsampled(maps, height, width):
    """The peer's resize of each map to the input (scale_cam_image: cv2.resize, bilinear)."""
    return np.stack([cv2.resize(np.float32(m), (width, height)) for m in maps])


def batchnorms(net):
    return {name: m for name, m in net.modules_.items() if isinstance(m, torch.nn.BatchNorm2d)}


def batchnorm_state(net):
    return {name: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
            for name, m in batchnorms(net).items()}


def batchnorm_problems(net, stored):
    """What is wrong with the BatchNorm modules: not in eval mode, or running statistics no
    longer the file's."""
    problems = []
    for name, m in batchnorms(net).items():
        if m.training:
            problems.append(f"{name} is in training mode")
        mean, var, count = stored[name]
        if not (torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
                and torch.equal(m.num_batches_tracked, count)):
            problems.append(f"{name}'s running statistics changed")
    return problems


def batchnorm_count_problems(net, model):
    """Each BatchNorm2d's num_batches_tracked against the file's 0-d I64 tensor of that name
    (files from before format version 3 have none)."""
    if int(read_header(model)[1]["format_version"]) < 3:
        return []
    tensors = load_file(model)
    problems = []
    for name, m in batchnorms(net).items():
        stored = tensors.get(f"{name}.num_batches_tracked")
        if stored is None or stored.dtype != np.int64 or stored.shape != ():
            problems.append(f"{name}.num_batches_tracked is not a 0-d I64 tensor of the file")
        elif m.num_batches_tracked.dtype != torch.int64 or int(m.num_batches_tracked) != int(stored) or stored <= 0:
            problems.append(f"{name}.num_batches_tracked is {int(m.num_batches_tracked)}, the file's {int(stored)}")
    return problems


def compare_dtype(dtype, tool, model, images, labels, work):
    """Runs cnnlite and the peer in one dtype. Returns ({check: per-map relative errors},
    {check: per-map float32 tolerance}, {check: what each map explained},
    probability difference, {control: per-map relative errors}, BatchNorm problems,
    probability difference with BatchNorm in training mode, (layer, control layer, shape))."""
    torch_dtype = torch.float64 if dtype == "double" else torch.float32
    net, architecture = load_graph(model)
    net = net.to(torch_dtype).eval()
    stored = batchnorm_state(net)
    problems = batchnorm_problems(net, stored) + batchnorm_count_problems(net, model)
    if not batchnorms(net):
        problems.append("the graph has no BatchNorm2d module")
    x = torch.from_numpy(images).to(torch_dtype)
    layer, control_layer, shape = explained_layers(architecture, net, x)
    with torch.no_grad():
        torch_probs = torch.softmax(net(x), dim=1).numpy()
        trained = copy.deepcopy(net).train()  # batch statistics: must not pass for the model
        train_mode_probs = torch.softmax(trained(x), dim=1).numpy()

    images_npy = os.path.join(work, "images.npy")
    if not os.path.exists(images_npy):
        np.save(images_npy, images)
    errors, float32_limits, explained, prob_diff, train_mode_diff, controls = {}, {}, {}, 0.0, 0.0, {}
    for run_name, targets, score in RUNS:
        targets_arg = ",".join(map(str, labels)) if targets == "labels" else targets
        for method, cls in METHODS.items():
            out = os.path.join(work, f"{dtype}-{method}-{targets}-{score}")
            info, ours = cnnlite_maps(tool, model, images_npy, method, layer, targets_arg, score, dtype, out)
            classes = np.array(info["targets"])
            if info["layer"] != layer or [int(v) for v in re.findall(r"\d+", info["layer_output"])] != list(shape):
                sys.exit(f"{NAME}: cnnlite explained {info['layer']} {info['layer_output']}, not {layer} {list(shape)}")
            if targets == "labels" and not (classes == labels).all():
                sys.exit(f"{NAME}: cnnlite explained other classes than the labels it was given")
            if info["score"] != score:
                sys.exit(f"{NAME}: cnnlite differentiated the {info['score']}, not the {score}")
            if ours["raw"].shape[1:] != shape[1:] or ours["maps"].shape[1:] != images.shape[2:]:
                sys.exit(f"{NAME}: cnnlite's maps have shapes {ours['raw'].shape} and {ours['maps'].shape}")
            prob_diff = max(prob_diff, float(np.abs(ours["probabilities"] - torch_probs).max()))
            train_mode_diff = max(train_mode_diff, float(np.abs(ours["probabilities"] - train_mode_probs).max()))
            p = ours["probabilities"][np.arange(len(classes)), classes]
            # float32's tolerance of each map: wider for a probability near 1 (1 - p rounded)
            limits = (np.maximum(TOLERANCE, FLOAT32_ROUNDING / np.maximum(1.0 - p.astype(np.float64), 2.0 ** -24))
                      if score == "probability" else np.full(len(classes), TOLERANCE))
            suffix = "" if score == "probability" else "-logit"
            peer = peer_cam(cls, net, layer, x, classes, score)
            checks = {f"{method}{suffix}/raw": (ours["raw"], peer),
                      f"{method}{suffix}/shown": (ours["shown"], shown(peer)),
                      f"{method}{suffix}/upsampled": (ours["maps"], peer_upsampled(shown(peer), *images.shape[2:]))}
            if method == "gradcam" and score == "probability" and targets == "predicted":
                # The check must be able to fail: another layer's maps, and the logit's maps,
                # are not the explained layer's probability maps.
                controls["gradcam at " + control_layer] = relative_errors(
                    ours["raw"], peer_cam(cls, net, control_layer, x, classes, score))
                controls["gradcam vs logit"] = relative_errors(
                    ours["raw"], peer_cam(cls, net, layer, x, classes, "logit"))
            for name, (a, b) in checks.items():
                errors.setdefault(name, []).append(relative_errors(a, b))
                float32_limits.setdefault(name, []).append(limits)
                explained.setdefault(name, []).extend([run_name] * len(images))
    problems += batchnorm_problems(net, stored)
    return ({k: np.concatenate(v) for k, v in errors.items()},
            {k: np.concatenate(v) for k, v in float32_limits.items()},
            explained, prob_diff, controls, problems, train_mode_diff, (layer, control_layer, shape))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(REPO, "build"), help="CMake build folder (default: build/)")
    parser.add_argument("--model", help="cnnlite model file of resnet8 (default: train one on the fixture)")
    parser.add_argument("--images", type=int, default=64, help="first N test images of data/fixtures (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--summary", help="also write the one-line summary to this file")
    parser.add_argument("--keep", help="keep the intermediate files in this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()

    tool = explain_maps_tool(args.build, NAME)
    work = args.keep or tempfile.mkdtemp(prefix="cnnlite-explain-parity-graph.")
    os.makedirs(work, exist_ok=True)
    try:
        model = args.model or train_fixture_model(args.build, os.path.join(work, "train"))
        images, labels = fixture_test_images(args.images)
        results = {dtype: compare_dtype(dtype, tool, model, images, labels, work)
                   for dtype in ("double", "float")}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    layer, control_layer, shape = results["double"][7]
    print(f"explain parity (graph): cnnlite vs torch {torch.__version__}, grad-cam {version('grad-cam')}: "
          f"{len(images)} fixture test images, layer {layer} {list(shape)}; a map passes at "
          f"max |cnnlite - peer| <= {TOLERANCE:g} x max |peer|")
    failures, accepted, per_method = [], [], {}
    n = len(images)
    for dtype in ("double", "float"):
        errors, float32_limits, explained, prob_diff, controls, problems, train_mode_diff, _ = results[dtype]
        failures += [f"{dtype}: batchnorm: {p}" for p in problems]
        print(f"  {dtype:6s} {'batchnorm':30s} eval mode, running statistics and num_batches_tracked the file's"
              + (f": {'; '.join(problems)}" if problems else ""))
        if not prob_diff <= PROBABILITY_TOLERANCE:
            failures.append(f"{dtype}: probabilities differ by {prob_diff:.3g} > {PROBABILITY_TOLERANCE:g}")
        print(f"  {dtype:6s} {'probabilities':30s} max |difference| {prob_diff:.2e}")
        # Control: the probability check must tell BatchNorm's running statistics from the batch's.
        print(f"  {dtype:6s} {'control: batchnorm training':30s} max |difference| {train_mode_diff:.2e}, "
              f"fails as it must")
        if not train_mode_diff > PROBABILITY_TOLERANCE:
            failures.append(f"{dtype}: control: with BatchNorm in training mode the probabilities still agree "
                            f"({train_mode_diff:.3g})")
        # Controls: if most of these passed, the comparison could not tell the layers, or the
        # scores, apart.
        check_controls(dtype, controls, failures, CONTROL_SHARE)
        for name, rel in errors.items():
            zero = np.isnan(rel)
            bad = ~zero & ~(rel <= TOLERANCE)
            excused = np.zeros_like(bad)
            if dtype == "float":
                excused = bad & (rel <= float32_limits[name]) & (results["double"][0][name] <= TOLERANCE)
            for i in np.flatnonzero(bad):
                line = (f"{dtype} {name}: image {i % n} ({explained[name][i]}): "
                        f"max |cnnlite - peer| = {rel[i]:.3g} x max |peer|")
                (accepted if excused[i] else failures).append(line + (
                    f"; 1 - p = {FLOAT32_ROUNDING / float32_limits[name][i]:.2g}, within float32's tolerance "
                    f"{float32_limits[name][i]:.3g} there, agrees in float64"
                    if excused[i] else ""))
            compared = ~zero & ~excused
            worst = float(np.max(rel[compared])) if compared.any() else 0.0
            print(f"  {dtype:6s} {name:30s} {compared.sum():4d} maps compared, max relative error {worst:.2e}, "
                  f"{zero.sum()} all-zero skipped"
                  + (f", {excused.sum()} accepted (1 - p rounded)" if excused.any() else ""))
            tally(per_method, dtype, name, compared, worst, zero, excused)
    for line in accepted:
        print("  accepted:", line)
    parts = []
    for method in METHODS:
        d, f = per_method[("double", method)], per_method[("float", method)]
        parts.append(f"{method} {d[0] + f[0]} maps, max rel err {d[1]:.1e} (f64) / {f[1]:.1e} (f32), "
                     f"{d[2] + f[2]} all-zero skipped"
                     + (f", {f[3]} f32 maps accepted (1 - p rounded)" if f[3] else ""))
    probs = max(results[d][3] for d in results)
    summary = f"explain parity resnet8 at {layer}: " + "; ".join(parts) + f"; probabilities max diff {probs:.1e}"
    return finish(summary, failures, start, args.summary)


if __name__ == "__main__":
    sys.exit(main())
