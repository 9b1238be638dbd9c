"""Darknet layer converters: one per section kind, each returning the layer's NCHW output.

    [convolutional] batch_normalize=1 filters=16 size=3 pad=1 activation=leaky
        -> nn.conv2d (no bias) -> nn.batch_norm(scales, biases, mean, var) -> nn.leaky_relu(0.1)

Semantics follow Darknet's C code where it differs from other frameworks:

- ``[maxpool]`` pads by ``padding`` (default ``size - 1``) in total, ``padding // 2``
  before; the output is ``(w + padding - size) // stride + 1`` wide, so
  yolov3-tiny's ``size=2 stride=1`` keeps 13x13 (one column of -inf after);
- batch norm divides by ``sqrt(variance + 1e-5)`` (the maintained AlexeyAB fork;
  pjreddie's ``sqrt(variance) + 1e-6`` differs by under 1e-5 relative);
- ``[yolo]`` outputs its activated feature map, as TVM's importer does: logistic
  on x, y, objectness and class scores, w and h untouched (no box decoding, no
  NMS); ``scale_x_y`` stretches x and y as in Darknet;
- ``[softmax]`` normalizes over all C*H*W values of each group.
"""

from __future__ import annotations

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.darknet.context import DarknetLayer, converter
from ember.graph.ir import Expr

LEAKY_SLOPE = 0.1  # Darknet's leaky activation
BATCH_NORM_EPSILON = 1e-5
SELU_SCALE, SELU_ALPHA = 1.0507, 1.6732  # Darknet's rounded constants


def activate(layer: DarknetLayer, x: Expr, default: str = "linear") -> Expr:
    """``x`` through the section's ``activation``."""
    name = layer.section.text("activation", default)
    suffix = f"/{name}"
    if name == "linear":
        return x
    if name == "leaky":
        return layer.call("nn.leaky_relu", x, suffix=suffix, alpha=LEAKY_SLOPE)
    if name == "relu":
        return layer.call("nn.relu", x, suffix=suffix)
    if name == "relu6":
        return layer.call("clip", x, suffix=suffix, a_min=0.0, a_max=6.0)
    if name == "logistic":
        return layer.call("sigmoid", x, suffix=suffix)
    if name == "tanh":
        return layer.call("tanh", x, suffix=suffix)
    if name == "elu":
        return layer.call("nn.elu", x, suffix=suffix, alpha=1.0)
    if name == "selu":
        elu = layer.call("nn.elu", x, suffix=f"{suffix}/elu", alpha=SELU_ALPHA)
        return layer.call("multiply", elu, scalar(SELU_SCALE, x), suffix=suffix)
    if name == "swish":
        gate = layer.call("sigmoid", x, suffix=f"{suffix}/sigmoid")
        return layer.call("multiply", x, gate, suffix=suffix)
    if name == "mish":  # x * tanh(softplus(x))
        soft = layer.call("nn.softplus", x, suffix=f"{suffix}/softplus")
        return layer.call("multiply", x, layer.call("tanh", soft, suffix=f"{suffix}/tanh"))
    raise layer.option_error(
        "activation",
        f"activation={name} is not supported",
        hint="supported: linear, leaky, relu, relu6, logistic, tanh, elu, selu, swish, mish",
    )


def _batch_norm(layer: DarknetLayer, x: Expr, channels: int, biases: Expr) -> Expr:
    """Darknet's inference batch norm: the layer's biases are its shift (beta)."""
    scales = layer.weight("scales", channels)
    mean = layer.weight("rolling_mean", channels)
    variance = layer.weight("rolling_variance", channels)
    return layer.call(
        "nn.batch_norm", x, scales, biases, mean, variance, suffix="/bn", epsilon=BATCH_NORM_EPSILON
    )


@converter("convolutional", "conv")
def _convolutional(layer: DarknetLayer) -> Expr:
    section = layer.section
    layer.refuse(binary=0, xnor=0, dilation=1, antialiasing=0, deform=0, share_index=-1000)
    _, channels, _, _ = layer.image()
    filters = section.integer("filters", 1)
    size = section.integer("size", 1)
    stride = section.integer("stride", 1)
    strides = (section.integer("stride_y", stride), section.integer("stride_x", stride))
    padding = section.integer("padding", 0)
    if section.integer("pad", 0):  # pad=1 means "size // 2", whatever padding says
        padding = size // 2
    groups = section.integer("groups", 1)
    if filters < 1 or size < 1 or min(strides) < 1:
        raise layer.error(f"filters={filters}, size={size} and stride={stride} must be positive")
    if groups < 1 or channels % groups or filters % groups:
        raise layer.option_error(
            "groups",
            f"groups={groups} must divide the {channels} input channels and the {filters} filters",
        )
    batch_normalize = bool(section.integer("batch_normalize", 0))
    # Darknet's order in the file: biases, [scales, rolling mean, rolling variance], weights
    biases = layer.weight("biases", filters)
    bn_weights = None
    if batch_normalize:
        bn_weights = [
            layer.weight(w, filters) for w in ("scales", "rolling_mean", "rolling_variance")
        ]
    shape = (filters, channels // groups, size, size)
    weights = layer.weight("weights", int(np.prod(shape)), shape)
    attrs = {"strides": strides, "padding": (padding,) * 4, "groups": groups}
    if bn_weights is None:
        out = layer.call("nn.conv2d", layer.input, weights, biases, suffix="/conv", **attrs)
    else:
        out = layer.call("nn.conv2d", layer.input, weights, suffix="/conv", **attrs)
        scales, mean, variance = bn_weights
        out = layer.call(
            "nn.batch_norm",
            out,
            scales,
            biases,
            mean,
            variance,
            suffix="/bn",
            epsilon=BATCH_NORM_EPSILON,
        )
    return activate(layer, out, default="logistic")


@converter("connected")
def _connected(layer: DarknetLayer) -> Expr:
    """A dense layer over the flattened C*H*W input; output (N, outputs, 1, 1)."""
    shape = shape_of(layer.input)
    inputs = int(np.prod(shape[1:]))
    outputs = layer.section.integer("output", 1)
    flat = layer.call("reshape", layer.input, suffix="/flatten", newshape=(shape[0], inputs))
    biases = layer.weight("biases", outputs)
    stored = (inputs, outputs) if layer.reader.transposed else (outputs, inputs)
    weights = layer.weight("weights", inputs * outputs, stored)
    if layer.reader.transposed:
        weights = layer.call("transpose", weights, suffix="/weights_t", axes=(1, 0))
    if layer.section.integer("batch_normalize", 0):
        out = layer.call("nn.dense", flat, weights, suffix="/dense")
        out = _batch_norm(layer, out, outputs, biases)
    else:
        out = layer.call("nn.dense", flat, weights, biases, suffix="/dense")
    out = activate(layer, out, default="logistic")
    return layer.call("reshape", out, newshape=(shape[0], outputs, 1, 1))


@converter("maxpool", "max")
def _maxpool(layer: DarknetLayer) -> Expr:
    section = layer.section
    layer.refuse(maxpool_depth=0, antialiasing=0)
    _, _, height, width = layer.image()
    stride = section.integer("stride", 1)
    strides = (section.integer("stride_y", stride), section.integer("stride_x", stride))
    size = section.integer("size", stride)
    padding = section.integer("padding", size - 1)
    before = padding // 2  # Darknet starts each window at -padding/2
    out = [(extent + padding - size) // s + 1 for extent, s in zip((height, width), strides)]
    if min(out) < 1:
        raise layer.error(
            f"a {size}x{size} window with padding {padding} does not fit the {height}x{width} input"
        )
    after = [
        max(0, (o - 1) * s + size - extent - before)
        for o, s, extent in zip(out, strides, (height, width))
    ]
    return layer.call(
        "nn.max_pool2d",
        layer.input,
        pool_size=(size, size),
        strides=strides,
        padding=(before, before, after[0], after[1]),
    )


@converter("avgpool", "avg")
def _avgpool(layer: DarknetLayer) -> Expr:
    layer.image()
    return layer.call("nn.global_avg_pool2d", layer.input)


@converter("upsample")
def _upsample(layer: DarknetLayer) -> Expr:
    _, _, height, width = layer.image()
    stride = layer.section.integer("stride", 2)
    if stride < 1:
        raise layer.option_error(
            "stride", f"stride={stride}: a downsampling [upsample] is not supported"
        )
    out = layer.call(
        "image.resize2d",
        layer.input,
        suffix="/nearest",
        size=(height * stride, width * stride),
        method="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    scale = layer.section.number("scale", 1.0)
    return out if scale == 1.0 else layer.call("multiply", out, scalar(scale, out))


@converter("route")
def _route(layer: DarknetLayer) -> Expr:
    """Earlier layers' outputs concatenated along channels (each split by groups/group_id)."""
    groups = layer.section.integer("groups", 1)
    group_id = layer.section.integer("group_id", 0)
    if groups < 1 or not 0 <= group_id < groups:
        raise layer.option_error("group_id", f"group_id={group_id} must be in [0, groups={groups})")
    pieces = []
    for reference in layer.section.integers("layers"):
        x = layer.layer(reference, "layers")
        shape = shape_of(x)
        if groups > 1:
            if len(shape) != 4 or shape[1] % groups:
                raise layer.option_error(
                    "groups", f"groups={groups} does not divide the {shape[1]} channels of {shape}"
                )
            part = shape[1] // groups
            x = layer.call(
                "strided_slice",
                x,
                suffix=f"/group{len(pieces)}",
                begin=(group_id * part,),
                end=((group_id + 1) * part,),
                axes=(1,),
            )
        pieces.append(x)
    if not pieces:
        raise layer.option_error("layers", "layers= names no layer")
    spatial = {shape_of(p)[2:] for p in pieces}
    if len(spatial) > 1:
        raise layer.option_error(
            "layers",
            f"the routed layers have different sizes {sorted(spatial)}; Darknet concatenates "
            "channels of equal-sized maps",
        )
    return pieces[0] if len(pieces) == 1 else layer.call("concatenate", *pieces, axis=1)


@converter("shortcut")
def _shortcut(layer: DarknetLayer) -> Expr:
    """The previous output plus earlier ones (``from``), then the activation."""
    section = layer.section
    if section.text("weights_type", "none") != "none":
        raise layer.option_error("weights_type", "weighted shortcuts are not supported")
    alpha, beta = section.number("alpha", 1.0), section.number("beta", 1.0)
    out = layer.input
    if alpha != 1.0:
        out = layer.call("multiply", out, scalar(alpha, out), suffix="/alpha")
    for i, reference in enumerate(section.integers("from")):
        other = layer.layer(reference, "from")
        if shape_of(other) != shape_of(out):
            raise layer.option_error(
                "from",
                f"from={reference} has shape {shape_of(other)}, the input {shape_of(out)}; ember "
                "supports shortcuts between maps of one shape",
            )
        if beta != 1.0:
            other = layer.call("multiply", other, scalar(beta, other), suffix=f"/beta{i}")
        out = layer.call("add", out, other, suffix=f"/add{i}")
    return activate(layer, out)


@converter("yolo")
def _yolo(layer: DarknetLayer) -> Expr:
    """The activated map: logistic on x, y and the objectness/class scores of each anchor."""
    section = layer.section
    layer.refuse(new_coords=0)
    batch, channels, height, width = layer.image()
    classes = section.integer("classes", 20)
    anchors = len(section.integers("mask", list(range(section.integer("num", 1)))))
    per_anchor = 5 + classes
    if channels != anchors * per_anchor:
        raise layer.error(
            f"the input has {channels} channels; {anchors} anchors x (5 + {classes} classes) "
            f"need {anchors * per_anchor}",
            hint="the convolution before [yolo] needs filters=(classes + 5) * len(mask)",
        )
    grid = layer.call(
        "reshape",
        layer.input,
        suffix="/anchors",
        newshape=(batch, anchors, per_anchor, height, width),
    )

    def entries(begin: int, end: int, name: str) -> Expr:
        return layer.call(
            "strided_slice", grid, suffix=f"/{name}", begin=(begin,), end=(end,), axes=(2,)
        )

    xy = layer.call("sigmoid", entries(0, 2, "xy"), suffix="/xy_logistic")
    scale = section.number("scale_x_y", 1.0)
    if scale != 1.0:  # Darknet: x * scale - (scale - 1) / 2
        xy = layer.call("multiply", xy, scalar(scale, xy), suffix="/xy_scale")
        xy = layer.call("subtract", xy, scalar(0.5 * (scale - 1.0), xy), suffix="/xy_shift")
    wh = entries(2, 4, "wh")
    scores = layer.call("sigmoid", entries(4, per_anchor, "scores"), suffix="/scores_logistic")
    joined = layer.call("concatenate", xy, wh, scores, suffix="/joined", axis=2)
    return layer.call("reshape", joined, newshape=(batch, channels, height, width))


@converter("softmax")
def _softmax(layer: DarknetLayer) -> Expr:
    """Softmax over each group of the flattened C*H*W values, divided by ``temperature``."""
    section = layer.section
    if section.has("tree"):
        raise layer.option_error("tree", "hierarchical softmax (tree=) is not supported")
    shape = shape_of(layer.input)
    inputs = int(np.prod(shape[1:]))
    groups = section.integer("groups", 1)
    if groups < 1 or inputs % groups:
        raise layer.option_error("groups", f"groups={groups} does not divide the {inputs} inputs")
    x = layer.call(
        "reshape", layer.input, suffix="/groups", newshape=(shape[0], groups, inputs // groups)
    )
    temperature = section.number("temperature", 1.0)
    if temperature != 1.0:
        x = layer.call("divide", x, scalar(temperature, x), suffix="/temperature")
    x = layer.call("nn.softmax", x, suffix="/softmax", axis=2)
    return layer.call("reshape", x, newshape=shape)


@converter("dropout", "cost")
def _identity(layer: DarknetLayer) -> Expr:
    """Dropout scales only while training; a cost layer passes its input on."""
    return layer.input


__all__ = ["activate"]
