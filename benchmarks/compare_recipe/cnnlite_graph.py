"""The layer graph of a cnnlite model file as a torch.nn.Module, with the file's weights.

`Graph(architecture)` rebuilds the "architecture" metadata of a model file (the layer graph
cnnlite's load_model reads) module by module: Conv2D with TensorFlow's (and cnnlite's) 'same'
padding, BatchNormalization in PyTorch's convention, ReLU, Add, GlobalAveragePooling2D, Dense
with softmax or no activation. Another layer type is an error naming it. The forward pass
returns the logits (a Dense layer with softmax returns its input to the softmax).

Every module is registered under its cnnlite layer name in `Graph.modules_`, and every cnnlite
ReLU layer is an `nn.ReLU` module there (a Conv2D with a fused ReLU has its own as `.relu`), so
hooks such as pytorch-grad-cam's can take a layer's output by module:
`graph.modules_["re_lu_6"]`.

    header, metadata = read_header(path)
    graph = Graph(json.loads(metadata["architecture"]))
    graph.load_cnnlite_weights(path, header)

Used by torch_recipe.py (training and --check) and tests/python/test_explain_parity_graph.py.
Needs torch and numpy.
"""

import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# safetensors dtypes of the tensors a cnnlite model file can hold: weights and buffers F32 or
# F64, counters (BatchNorm's num_batches_tracked, format version 3) I64
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_header(path):
    """The safetensors header of `path`: (tensor entries, metadata)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        if size > 100 * 1024 * 1024:
            sys.exit(f"{path}: header of {size} bytes is not a cnnlite model file")
        header = json.loads(f.read(size))
    return header, header.get("__metadata__", {})


def read_architecture(path):
    """(header, metadata, architecture) of a model file; exits when it has no architecture."""
    header, metadata = read_header(path)
    if "architecture" not in metadata:
        sys.exit(f"{path}: no architecture metadata (not a model file cnnlite's save_model wrote)")
    return header, metadata, json.loads(metadata["architecture"])


def same_padding(size, kernel, stride, dilation):
    """TensorFlow's (and cnnlite's) 'same' padding: (before, after), the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pair(text):
    a, b = (int(v) for v in text.split(","))
    return a, b


class Conv2D(nn.Module):
    """cnnlite's Conv2D: 'valid' or 'same' padding, an optional fused ReLU (module `relu`)."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.kernel = pair(cfg["kernel_size"])
        self.stride = pair(cfg.get("strides", "1,1"))
        self.dilation = pair(cfg.get("dilation_rate", "1,1"))
        self.padding = cfg.get("padding", "valid")
        self.activation = cfg.get("activation", "linear")
        if self.activation not in ("linear", "relu"):
            sys.exit(f"Conv2D activation {self.activation} is not supported here")
        groups = int(cfg.get("groups", "1"))
        self.conv = nn.Conv2d(in_channels, int(cfg["filters"]), self.kernel, self.stride, 0, self.dilation, groups,
                              bias=cfg.get("use_bias", "true") == "true")
        self.relu = nn.ReLU() if self.activation == "relu" else nn.Identity()

    def forward(self, x):
        if self.padding == "same":
            top, bottom = same_padding(x.shape[2], self.kernel[0], self.stride[0], self.dilation[0])
            left, right = same_padding(x.shape[3], self.kernel[1], self.stride[1], self.dilation[1])
            if top == bottom and left == right:
                # Even padding is the convolution's own, as a PyTorch user writes it
                # (Conv2d(..., padding=1)); only TensorFlow's uneven 'same' needs a padded copy.
                c = self.conv
                return self.relu(F.conv2d(x, c.weight, c.bias, c.stride, (top, left), c.dilation, c.groups))
            x = F.pad(x, (left, right, top, bottom))
        return self.relu(self.conv(x))


class Graph(nn.Module):
    """The layer graph of a cnnlite model file. Dense with softmax returns logits (the loss and
    the test-time averaging work on logits, as cnnlite's)."""

    def __init__(self, architecture):
        super().__init__()
        self.layers = architecture["layers"]
        self.modules_ = nn.ModuleDict()
        channels = {"input": architecture["input_shape"][0]}
        features = {}
        for layer in self.layers:
            name, kind, cfg = layer["name"], layer["type"], layer["config"]
            source = layer["inputs"][0]
            if kind == "Conv2D":
                self.modules_[name] = Conv2D(cfg, channels[source])
                channels[name] = int(cfg["filters"])
            elif kind == "BatchNormalization":
                if cfg.get("convention") != "torch":
                    sys.exit(f"layer {name}: BatchNormalization with convention {cfg.get('convention')}; "
                             "only the torch convention is rebuilt")
                self.modules_[name] = nn.BatchNorm2d(channels[source], eps=float(cfg["epsilon"]),
                                                     momentum=float(cfg["momentum"]),
                                                     affine=cfg["scale"] == "true" and cfg["center"] == "true")
                channels[name] = channels[source]
            elif kind == "Dense":
                if cfg.get("activation", "linear") not in ("softmax", "linear"):
                    sys.exit(f"layer {name}: Dense activation {cfg['activation']} is not supported here")
                self.modules_[name] = nn.Linear(features[source], int(cfg["units"]),
                                                bias=cfg.get("use_bias", "true") == "true")
            elif kind == "ReLU":
                self.modules_[name] = nn.ReLU()
                channels[name] = channels[source]
            elif kind == "Add":
                channels[name] = channels[source]
            elif kind == "GlobalAveragePooling2D":
                features[name] = channels[source]
            else:
                sys.exit(f"layer {name}: type {kind} is not supported here")

    def forward(self, x):
        values = {"input": x}
        for layer in self.layers:
            name, kind, inputs = layer["name"], layer["type"], layer["inputs"]
            h = values[inputs[0]]
            if name in self.modules_:
                h = self.modules_[name](h)
            elif kind == "Add":
                for other in inputs[1:]:
                    h = h + values[other]
            elif kind == "GlobalAveragePooling2D":
                h = h.mean(dim=(2, 3))
            values[name] = h
        return values[self.layers[-1]["name"]]

    def load_cnnlite_weights(self, path, header=None):
        """The file's tensors, by cnnlite's names (PyTorch's layouts), in the dtype the file
        holds (cast the module afterwards for another). `<bn>.num_batches_tracked` (0-d I64)
        becomes the BatchNorm2d's; files from before format version 3 have none and leave it 0."""
        if header is None:
            header, _ = read_header(path)
        version = int(header.get("__metadata__", {}).get("format_version", "0"))
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            blob = f.read()[size:]
        state = {}
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            if entry["dtype"] not in DTYPES:
                sys.exit(f"{path}: tensor {key} has dtype {entry['dtype']}; a model file holds F32, F64 or I64")
            if (entry["dtype"] == "I64") != key.endswith(".num_batches_tracked"):
                sys.exit(f"{path}: tensor {key} has dtype {entry['dtype']}; only num_batches_tracked is I64")
            begin, end = entry["data_offsets"]
            array = np.frombuffer(blob[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
            layer, parameter = key.rsplit(".", 1)
            if layer not in self.modules_:
                sys.exit(f"{path}: tensor {key} belongs to no layer of the graph")
            inner = "conv." if isinstance(self.modules_[layer], Conv2D) else ""
            state[f"modules_.{layer}.{inner}{parameter}"] = torch.from_numpy(array.copy())
        missing, unexpected = self.load_state_dict(state, strict=False)
        if version < 3:
            missing = [m for m in missing if not m.endswith("num_batches_tracked")]
        if missing or unexpected:
            sys.exit(f"weights do not fit the graph: missing {missing}, unexpected {unexpected}")


def load_graph(path):
    """A model file's graph with its weights, in eval mode (BatchNorm uses the stored running
    statistics): (graph, architecture)."""
    header, _, architecture = read_architecture(path)
    graph = Graph(architecture)
    graph.load_cnnlite_weights(path, header)
    return graph.eval(), architecture
