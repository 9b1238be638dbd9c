"""Darknet fixtures made in the test: cfg + weights from random arrays, and a torch forward pass.

Nothing here uses ember's Darknet parser. A network is a list of ``(kind,
options)`` layers; :func:`write_model` writes its ``.cfg`` text and a
``.weights`` file laid out as Darknet's ``save_weights`` writes it (header: int32
major, minor, revision, then ``seen`` as uint64 from version 0.2 on, int32
before; then per layer, convolutional: biases, [scales, rolling mean, rolling
variance], weights (filters, channels/groups, size, size); connected: biases,
weights (outputs, inputs), [scales, rolling mean, rolling variance]).
:func:`reference_forward` runs the same layers with torch, from Darknet's C
semantics (maxpool windows start at -padding/2 and reach
``(w + padding - size) / stride + 1`` outputs, batch norm divides by
sqrt(variance + 1e-5), yolo applies the logistic to x, y, objectness and classes).

The architectures are the real cfgs (yolov3-tiny, darknet19, tiny-darknet),
with ``divisor`` shrinking every filter count for the fast tests.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Layer = tuple[str, dict[str, Any]]

# ----------------------------------------------------------------------------- architectures


def conv(
    filters: int, size: int, stride: int = 1, bn: int = 1, act: str = "leaky", **extra
) -> Layer:
    options = {"batch_normalize": bn, "filters": filters, "size": size, "stride": stride, "pad": 1}
    return ("convolutional", {**options, "activation": act, **extra})


def maxpool(size: int = 2, stride: int = 2, **extra) -> Layer:
    return ("maxpool", {"size": size, "stride": stride, **extra})


def yolov3_tiny(divisor: int = 1, classes: int = 80) -> list[Layer]:
    """cfg/yolov3-tiny.cfg; filter counts / ``divisor`` (the heads keep 3 * (classes + 5))."""
    f = lambda n: max(n // divisor, 1)  # noqa: E731
    head = 3 * (classes + 5)
    yolo = {"anchors": "10,14, 23,27, 37,58, 81,82, 135,169, 344,319", "classes": classes, "num": 6}
    return [
        conv(f(16), 3), maxpool(),                              # 0, 1
        conv(f(32), 3), maxpool(),                              # 2, 3
        conv(f(64), 3), maxpool(),                              # 4, 5
        conv(f(128), 3), maxpool(),                             # 6, 7
        conv(f(256), 3), maxpool(),                             # 8, 9
        conv(f(512), 3), maxpool(2, 1),                         # 10, 11: size=2 stride=1
        conv(f(1024), 3),                                       # 12
        conv(f(256), 1), conv(f(512), 3),                       # 13, 14
        conv(head, 1, bn=0, act="linear"),                      # 15
        ("yolo", {"mask": "3,4,5", **yolo}),                    # 16
        ("route", {"layers": "-4"}),                            # 17
        conv(f(128), 1), ("upsample", {"stride": 2}),           # 18, 19
        ("route", {"layers": "-1, 8"}),                         # 20
        conv(f(256), 3), conv(head, 1, bn=0, act="linear"),     # 21, 22
        ("yolo", {"mask": "0,1,2", **yolo}),                    # 23
    ]  # fmt: skip


def darknet19(divisor: int = 1, classes: int = 1000) -> list[Layer]:
    """cfg/darknet19.cfg."""
    f = lambda n: max(n // divisor, 1)  # noqa: E731
    layers = [conv(f(32), 3), maxpool(), conv(f(64), 3), maxpool()]
    layers += [conv(f(128), 3), conv(f(64), 1), conv(f(128), 3), maxpool()]
    layers += [conv(f(256), 3), conv(f(128), 1), conv(f(256), 3), maxpool()]
    layers += [conv(f(512), 3), conv(f(256), 1), conv(f(512), 3), conv(f(256), 1)]
    layers += [conv(f(512), 3), maxpool()]
    layers += [conv(f(1024), 3), conv(f(512), 1), conv(f(1024), 3), conv(f(512), 1)]
    layers += [conv(f(1024), 3), conv(classes, 1, bn=0, act="linear")]
    return layers + [("avgpool", {}), ("softmax", {"groups": 1}), ("cost", {"type": "sse"})]


def tiny_darknet(divisor: int = 1, classes: int = 1000) -> list[Layer]:
    """cfg/tiny.cfg (tiny-darknet)."""
    f = lambda n: max(n // divisor, 1)  # noqa: E731
    layers = [conv(f(16), 3), maxpool(), conv(f(32), 3), maxpool()]
    layers += [conv(f(16), 1), conv(f(128), 3), conv(f(16), 1), conv(f(128), 3), maxpool()]
    layers += [conv(f(32), 1), conv(f(256), 3), conv(f(32), 1), conv(f(256), 3), maxpool()]
    layers += [conv(f(64), 1), conv(f(512), 3), conv(f(64), 1), conv(f(512), 3)]
    layers += [conv(f(128), 1), conv(classes, 1, bn=0, act="linear")]
    return layers + [("avgpool", {}), ("softmax", {"groups": 1})]


def feature_net() -> list[Layer]:
    """The options the classic nets leave alone: yolov4-tiny's grouped routes, scale_x_y,
    shortcuts, grouped and strided convs, every activation, explicit maxpool padding,
    upsample scale, connected layers with and without batch norm, softmax groups."""
    anchors = {"anchors": "1,1, 2,2, 3,3"}
    return [
        conv(8, 3, 2, act="mish"),                                   # 0: 16 -> 8
        conv(8, 3, act="swish", groups=2),                           # 1
        ("route", {"layers": "-1", "groups": 2, "group_id": 1}),     # 2: 4 channels
        conv(4, 3, act="relu"),                                      # 3
        ("shortcut", {"from": "-2", "activation": "leaky"}),         # 4
        ("route", {"layers": "-1, -4"}),                             # 5: 12 channels
        conv(6, 1, bn=0, act="logistic"),                            # 6
        maxpool(3, 2, padding=2),                                    # 7: 8 -> 4
        ("upsample", {"stride": 2, "scale": 0.5}),                   # 8
        conv(12, 1, bn=0, act="tanh"),                               # 9
        ("yolo", {"mask": "0,1", "classes": 1, "num": 3, "scale_x_y": 1.05, **anchors}),  # 10
        ("route", {"layers": "7"}),                                  # 11
        ("dropout", {"probability": 0.5}),                           # 12
        ("connected", {"output": 10, "activation": "relu6", "batch_normalize": 1}),  # 13
        ("connected", {"output": 12, "activation": "elu"}),          # 14
        ("softmax", {"groups": 3, "temperature": 2.0}),              # 15
        ("connected", {"output": 6, "activation": "linear"}),        # 16
        ("yolo", {"mask": "0", "classes": 1, "num": 1, "anchors": "4,4"}),  # 17
    ]  # fmt: skip


# ----------------------------------------------------------------------------- files


def cfg_text(net: dict[str, Any], layers: list[Layer]) -> str:
    lines = ["[net]", "# Testing", "batch=1", "subdivisions=1"]
    lines += [f"{k}={v}" for k, v in net.items()] + [""]
    for kind, options in layers:
        lines += [f"[{kind}]"] + [f"{k} = {v}" for k, v in options.items()] + [""]
    return "\n".join(lines)


def random_weights(
    layers: list[Layer], channels: int, height: int, width: int, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """Each layer's arrays, sized by walking the shapes as Darknet's make_*_layer does."""
    shapes: list[tuple[int, int, int]] = []
    arrays: list[dict[str, np.ndarray]] = []
    c, h, w = channels, height, width
    for index, (kind, o) in enumerate(layers):
        found: dict[str, np.ndarray] = {}
        if kind == "convolutional":
            n, size, groups = o["filters"], o["size"], o.get("groups", 1)
            found["biases"] = rng.normal(0, 0.5, n)
            if o.get("batch_normalize"):
                found["scales"] = rng.uniform(0.5, 1.5, n)
                found["rolling_mean"] = rng.normal(0, 0.3, n)
                found["rolling_variance"] = rng.uniform(0.5, 2.0, n)
            fan_in = c // groups * size * size
            found["weights"] = rng.normal(0, 1 / np.sqrt(fan_in), (n, c // groups, size, size))
            pad = size // 2 if o.get("pad") else o.get("padding", 0)
            h, w = (h + 2 * pad - size) // o["stride"] + 1, (w + 2 * pad - size) // o["stride"] + 1
            c = n
        elif kind == "connected":
            inputs, outputs = c * h * w, o["output"]
            found["biases"] = rng.normal(0, 0.5, outputs)
            found["weights"] = rng.normal(0, 1 / np.sqrt(inputs), (outputs, inputs))
            if o.get("batch_normalize"):
                found["scales"] = rng.uniform(0.5, 1.5, outputs)
                found["rolling_mean"] = rng.normal(0, 0.3, outputs)
                found["rolling_variance"] = rng.uniform(0.5, 2.0, outputs)
            c, h, w = outputs, 1, 1
        elif kind == "maxpool":
            size, stride = o["size"], o["stride"]
            padding = o.get("padding", size - 1)
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
        elif kind == "avgpool":
            h = w = 1
        elif kind == "upsample":
            h, w = h * o["stride"], w * o["stride"]
        elif kind == "route":
            refs = [int(r) for r in str(o["layers"]).split(",")]
            picked = [shapes[r if r >= 0 else index + r] for r in refs]
            c = sum(p[0] for p in picked) // o.get("groups", 1)
            h, w = picked[0][1], picked[0][2]
        shapes.append((c, h, w))
        arrays.append({k: v.astype(np.float32) for k, v in found.items()})
    return arrays


def weights_bytes(
    layers: list[Layer], arrays: list[dict[str, np.ndarray]], version: tuple[int, int, int]
) -> bytes:
    major, minor, revision = version
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    chunks = [struct.pack("<3i", major, minor, revision)]
    chunks.append(struct.pack("<Q", 32013312) if wide else struct.pack("<i", 32013312))
    transposed = major > 1000 or minor > 1000
    for (kind, _), found in zip(layers, arrays):
        if kind == "convolutional":
            order = ["biases", "scales", "rolling_mean", "rolling_variance", "weights"]
        elif kind == "connected":
            order = ["biases", "weights", "scales", "rolling_mean", "rolling_variance"]
        else:
            continue
        for key in order:
            if key in found:
                value = (
                    found[key].T
                    if kind == "connected" and key == "weights" and transposed
                    else found[key]
                )
                chunks.append(np.ascontiguousarray(value, "<f4").tobytes())
    return b"".join(chunks)


def write_model(
    folder: Path,
    name: str,
    layers: list[Layer],
    input_chw: tuple[int, int, int],
    seed: int = 0,
    version: tuple[int, int, int] = (0, 2, 0),
) -> tuple[Path, Path, list[dict[str, np.ndarray]]]:
    """Write ``name.cfg`` and ``name.weights`` in ``folder``; (cfg, weights, arrays)."""
    c, h, w = input_chw
    arrays = random_weights(layers, c, h, w, np.random.default_rng(seed))
    cfg = folder / f"{name}.cfg"
    cfg.write_text(cfg_text({"width": w, "height": h, "channels": c}, layers))
    weights = folder / f"{name}.weights"
    weights.write_bytes(weights_bytes(layers, arrays, version))
    return cfg, weights, arrays


# ----------------------------------------------------------------------------- forward pass


def _activate(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "linear":
        return x
    table = {
        "leaky": lambda t: torch.where(t > 0, t, 0.1 * t),
        "relu": torch.relu,
        "relu6": lambda t: t.clamp(0, 6),
        "logistic": torch.sigmoid,
        "tanh": torch.tanh,
        "elu": F.elu,
        "swish": lambda t: t * torch.sigmoid(t),
        "mish": lambda t: t * torch.tanh(F.softplus(t)),
    }
    return table[name](x)


def _batch_norm(x: torch.Tensor, found: dict[str, torch.Tensor]) -> torch.Tensor:
    shape = (1, -1) + (1,) * (x.dim() - 2)
    normalized = (x - found["rolling_mean"].view(shape)) / torch.sqrt(
        found["rolling_variance"].view(shape) + 1e-5
    )
    return normalized * found["scales"].view(shape) + found["biases"].view(shape)


def reference_forward(
    layers: list[Layer], arrays: list[dict[str, np.ndarray]], x: np.ndarray
) -> list[np.ndarray]:
    """The yolo layers' outputs (or the last layer's, flattened when 1x1), by torch in float64."""
    value = torch.from_numpy(x).double()
    outs: list[torch.Tensor] = []
    for index, ((kind, o), found_np) in enumerate(zip(layers, arrays)):
        found = {k: torch.from_numpy(v).double() for k, v in found_np.items()}
        if kind == "convolutional":
            pad = o["size"] // 2 if o.get("pad") else o.get("padding", 0)
            bias = None if o.get("batch_normalize") else found["biases"]
            value = F.conv2d(value, found["weights"], bias, o["stride"], pad, 1, o.get("groups", 1))
            if o.get("batch_normalize"):
                value = _batch_norm(value, found)
            value = _activate(value, o.get("activation", "logistic"))
        elif kind == "connected":
            flat = value.reshape(value.shape[0], -1)
            if o.get("batch_normalize"):
                value = _batch_norm(flat @ found["weights"].T, found)
            else:
                value = flat @ found["weights"].T + found["biases"]
            value = _activate(value, o.get("activation", "logistic"))[:, :, None, None]
        elif kind == "maxpool":
            size, stride = o["size"], o["stride"]
            padding = o.get("padding", size - 1)
            out_h = (value.shape[2] + padding - size) // stride + 1
            out_w = (value.shape[3] + padding - size) // stride + 1
            before = padding // 2
            padded = F.pad(value, (before, padding, before, padding), value=-np.inf)
            value = F.max_pool2d(padded, size, stride)[:, :, :out_h, :out_w]
        elif kind == "avgpool":
            value = value.mean(dim=(2, 3), keepdim=True)
        elif kind == "upsample":
            s = o["stride"]
            value = value.repeat_interleave(s, 2).repeat_interleave(s, 3) * o.get("scale", 1.0)
        elif kind == "route":
            parts = []
            for r in str(o["layers"]).split(","):
                source = outs[int(r) if int(r) >= 0 else index + int(r)]
                groups = o.get("groups", 1)
                parts.append(source.chunk(groups, dim=1)[o.get("group_id", 0)])
            value = torch.cat(parts, 1)
        elif kind == "shortcut":
            value = _activate(value + outs[index + int(o["from"])], o.get("activation", "linear"))
        elif kind == "yolo":
            n, c, h, w = value.shape
            grid = value.reshape(n, -1, 5 + o["classes"], h, w).clone()
            scale = o.get("scale_x_y", 1.0)
            grid[:, :, :2] = torch.sigmoid(grid[:, :, :2]) * scale - 0.5 * (scale - 1)
            grid[:, :, 4:] = torch.sigmoid(grid[:, :, 4:])
            value = grid.reshape(n, c, h, w)
        elif kind == "softmax":
            groups = o.get("groups", 1)
            flat = value.reshape(value.shape[0], groups, -1) / o.get("temperature", 1.0)
            value = torch.softmax(flat, -1).reshape(value.shape)
        outs.append(value)
    heads = [i for i, (kind, _) in enumerate(layers) if kind == "yolo"]
    results = [outs[i] for i in heads] or [outs[-1]]
    if not heads and results[0].dim() == 4 and results[0].shape[2:] == (1, 1):
        results = [results[0].flatten(1)]
    return [r.float().numpy() for r in results]
