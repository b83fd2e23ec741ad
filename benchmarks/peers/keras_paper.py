"""The paper's own recipe in tf.keras: "Fashion-MNIST Image Classification using CNN and Grad-CAM"
(Kim, Li, Bak, 2023; its sections 2-4), as its notebook ran it.

Interpreter: the venv's python made by benchmarks/peers/setup.sh, not the system python3:
    ~/.cache/cnnlite/peers-keras214/bin/python benchmarks/peers/keras_paper.py --out DIR
(`bash benchmarks/peers/setup.sh --subset keras214`: TensorFlow 2.14.1, tf.keras = Keras 2.14.0,
the notebook's versions). It also runs unchanged in the full peers venv (TensorFlow 2.21, where
tf.keras is Keras 3): ~/.cache/cnnlite/peers/bin/python. results.json records which.

Recipe: Conv2D(64, 2, padding='same', relu) on 28x28x1 -> MaxPooling2D(2) -> Dropout(0.3) ->
MaxPooling2D(2) -> Dropout(0.3) -> Flatten -> Dense(256, relu) -> Dropout(0.5) ->
Dense(10, softmax); 805,962 parameters; Keras' default initialisers (glorot-uniform kernels, zero
biases); Adam() with its defaults; categorical cross-entropy on the softmax output; batch 64;
50 epochs, shuffled every epoch; validation = the FIRST 5,000 images of the training file,
training = the other 55,000; the weights of the epoch with the lowest val_loss are kept
(ModelCheckpoint(save_best_only=True), then load_weights) and evaluated on the 10,000 test images.

Data: the four gzip IDX files of Debian's dataset-fashion-mnist (default
/usr/share/datasets/fashion-mnist/), read with numpy + gzip, pixel / 255.0 as float32. Nothing is
downloaded.

Outputs with --out DIR (each file written whole to a temporary name, then renamed):
  history.csv   per epoch: loss, accuracy, val_loss, val_accuracy, seconds, load1 (rewritten
                after every epoch, so a long run can be watched)
  results.json  test accuracy and loss of the kept weights, per-class accuracy, confusion matrix,
                best epoch, seconds per epoch (mean/median, also without epoch 1), TF and Keras
                versions, threads, seed, the exact command, the CPU model, load averages
--save-weights FILE.weights.h5 and --save-model FILE.keras|FILE.h5 save the kept weights/model.
"""
import argparse
import gzip
import importlib.metadata
import json
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time

import numpy as np

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {"train_images": ("train-images-idx3-ubyte.gz", 2051, 60000),
         "train_labels": ("train-labels-idx1-ubyte.gz", 2049, 60000),
         "test_images": ("t10k-images-idx3-ubyte.gz", 2051, 10000),
         "test_labels": ("t10k-labels-idx1-ubyte.gz", 2049, 10000)}
N_VAL = 5000
PAPER_PARAMS = 805962


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="folder with the four gzip IDX files (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=50, help="default: %(default)s (the paper's)")
    p.add_argument("--batch-size", type=int, default=64, help="default: %(default)s (the paper's)")
    p.add_argument("--seed", type=int, default=0, help="tf.keras.utils.set_random_seed (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2,
                   help="TensorFlow intra-op and inter-op threads, both set explicitly (default: %(default)s)")
    p.add_argument("--deterministic", action="store_true",
                   help="also tf.config.experimental.enable_op_determinism() (off in the paper)")
    p.add_argument("--out", help="folder for history.csv and results.json")
    p.add_argument("--save-weights", metavar="FILE.weights.h5", help="save the kept weights (Keras weights file)")
    p.add_argument("--save-model", metavar="FILE.keras|FILE.h5", help="save the kept model")
    a = p.parse_args()
    if a.epochs < 1 or a.batch_size < 1 or a.threads < 1:
        p.error("--epochs, --batch-size and --threads must be positive")
    if a.save_weights and not a.save_weights.endswith(".weights.h5"):
        p.error("--save-weights must end in .weights.h5")
    if a.save_model and not a.save_model.endswith((".keras", ".h5")):
        p.error("--save-model must end in .keras or .h5")
    return a


# ---- data -------------------------------------------------------------------------------------
def read_idx(path, magic, count):
    """One gzip IDX file as a uint8 array, after checking its magic number, its dimensions and
    that its length is exactly what the header says."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for an IDX header")
    got_magic = int.from_bytes(raw[0:4], "big")
    if got_magic != magic:
        raise ValueError(f"{path}: magic number {got_magic:#010x}, expected {magic:#010x}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    want_dims = [count, 28, 28] if ndim == 3 else [count]
    if dims != want_dims:
        raise ValueError(f"{path}: dimensions {dims}, expected {want_dims}")
    offset = 4 + 4 * ndim
    if len(raw) != offset + int(np.prod(dims)):
        raise ValueError(f"{path}: {len(raw) - offset} data bytes, expected {int(np.prod(dims))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_data(folder):
    arrays = {}
    for key, (name, magic, count) in FILES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            sys.exit(f"keras_paper.py: {path} not found (Debian: apt-get install dataset-fashion-mnist; "
                     "or --data DIR); nothing is downloaded")
        arrays[key] = read_idx(path, magic, count)
    for key in ("train_labels", "test_labels"):
        if arrays[key].max() > 9:
            raise ValueError(f"{key}: label {arrays[key].max()} out of range 0..9")
    images = lambda a: (a.astype(np.float32) / np.float32(255.0))[..., np.newaxis]  # noqa: E731
    x_train, y_train = images(arrays["train_images"]), arrays["train_labels"].astype(np.int64)
    x_test, y_test = images(arrays["test_images"]), arrays["test_labels"].astype(np.int64)
    # Validation = the FIRST 5,000 images of the training file; training = the other 55,000.
    return (x_train[N_VAL:], y_train[N_VAL:]), (x_train[:N_VAL], y_train[:N_VAL]), (x_test, y_test)


# ---- small utilities --------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_atomic(path, save):
    """save(tmp_path) then rename; the temporary name keeps the suffix Keras looks at."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def version_of(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---- main -------------------------------------------------------------------------------------
def main():
    args = parse_args()
    command = shlex.join([sys.executable] + sys.argv)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_data(args.data)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf
    # Threads first, before any op runs (TensorFlow fixes its thread pools at the first op).
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.keras.utils.set_random_seed(args.seed)  # Python, NumPy and TensorFlow seeds
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras = tf.keras
    layers = keras.layers
    keras_version = version_of("keras") or getattr(keras, "__version__", "unknown")
    threads = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    print(f"TensorFlow {tf.__version__}, tf.keras = Keras {keras_version}, numpy {np.__version__}, "
          f"Python {platform.python_version()} ({sys.executable})")
    print(f"threads: intra-op {threads[0]}, inter-op {threads[1]}; seed {args.seed}; "
          f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)}")

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
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary(print_fn=lambda s, **_: print(s))
    if model.count_params() != PAPER_PARAMS:
        sys.exit(f"keras_paper.py: {model.count_params()} parameters, the paper's network has {PAPER_PARAMS}")

    history, load_start = [], os.getloadavg()
    ckpt_dir = tempfile.mkdtemp(prefix="keras_paper-")
    best_path = os.path.join(ckpt_dir, "best.weights.h5")

    def write_history():
        if not args.out:
            return
        cols = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "load1"]
        rows = [",".join(cols)] + [",".join(f"{h[c]:.6f}" if isinstance(h[c], float) else str(h[c]) for c in cols)
                                   for h in history]
        write_atomic(os.path.join(args.out, "history.csv"), "\n".join(rows) + "\n")

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.t0
            logs = logs or {}
            row = {"epoch": epoch + 1, "seconds": seconds, "load1": os.getloadavg()[0]}
            for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
                row[k] = float(logs[k])
            best = all(row["val_loss"] < h["val_loss"] for h in history)
            history.append(row)
            print(f"epoch {epoch + 1:3d}/{args.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                  f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  {seconds:6.1f} s  "
                  f"load {row['load1']:.2f}{'  *best' if best else ''}", flush=True)
            write_history()

    checkpoint = keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", mode="min",
                                                 save_best_only=True, save_weights_only=True, verbose=0)
    onehot = lambda y: keras.utils.to_categorical(y, 10)  # noqa: E731
    t_fit = time.perf_counter()
    model.fit(x_train, onehot(y_train), batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
              validation_data=(x_val, onehot(y_val)), callbacks=[EpochLog(), checkpoint], verbose=0)
    fit_seconds = time.perf_counter() - t_fit

    last_loss, last_acc = model.evaluate(x_test, onehot(y_test), batch_size=args.batch_size, verbose=0)
    model.load_weights(best_path)  # the epoch with the lowest val_loss
    test_loss, test_acc = model.evaluate(x_test, onehot(y_test), batch_size=args.batch_size, verbose=0)
    pred = np.argmax(model.predict(x_test, batch_size=256, verbose=0), axis=1)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y_test, pred), 1)
    per_class = {CLASSES[c]: float(confusion[c, c] / confusion[c].sum()) for c in range(10)}
    best = min(history, key=lambda h: h["val_loss"])  # the first epoch with the lowest val_loss
    secs = [h["seconds"] for h in history]
    rest = secs[1:]

    print(f"best epoch {best['epoch']} (val_loss {best['val_loss']:.4f}, val_acc {best['val_accuracy']:.4f})")
    print(f"test accuracy {test_acc:.4f}, test loss {test_loss:.4f} (kept weights); "
          f"last epoch's weights: {last_acc:.4f}")
    print("per class: " + ", ".join(f"{k} {v:.3f}" for k, v in per_class.items()))
    print(f"seconds per epoch: mean {statistics.mean(secs):.1f}, median {statistics.median(secs):.1f}"
          + (f"; without epoch 1: mean {statistics.mean(rest):.1f}, median {statistics.median(rest):.1f}" if rest else ""))

    if args.save_weights:
        save_atomic(args.save_weights, model.save_weights)
        print(f"weights: {args.save_weights}")
    if args.save_model:
        save_atomic(args.save_model, model.save)
        print(f"model: {args.save_model}")
    for name in os.listdir(ckpt_dir):
        os.unlink(os.path.join(ckpt_dir, name))
    os.rmdir(ckpt_dir)

    if args.out:
        results = {
            "recipe": "paper (sections 2-3): tf.keras, Adam(), categorical cross-entropy, batch "
                      f"{args.batch_size}, {args.epochs} epochs, validation = first {N_VAL} training images, "
                      "weights of the lowest val_loss kept",
            "test_accuracy": float(test_acc),
            "test_loss": float(test_loss),
            "test_accuracy_from_predictions": float(np.mean(pred == y_test)),
            "per_class_accuracy": per_class,
            "confusion_matrix": {"rows": "true class", "columns": "predicted class", "classes": CLASSES,
                                 "counts": confusion.tolist()},
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "best_val_accuracy": best["val_accuracy"],
            "last_epoch_test_accuracy": float(last_acc),
            "last_epoch_test_loss": float(last_loss),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seconds_per_epoch": {
                "mean": statistics.mean(secs), "median": statistics.median(secs),
                "mean_without_epoch_1": statistics.mean(rest) if rest else None,
                "median_without_epoch_1": statistics.median(rest) if rest else None,
                "min": min(secs), "max": max(secs)},
            "fit_seconds": fit_seconds,
            "parameters": int(model.count_params()),
            "seed": args.seed,
            "deterministic": args.deterministic,
            "threads": {"intra_op": threads[0], "inter_op": threads[1]},
            "tensorflow_version": tf.__version__,
            "keras_version": keras_version,
            "numpy_version": np.__version__,
            "python": f"{platform.python_version()} ({sys.executable})",
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default)"),
            "command": command,
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg()),
            "data": os.path.abspath(args.data),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        text = json.dumps(results, indent=2)
        # lists of numbers (the confusion matrix rows, load averages) on one line each
        text = re.sub(r"\[\s+([-0-9.e+,\s]+?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)
        write_atomic(os.path.join(args.out, "results.json"), text + "\n")
        print(f"wrote {os.path.join(args.out, 'history.csv')} and results.json")


if __name__ == "__main__":
    main()
