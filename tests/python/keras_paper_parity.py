#!/usr/bin/env python3
"""The paper's own software against cnnlite: weights of the paper's network trained by Keras
(benchmarks/peers/keras_paper.py --save-weights FILE) are loaded into cnnlite's paper network
(load_keras_weights); both predict the first --images test images, and both compute Grad-CAM
the way the paper's notebook does (a GradientTape on the softmax output of the predicted class
at the convolution's output after its ReLU; alpha_k = mean gradient; ReLU of the weighted sum;
divided by its max; PAPER.md section 5).

    python tests/python/keras_paper_parity.py --weights FILE --build DIR [--images N]

Interpreter: the venv of `bash benchmarks/peers/setup.sh` (TensorFlow 2.21 with Keras 3:
~/.cache/cnnlite/peers/bin/python), or the keras214 venv (tf.keras 2.14, the notebook's
versions), whichever wrote FILE. DIR is a CMake build with -DCNNLITE_WITH_KERAS=ON holding
tests/cnnlite_explain_maps. Needs TensorFlow, so the CI does not run it; README and
docs/model_format.md quote its figures.

Passes when max |p_keras - p_cnnlite| <= 1e-5 over the images and every Grad-CAM map agrees to
1e-4 (max |difference| of the maps, both scaled to a maximum of 1); a control (Grad-CAM of the
second most probable class) must differ. Both sides compute in float64 by default (the file's
float32 weights widened). With --dtype float32 the maps are only reported: float32's rounding of
p near 1 makes the gradient of a confidently predicted class inexact on both sides (measured on
the Keras 3 weights: median 4.2e-7, but 3.99e-4 at 1 - p = 1e-3 and 4.7e-2 at 1 - p = 9.5e-7,
while every map agrees to 1.3e-7 in float64).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from idx_file import read_idx  # noqa: E402

PROBABILITY_TOLERANCE = 1e-5
MAP_TOLERANCE = 1e-4


def paper_network():
    """keras_paper.py's network, with the names Keras gives its layers in a fresh session."""
    keras, layers = tf.keras, tf.keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, 2, padding="same", activation="relu", name="conv2d"),
        layers.MaxPooling2D(2, name="max_pooling2d"),
        layers.Dropout(0.3, name="dropout"),
        layers.MaxPooling2D(2, name="max_pooling2d_1"),
        layers.Dropout(0.3, name="dropout_1"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense"),
        layers.Dropout(0.5, name="dropout_2"),
        layers.Dense(10, activation="softmax", name="dense_1"),
    ])


def notebook_grad_cam(model, images, classes):
    """Grad-CAM as the paper's notebook computes it, [N, 28, 28] scaled to a maximum of 1."""
    # The network rebuilt as a functional model that also outputs the convolution's maps (a
    # Sequential has no symbolic outputs before it is called in Keras 3).
    inputs = tf.keras.Input(shape=(28, 28, 1))
    x = inputs
    for layer in model.layers:
        x = layer(x)
        if layer.name == "conv2d":
            features_out = x
    grad_model = tf.keras.Model(inputs, [features_out, x])
    maps = []
    for i in range(len(images)):
        with tf.GradientTape() as tape:
            features, predictions = grad_model(images[i:i + 1])
            score = predictions[:, int(classes[i])]
        grads = tape.gradient(score, features)[0]          # [28, 28, 64]
        alpha = tf.reduce_mean(grads, axis=(0, 1))          # [64]
        cam = tf.nn.relu(tf.reduce_sum(features[0] * alpha, axis=-1)).numpy()
        top = cam.max()
        maps.append(cam / top if top > 0 else cam)
    return np.stack(maps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="Keras weights of the paper's network")
    parser.add_argument("--build", required=True, help="CMake build with CNNLITE_WITH_KERAS=ON")
    parser.add_argument("--images", type=int, default=1000, help="first N test images (default 1000)")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="the IDX files' folder")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                        help="both sides compute in this type (default float64; see the module's text)")
    args = parser.parse_args()
    if args.dtype == "float64":
        tf.keras.backend.set_floatx("float64")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    images = (read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"), args.images).astype(args.dtype)
              / 255.0).astype(args.dtype)
    model = paper_network()
    model.load_weights(args.weights)
    keras_probs = model.predict(images[..., None], batch_size=250, verbose=0)
    predicted = keras_probs.argmax(1)
    runner_up = np.argsort(keras_probs, 1)[:, -2]
    keras_maps = notebook_grad_cam(model, images[..., None], predicted)
    control_maps = notebook_grad_cam(model, images[..., None], runner_up)

    tool = os.path.join(args.build, "tests", "cnnlite_explain_maps")
    with tempfile.TemporaryDirectory(prefix="cnnlite-keras-paper.") as work:
        np.save(os.path.join(work, "images.npy"), images[:, None, :, :])
        out = os.path.join(work, "maps")
        subprocess.run([tool, args.weights, os.path.join(work, "images.npy"), "gradcam", out, "--keras-paper",
                        "--dtype", "double" if args.dtype == "float64" else "float",
                        "--targets", ",".join(str(int(c)) for c in predicted)], check=True)
        ours_probs = np.load(os.path.join(out, "probabilities.npy"))
        ours_maps = np.load(os.path.join(out, "maps.npy"))
        with open(os.path.join(out, "info.json"), encoding="utf-8") as f:
            info = json.load(f)

    prob_diff = float(np.max(np.abs(ours_probs - keras_probs)))
    map_diff = np.max(np.abs(ours_maps - keras_maps), axis=(1, 2))
    worst = int(np.argmax(map_diff))
    control = np.max(np.abs(ours_maps - control_maps), axis=(1, 2))
    told_apart = int(np.sum(control > MAP_TOLERANCE))
    accuracy_labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"), args.images)
    print(f"Keras paper weights ({args.weights}) in cnnlite, {args.images} test images, layer {info['layer']}: "
          f"probabilities max |difference| {prob_diff:.2e} (argmax agrees on "
          f"{int(np.sum(ours_probs.argmax(1) == predicted))}, accuracy {np.mean(predicted == accuracy_labels):.4f}); "
          f"Grad-CAM ({args.dtype}) max |difference| {map_diff.max():.2e} (median {np.median(map_diff):.1e}; worst "
          f"image {worst}, 1 - p = {1 - keras_probs[worst, predicted[worst]]:.1e}, "
          f"{int(np.sum(map_diff > MAP_TOLERANCE))} maps above {MAP_TOLERANCE:g}); "
          f"control: {told_apart} of {len(control)} maps of the runner-up class differ")
    # float32 holds p_c only to 6e-8, so dp_c/dlogits = p_c (e_c - p) carries a relative error of
    # about 6e-8 / (1 - p_c) on both sides, amplified by the sum over channels: float32 maps are
    # reported, and the maps are held to the tolerance in float64.
    maps_ok = args.dtype == "float32" or map_diff.max() <= MAP_TOLERANCE
    ok = prob_diff <= PROBABILITY_TOLERANCE and maps_ok and told_apart >= 0.9 * len(control)
    print("passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
