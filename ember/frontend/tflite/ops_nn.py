"""TFLite converters: convolutions, pooling, dense layers, elementwise ops, softmax.

Each converter takes a :class:`~ember.frontend.tflite.context.TFLiteNode` and
returns one value per operator output (NHWC semantics; NCHW inside for convs
and pools)::

    CONV_2D(x, filter (O, KH, KW, I), bias)  ->  nn.conv2d on x in NCHW, OIHW weight
"""

from __future__ import annotations

import numpy as np

from ember.frontend.nhwc import Value, tf_padding
from ember.frontend.tflite.context import PADDING, TFLiteNode, activation, converter
from ember.frontend.tflite.schema import read_options

# ----------------------------------------------------------------------------- conv, pool, dense

CONV_OPTIONS = {
    "padding": (4, "b", 0),
    "stride_w": (6, "i", 1),
    "stride_h": (8, "i", 1),
    "act": (10, "b", 0),
    "dilation_w": (12, "i", 1),
    "dilation_h": (14, "i", 1),
}
DEPTHWISE_OPTIONS = {
    "padding": (4, "b", 0),
    "stride_w": (6, "i", 1),
    "stride_h": (8, "i", 1),
    "depth_multiplier": (10, "i", 0),
    "act": (12, "b", 0),
    "dilation_w": (14, "i", 1),
    "dilation_h": (16, "i", 1),
}


def _conv(node: TFLiteNode, weight_oihw: np.ndarray, groups: int, opts: dict) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    _, h, w, _ = x.shape
    strides = (opts["stride_h"], opts["stride_w"])
    dilation = (opts["dilation_h"], opts["dilation_w"])
    kernel = weight_oihw.shape[2:]
    padding = tf_padding(PADDING[opts["padding"]], (h, w), kernel, strides, dilation)
    args = [b.add_weight(node.input_name(1), weight_oihw)]
    bias = node.optional(2)
    if bias is not None:
        args.append(b.expr(bias, node.input_name(2)))
    out = b.nchw_call(
        "nn.conv2d",
        x,
        args,
        name,
        strides=strides,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    return [activation(node, out, opts["act"])]


@converter("CONV_2D")
def _conv_2d(node: TFLiteNode) -> list[Value]:
    opts = read_options(node.options, CONV_OPTIONS)
    weight = node.const(1, "filter")  # (O, KH, KW, I)
    channels = node.input(0).shape[3]
    if channels % weight.shape[3]:
        raise node.error(
            f"input has {channels} channels, not a multiple of the filter's {weight.shape[3]}"
        )
    return _conv(node, np.transpose(weight, (0, 3, 1, 2)), channels // weight.shape[3], opts)


@converter("DEPTHWISE_CONV_2D")
def _depthwise_conv_2d(node: TFLiteNode) -> list[Value]:
    opts = read_options(node.options, DEPTHWISE_OPTIONS)
    weight = node.const(1, "filter")  # (1, KH, KW, C*M); output channel c*M + m
    channels = node.input(0).shape[3]
    # (C*M, 1, KH, KW) with groups=C: group c computes output channels c*M .. c*M+M-1
    return _conv(node, np.transpose(weight, (3, 0, 1, 2)), channels, opts)


@converter("TRANSPOSE_CONV")
def _transpose_conv(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    opts = read_options(
        node.options, {"padding": (4, "b", 0), "stride_w": (6, "i", 1), "stride_h": (8, "i", 1)}
    )
    opts["act"] = read_options(node.options, {"act": (10, "b", 0)})["act"]
    out_shape = [int(d) for d in node.const(0, "output shape")]
    weight = node.const(1, "filter")  # (O, KH, KW, I)
    x = node.input(2)
    strides = (opts["stride_h"], opts["stride_w"])
    pads, out_pads = [], []
    for axis in range(2):
        size, k, s, out = (
            x.shape[1 + axis],
            weight.shape[1 + axis],
            strides[axis],
            out_shape[1 + axis],
        )
        total = max((size - 1) * s + k - out, 0) if PADDING[opts["padding"]] == "SAME" else 0
        pads.append((total // 2, total - total // 2))
        out_pads.append(out - ((size - 1) * s + k - total))
    args = [b.add_weight(node.input_name(1), np.transpose(weight, (3, 0, 1, 2)))]
    bias = node.optional(3)
    if bias is not None:
        args.append(b.expr(bias, node.input_name(3)))
    out = b.nchw_call(
        "nn.conv2d_transpose",
        x,
        args,
        name,
        strides=strides,
        padding=(pads[0][0], pads[1][0], pads[0][1], pads[1][1]),
        output_padding=tuple(out_pads),
    )
    return [activation(node, out, opts["act"])]


@converter("FULLY_CONNECTED")
def _fully_connected(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    opts = read_options(node.options, {"act": (4, "b", 0), "keep_num_dims": (8, "?", False)})
    x, weight = node.input(0), node.input(1)  # weight (N, K)
    units, depth = weight.shape
    data = b.fold_or_expr(x, name)
    if len(x.shape) != 2 or x.shape[1] != depth:
        data = b.fold_or_expr(
            b.apply("reshape", [data], f"{name}/flatten", newshape=(-1, depth)), name
        )
    args = [data, b.expr(weight, node.input_name(1))]
    bias = node.optional(2)
    if bias is not None:
        args.append(b.expr(bias, node.input_name(2)))
    out = b.apply("nn.dense", args, name)
    if opts["keep_num_dims"] and len(x.shape) != 2:
        newshape = (*x.shape[:-1], units)
        out = b.apply(
            "reshape", [b.fold_or_expr(out, name)], f"{name}/unflatten", newshape=newshape
        )
    return [activation(node, out, opts["act"])]


POOL_OPTIONS = {
    "padding": (4, "b", 0),
    "stride_w": (6, "i", 1),
    "stride_h": (8, "i", 1),
    "filter_w": (10, "i", 1),
    "filter_h": (12, "i", 1),
    "act": (14, "b", 0),
}


@converter("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    opts = read_options(node.options, POOL_OPTIONS)
    x = node.input(0)
    kernel, strides = (opts["filter_h"], opts["filter_w"]), (opts["stride_h"], opts["stride_w"])
    padding = tf_padding(PADDING[opts["padding"]], x.shape[1:3], kernel, strides)
    if node.op == "MAX_POOL_2D":
        out = b.nchw_call(
            "nn.max_pool2d", x, [], name, pool_size=kernel, strides=strides, padding=padding
        )
    else:  # TF averages over the valid (unpadded) part of each window
        out = b.nchw_call(
            "nn.avg_pool2d",
            x,
            [],
            name,
            pool_size=kernel,
            strides=strides,
            padding=padding,
            count_include_pad=False,
        )
    return [activation(node, out, opts["act"])]


@converter("LOCAL_RESPONSE_NORMALIZATION")
def _lrn(node: TFLiteNode) -> list[Value]:
    opts = read_options(
        node.options,
        {
            "radius": (4, "i", 0),
            "bias": (6, "f", 0.0),
            "alpha": (8, "f", 0.0),
            "beta": (10, "f", 0.0),
        },
    )
    size = 2 * opts["radius"] + 1
    # TF sums alpha * x^2 over the window; ember (ONNX) uses alpha / size
    return [
        node.builder.nchw_call(
            "nn.lrn",
            node.input(0),
            [],
            node.name,
            size=size,
            alpha=opts["alpha"] * size,
            beta=opts["beta"],
            bias=opts["bias"],
            axis=1,
        )
    ]


# ----------------------------------------------------------------------------- elementwise

UNARY = {
    "LOGISTIC": ("sigmoid", {}),
    "TANH": ("tanh", {}),
    "RELU": ("nn.relu", {}),
    "RELU6": ("clip", {"a_min": 0.0, "a_max": 6.0}),
    "RELU_N1_TO_1": ("clip", {"a_min": -1.0, "a_max": 1.0}),
    "RELU_0_TO_1": ("clip", {"a_min": 0.0, "a_max": 1.0}),
    "HARD_SWISH": ("nn.hard_swish", {}),
    "EXP": ("exp", {}),
    "LOG": ("log", {}),
    "SQRT": ("sqrt", {}),
    "RSQRT": ("rsqrt", {}),
    "ABS": ("abs", {}),
    "NEG": ("negative", {}),
    "FLOOR": ("floor", {}),
    "CEIL": ("ceil", {}),
    "ROUND": ("round", {}),
    "SIN": ("sin", {}),
    "COS": ("cos", {}),
    "ELU": ("nn.elu", {}),
    "LOGICAL_NOT": ("logical_not", {}),
    "SIGN": ("sign", {}),
    "QUANTIZE": ("identity", {}),  # the value is re-rounded to the output grid afterwards
}


@converter(*UNARY)
def _unary(node: TFLiteNode) -> list[Value]:
    ember_op, attrs = UNARY[node.op]
    x = node.input(0)
    if node.op == "QUANTIZE":
        return [x]
    return [node.builder.unary(ember_op, x, node.name, **attrs)]


@converter("DEQUANTIZE")
def _dequantize(node: TFLiteNode) -> list[Value]:
    x = node.input(0)  # constants are dequantized when read; float16 ones need a cast
    if x.dtype == "float32":
        return [x]
    return [node.builder.unary("cast", x, node.name, dtype="float32")]


@converter("LEAKY_RELU")
def _leaky_relu(node: TFLiteNode) -> list[Value]:
    alpha = read_options(node.options, {"alpha": (4, "f", 0.0)})["alpha"]
    return [node.builder.unary("nn.leaky_relu", node.input(0), node.name, alpha=alpha)]


@converter("GELU")
def _gelu(node: TFLiteNode) -> list[Value]:
    approx = read_options(node.options, {"approximate": (4, "?", False)})["approximate"]
    mode = "tanh" if approx else "none"
    return [node.builder.unary("nn.gelu", node.input(0), node.name, approximate=mode)]


@converter("SQUARE")
def _square(node: TFLiteNode) -> list[Value]:
    x = node.input(0)
    return [node.builder.binary("multiply", x, x, node.name)]


@converter("CAST")
def _cast(node: TFLiteNode) -> list[Value]:
    return [node.builder.unary("cast", node.input(0), node.name, dtype=node.out_dtype())]


BINARY = {
    "ADD": "add",
    "SUB": "subtract",
    "MUL": "multiply",
    "DIV": "divide",
    "MAXIMUM": "maximum",
    "MINIMUM": "minimum",
    "POW": "power",
    "LESS": "less",
    "LESS_EQUAL": "less_equal",
    "GREATER": "greater",
    "GREATER_EQUAL": "greater_equal",
    "EQUAL": "equal",
    "NOT_EQUAL": "not_equal",
    "LOGICAL_AND": "logical_and",
    "LOGICAL_OR": "logical_or",
}
FUSED_BINARY = {"ADD", "SUB", "MUL", "DIV"}  # their options' first field is the activation


@converter(*BINARY)
def _binary(node: TFLiteNode) -> list[Value]:
    name = node.name
    out = node.builder.binary(BINARY[node.op], node.input(0), node.input(1), name)
    if node.op in FUSED_BINARY:
        out = activation(node, out, read_options(node.options, {"act": (4, "b", 0)})["act"])
    return [out]


@converter("SQUARED_DIFFERENCE")
def _squared_difference(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    diff = b.binary("subtract", node.input(0), node.input(1), f"{name}/diff")
    return [b.binary("multiply", diff, diff, name)]


@converter("FLOOR_DIV")
def _floor_div(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x, y = node.input(0), node.input(1)
    if x.dtype != "float32":
        raise node.error(f"FLOOR_DIV on {x.dtype} is not supported (float only)")
    return [b.unary("floor", b.binary("divide", x, y, f"{name}/div"), name)]


@converter("PRELU")
def _prelu(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x, alpha = node.input(0), node.input(1)
    if x.nchw:
        out = b.apply("nn.prelu", [x.expr, b.broadcast_nchw(alpha, name)], name)
        return [Value(expr=out.expr, nchw=True)]
    return [b.apply("nn.prelu", [b.fold_or_expr(x, name), b.expr(alpha, f"{name}/alpha")], name)]


@converter("SOFTMAX", "LOG_SOFTMAX")
def _softmax(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    if node.op == "SOFTMAX":
        beta = read_options(node.options, {"beta": (4, "f", 0.0)})["beta"]
        if beta != 1.0:
            x = b.binary("multiply", x, Value(array=np.asarray(beta, "float32")), f"{name}/beta")
    ember_op = "nn.softmax" if node.op == "SOFTMAX" else "nn.log_softmax"
    if x.nchw:  # softmax over NHWC's last axis is NCHW's channel axis
        return [Value(expr=b.apply(ember_op, [x.expr], name, axis=1).expr, nchw=True)]
    return [b.apply(ember_op, [b.fold_or_expr(x, name)], name, axis=-1)]
