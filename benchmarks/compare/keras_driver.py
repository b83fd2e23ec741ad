"""Keras/TensorFlow side of the side-by-side comparison: the paper's network as the paper's
notebook builds it (keras.Sequential, softmax output, categorical cross-entropy on one-hot
labels, Adam with Keras' defaults: lr 1e-3, epsilon 1e-7), trained on batches of 64 or run for
inference. Prints one JSON line like the other drivers. fp32 throughout.

    PY=$(bash benchmarks/peers/setup.sh --print-venv)/bin/python                    # Keras 3 on TF 2.21
    PY=$(bash benchmarks/peers/setup.sh --print-venv --subset keras214)/bin/python  # tf.keras 2.14
    $PY keras_driver.py --data DIR --mode train|infer --batch 64 --threads 2 [--seconds 3] [options]

Threads are set explicitly before any op runs: intra-op = T and inter-op = T (or --inter-op).
The options are the ways of running a step that were tried (variants.py names the combinations):
  --train-step train_on_batch   model.compile(...) then model.train_on_batch(x, y) (Keras' own
                                compiled train function; the default)
  --train-step function         a tf.function of GradientTape + optimizer.apply_gradients
  --infer predict_on_batch      model.predict_on_batch(x) (the default)
  --infer function              a tf.function of model(x, training=False)
  --jit auto|on|off             XLA: model.compile(jit_compile=...) or tf.function(jit_compile=...);
                                auto = Keras' default (Keras 3: XLA when the model supports it;
                                tf.keras 2.14: none)
  --chunk N                     (infer) slices of N images, concatenated (as cnnlite's predict())
oneDNN is switched by the environment (TF_ENABLE_ONEDNN_OPTS=0/1; on by default on x86 Linux).
Batches are prepared as tf tensors before timing (8 shuffled batches in a ring, as the others).
"""
import argparse
import importlib.metadata
import json
import os
import resource
import time

import numpy as np

PAPER_PARAMS = 805_962


def read_raw(folder, split):
    images = np.fromfile(os.path.join(folder, f"{split}_images.u8"), dtype=np.uint8)
    labels = np.fromfile(os.path.join(folder, f"{split}_labels.u8"), dtype=np.uint8)
    return images.reshape(-1, 28, 28, 1).astype(np.float32) / np.float32(255), labels.astype(np.int64)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--inter-op", type=int, default=0, help="inter-op threads (0: same as --threads)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--variant", default="", help="a name recorded in the output (variants.py)")
    p.add_argument("--train-step", choices=["train_on_batch", "function"], default="train_on_batch")
    p.add_argument("--infer", choices=["predict_on_batch", "function"], default="predict_on_batch")
    p.add_argument("--jit", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--chunk", type=int, default=0)
    a = p.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    train_x, train_y = read_raw(a.data, "train")
    test_x, _ = read_raw(a.data, "test")
    import tensorflow as tf
    # Threads first, before any op runs (TensorFlow fixes its thread pools at the first op).
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.inter_op or a.threads)
    tf.keras.utils.set_random_seed(0)
    keras = tf.keras
    layers = keras.layers
    rss_loaded = peak_rss_mb()

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, 2, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.3),
        layers.MaxPooling2D(2),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    assert model.count_params() == PAPER_PARAMS, model.count_params()
    jit = {"auto": "auto", "on": True, "off": False}[a.jit]
    compile_jit = {} if jit == "auto" else {"jit_compile": jit}
    function_jit = {"jit_compile": True} if jit is True else {}  # tf.function's default: no XLA
    optimizer = keras.optimizers.Adam()  # lr 1e-3, beta 0.9/0.999, epsilon 1e-7
    loss_fn = keras.losses.CategoricalCrossentropy()
    model.compile(optimizer=optimizer, loss=loss_fn, **compile_jit)

    if a.mode == "train":
        rng = np.random.default_rng(0)
        order = rng.permutation(len(train_x))
        onehot = np.eye(10, dtype=np.float32)[train_y]
        ring = [(tf.constant(train_x[order[i:i + a.batch]]), tf.constant(onehot[order[i:i + a.batch]]))
                for i in range(0, len(train_x) - a.batch + 1, a.batch)]
        if a.train_step == "train_on_batch":
            def step(x, y):
                return model.train_on_batch(x, y)
        else:
            @tf.function(**function_jit)
            def step(x, y):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss
        state = {"step": 0}

        def train_once():
            x, y = ring[state["step"] % len(ring)]
            state["step"] += 1
            return step(x, y)

        for _ in range(8):  # warm-up (tracing, XLA compilation), not timed
            train_once()
        start = time.perf_counter()
        steps = 0
        while True:
            loss = train_once()
            steps += 1
            if steps >= 10 and time.perf_counter() - start >= a.seconds:
                break
        check = float(np.asarray(loss))  # the step's result: it has finished
        elapsed = time.perf_counter() - start
        images = steps * a.batch
    else:
        x = tf.constant(test_x[:a.batch])
        if a.infer == "predict_on_batch":
            forward = model.predict_on_batch
        else:
            forward = tf.function(lambda t: model(t, training=False), **function_jit)

        def infer():
            if a.chunk and a.chunk < a.batch:
                return tf.concat([forward(x[i:i + a.chunk]) for i in range(0, a.batch, a.chunk)], 0)
            return forward(x)

        for _ in range(3):  # warm-up (tracing, XLA compilation), not timed
            y = infer()
        start = time.perf_counter()
        calls = 0
        while True:
            y = np.asarray(infer())
            calls += 1
            if calls >= 5 and time.perf_counter() - start >= a.seconds:
                break
        elapsed = time.perf_counter() - start
        check = float(y[0, 0])
        images = calls * a.batch

    try:
        keras_version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        keras_version = getattr(keras, "__version__", "?")
    print(json.dumps({"framework": "keras", "variant": a.variant, "mode": a.mode, "batch": a.batch, "threads": a.threads,
                      "images_per_second": images / elapsed, "seconds": elapsed, "peak_rss_mb": peak_rss_mb(),
                      "rss_after_data_mb": rss_loaded, "check": check, "tensorflow": tf.__version__,
                      "keras": keras_version,
                      "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                      "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                      "jit_compile": str(getattr(model, "jit_compile", None)),
                      "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
                      "options": {"train_step": a.train_step, "infer": a.infer, "jit": a.jit, "chunk": a.chunk}}))


if __name__ == "__main__":
    main()
