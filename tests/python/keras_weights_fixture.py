#!/usr/bin/env python3
"""Keras weights for tests/test_io_keras.cpp, written by Keras itself, and the check that Keras
loads the weights cnnlite writes.

  make DIR   trains a small network made of the layers cnnlite maps (Conv2D with bias and ReLU,
             BatchNormalization, MaxPooling2D, Dropout, Flatten, Dense with softmax) for one epoch
             on data/fixtures (2,000 images, seed 0) and writes into DIR:
               keras3.weights.h5   model.save_weights() of the running Keras (Keras 3 layout)
               keras3.keras        model.save() of the same (a zip holding model.weights.h5)
               probabilities.npy   float32 [100, 10] Keras' predictions on the first 100
                                   fixture test images (pixel / 255)
               versions.txt        the TensorFlow and Keras versions that wrote them
             Run with the Keras 2 venv (tf.keras 2.14) it writes keras2.h5 instead of the
             Keras 3 file (legacy HDF5 layout) and checks that its predictions equal the
             committed ones made by Keras 3 from the same weights.
  check DIR  loads DIR/cnnlite.weights.h5 (written by test_io_keras with CNNLITE_KERAS_CHECK_DIR=DIR)
             into the same Keras network and compares its predictions on the same images with
             DIR/cnnlite_probabilities.npy: exit status 0 when max |difference| <= 1e-5.

Interpreters (the venvs of `bash benchmarks/peers/setup.sh`, not the system python3):
  ~/.cache/cnnlite/peers/bin/python tests/python/keras_weights_fixture.py make tests/data/keras
      (TensorFlow 2.21, Keras 3), then
  ~/.cache/cnnlite/peers-keras214/bin/python tests/python/keras_weights_fixture.py make tests/data/keras
      (TensorFlow 2.14.1, tf.keras 2.14.0: adds keras2.h5, the same weights in Keras 2's layout).
The committed files in tests/data/keras were made this way.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import importlib.metadata  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from idx_file import read_idx  # noqa: E402

FIXTURES = os.path.join(REPO, "data", "fixtures")
IMAGES = 100
TOLERANCE = 1e-5
KERAS3 = int(importlib.metadata.version("keras").split(".")[0]) >= 3


def network():
    """The network test_io_keras.cpp builds in cnnlite with the same layer names."""
    keras = tf.keras
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2d")(inputs)
    x = keras.layers.BatchNormalization(name="batch_normalization")(x)
    x = keras.layers.MaxPooling2D(2, name="max_pooling2d")(x)
    x = keras.layers.Dropout(0.25, name="dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs)


def images(file, count):
    return (read_idx(os.path.join(FIXTURES, file), count).astype(np.float32) / np.float32(255.0))[..., None]


def make(folder):
    os.makedirs(folder, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    model = network()
    test = images("t10k-images-idx3-ubyte.gz", IMAGES)
    if KERAS3:
        x = images("train-images-idx3-ubyte.gz", 2000)
        y = read_idx(os.path.join(FIXTURES, "train-labels-idx1-ubyte.gz"), 2000).astype(np.int64)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        saved = network()  # without the optimiser's variables, which fit() adds to the model's file
        saved.set_weights(model.get_weights())
        saved.save_weights(os.path.join(folder, "keras3.weights.h5"))
        saved.save(os.path.join(folder, "keras3.keras"))
        np.save(os.path.join(folder, "probabilities.npy"), model.predict(test, verbose=0).astype(np.float32))
    else:
        # Keras 2 cannot read Keras 3's file: the weights are copied in through h5py, then saved
        # in Keras 2's own layout.
        import h5py
        with h5py.File(os.path.join(folder, "keras3.weights.h5"), "r") as f:
            for layer in model.layers:
                group = f"layers/{layer.name}/vars"
                if layer.weights:
                    layer.set_weights([f[f"{group}/{i}"][()] for i in range(len(layer.weights))])
        model.save_weights(os.path.join(folder, "keras2.h5"))
        expected = np.load(os.path.join(folder, "probabilities.npy"))
        difference = float(np.max(np.abs(model.predict(test, verbose=0) - expected)))
        print(f"Keras 2 predictions from keras2.h5 against Keras 3's: max |difference| {difference:.2e}")
        if difference > TOLERANCE:
            sys.exit(1)
    with open(os.path.join(folder, "versions.txt"), "a", encoding="utf-8") as f:
        f.write(f"{'keras3.weights.h5' if KERAS3 else 'keras2.h5'}: TensorFlow {tf.__version__}, "
                f"Keras {importlib.metadata.version('keras')}\n")


def check(folder):
    model = network()
    model.load_weights(os.path.join(folder, "cnnlite.weights.h5"))
    ours = np.load(os.path.join(folder, "cnnlite_probabilities.npy"))
    theirs = model.predict(images("t10k-images-idx3-ubyte.gz", len(ours)), verbose=0)
    difference = float(np.max(np.abs(theirs - ours)))
    print(f"Keras {importlib.metadata.version('keras')} with cnnlite's weights: max |difference| {difference:.2e} "
          f"over {len(ours)} images (argmax agrees on {int(np.sum(theirs.argmax(1) == ours.argmax(1)))})")
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit(__doc__)
    sys.exit(make(sys.argv[2]) if sys.argv[1] == "make" else check(sys.argv[2]))
