"""TFLite operator converters: one function per builtin op, in :data:`CONVERTERS`.

Each converter takes the :class:`~ember.frontend.tflite.TFLiteConverter` and the
operator, and returns one :class:`Value` per operator output (NHWC semantics;
NCHW inside for convs and pools). Options tables are read by their vtable
offsets in ``schema.fbs`` (4 = first field, 6 = second, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.tensorflow_common import Value, tf_padding
from ember.frontend.tflite_schema import read_options

Converter = Callable[[Any, Any], list[Value]]
CONVERTERS: dict[str, Converter] = {}

PADDING = {0: "SAME", 1: "VALID"}


def converter(*opcodes: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for opcode in opcodes:
            CONVERTERS[opcode] = fn
        return fn

    return register


def activation(c: Any, value: Value, code: int, name: str) -> Value:
    """Apply a fused activation (ActivationFunctionType)."""
    b = c.builder
    if code == 0:
        return value
    if code == 1:
        return b.unary("nn.relu", value, f"{name}/relu")
    if code == 2:
        return b.unary("clip", value, f"{name}/relu_n1_to_1", a_min=-1.0, a_max=1.0)
    if code == 3:
        return b.unary("clip", value, f"{name}/relu6", a_min=0.0, a_max=6.0)
    if code == 4:
        return b.unary("tanh", value, f"{name}/tanh")
    raise FrontendError(
        f"TFLite node {name!r}: fused activation {code} (SIGN_BIT) is not supported"
    )


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


def _conv(c: Any, op: Any, weight_oihw: np.ndarray, groups: int, opts: dict) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    _, h, w, _ = x.shape
    strides = (opts["stride_h"], opts["stride_w"])
    dilation = (opts["dilation_h"], opts["dilation_w"])
    kernel = weight_oihw.shape[2:]
    padding = tf_padding(PADDING[opts["padding"]], (h, w), kernel, strides, dilation)
    args = [b.weight(c.tensor(op.inputs[1]).name, weight_oihw)]
    bias = c.optional(op, 2)
    if bias is not None:
        args.append(b.expr(bias, c.tensor(op.inputs[2]).name))
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
    return [activation(c, out, opts["act"], name)]


@converter("CONV_2D")
def _conv_2d(c: Any, op: Any) -> list[Value]:
    opts = read_options(op.options, CONV_OPTIONS)
    weight = c.const(op, 1, "filter")  # (O, KH, KW, I)
    channels = c.input(op, 0).shape[3]
    if channels % weight.shape[3]:
        raise FrontendError(
            f"TFLite CONV_2D {c.out_name(op)!r}: input has {channels} channels, not a multiple of "
            f"the filter's {weight.shape[3]}"
        )
    return _conv(c, op, np.transpose(weight, (0, 3, 1, 2)), channels // weight.shape[3], opts)


@converter("DEPTHWISE_CONV_2D")
def _depthwise_conv_2d(c: Any, op: Any) -> list[Value]:
    opts = read_options(op.options, DEPTHWISE_OPTIONS)
    weight = c.const(op, 1, "filter")  # (1, KH, KW, C*M); output channel c*M + m
    channels = c.input(op, 0).shape[3]
    # (C*M, 1, KH, KW) with groups=C: group c computes output channels c*M .. c*M+M-1
    return _conv(c, op, np.transpose(weight, (3, 0, 1, 2)), channels, opts)


@converter("TRANSPOSE_CONV")
def _transpose_conv(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    opts = read_options(
        op.options, {"padding": (4, "b", 0), "stride_w": (6, "i", 1), "stride_h": (8, "i", 1)}
    )
    opts["act"] = read_options(op.options, {"act": (10, "b", 0)})["act"]
    out_shape = [int(d) for d in c.const(op, 0, "output shape")]
    weight = c.const(op, 1, "filter")  # (O, KH, KW, I)
    x = c.input(op, 2)
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
    args = [b.weight(c.tensor(op.inputs[1]).name, np.transpose(weight, (3, 0, 1, 2)))]
    bias = c.optional(op, 3)
    if bias is not None:
        args.append(b.expr(bias, c.tensor(op.inputs[3]).name))
    out = b.nchw_call(
        "nn.conv2d_transpose",
        x,
        args,
        name,
        strides=strides,
        padding=(pads[0][0], pads[1][0], pads[0][1], pads[1][1]),
        output_padding=tuple(out_pads),
    )
    return [activation(c, out, opts["act"], name)]


@converter("FULLY_CONNECTED")
def _fully_connected(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    opts = read_options(op.options, {"act": (4, "b", 0), "keep_num_dims": (8, "?", False)})
    x, weight = c.input(op, 0), c.input(op, 1)  # weight (N, K)
    units, depth = weight.shape
    data = b.fold_or_expr(x, name)
    if len(x.shape) != 2 or x.shape[1] != depth:
        data = b.fold_or_expr(
            b.call("reshape", [data], f"{name}/flatten", newshape=(-1, depth)), name
        )
    args = [data, b.expr(weight, c.tensor(op.inputs[1]).name)]
    bias = c.optional(op, 2)
    if bias is not None:
        args.append(b.expr(bias, c.tensor(op.inputs[2]).name))
    out = b.call("nn.dense", args, name)
    if opts["keep_num_dims"] and len(x.shape) != 2:
        newshape = (*x.shape[:-1], units)
        out = b.call("reshape", [b.fold_or_expr(out, name)], f"{name}/unflatten", newshape=newshape)
    return [activation(c, out, opts["act"], name)]


POOL_OPTIONS = {
    "padding": (4, "b", 0),
    "stride_w": (6, "i", 1),
    "stride_h": (8, "i", 1),
    "filter_w": (10, "i", 1),
    "filter_h": (12, "i", 1),
    "act": (14, "b", 0),
}


@converter("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    opts = read_options(op.options, POOL_OPTIONS)
    x = c.input(op, 0)
    kernel, strides = (opts["filter_h"], opts["filter_w"]), (opts["stride_h"], opts["stride_w"])
    padding = tf_padding(PADDING[opts["padding"]], x.shape[1:3], kernel, strides)
    if op.opcode == "MAX_POOL_2D":
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
    return [activation(c, out, opts["act"], name)]


@converter("LOCAL_RESPONSE_NORMALIZATION")
def _lrn(c: Any, op: Any) -> list[Value]:
    opts = read_options(
        op.options,
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
        c.builder.nchw_call(
            "nn.lrn",
            c.input(op, 0),
            [],
            c.out_name(op),
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
def _unary(c: Any, op: Any) -> list[Value]:
    ember_op, attrs = UNARY[op.opcode]
    x = c.input(op, 0)
    if op.opcode == "QUANTIZE":
        return [x]
    return [c.builder.unary(ember_op, x, c.out_name(op), **attrs)]


@converter("DEQUANTIZE")
def _dequantize(c: Any, op: Any) -> list[Value]:
    x = c.input(op, 0)  # constants are dequantized when read; float16 ones need a cast
    if x.dtype == "float32":
        return [x]
    return [c.builder.unary("cast", x, c.out_name(op), dtype="float32")]


@converter("LEAKY_RELU")
def _leaky_relu(c: Any, op: Any) -> list[Value]:
    alpha = read_options(op.options, {"alpha": (4, "f", 0.0)})["alpha"]
    return [c.builder.unary("nn.leaky_relu", c.input(op, 0), c.out_name(op), alpha=alpha)]


@converter("GELU")
def _gelu(c: Any, op: Any) -> list[Value]:
    approx = read_options(op.options, {"approximate": (4, "?", False)})["approximate"]
    mode = "tanh" if approx else "none"
    return [c.builder.unary("nn.gelu", c.input(op, 0), c.out_name(op), approximate=mode)]


@converter("SQUARE")
def _square(c: Any, op: Any) -> list[Value]:
    x = c.input(op, 0)
    return [c.builder.binary("multiply", x, x, c.out_name(op))]


@converter("CAST")
def _cast(c: Any, op: Any) -> list[Value]:
    return [c.builder.unary("cast", c.input(op, 0), c.out_name(op), dtype=c.out_dtype(op))]


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
def _binary(c: Any, op: Any) -> list[Value]:
    name = c.out_name(op)
    out = c.builder.binary(BINARY[op.opcode], c.input(op, 0), c.input(op, 1), name)
    if op.opcode in FUSED_BINARY:
        out = activation(c, out, read_options(op.options, {"act": (4, "b", 0)})["act"], name)
    return [out]


@converter("SQUARED_DIFFERENCE")
def _squared_difference(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    diff = b.binary("subtract", c.input(op, 0), c.input(op, 1), f"{name}/diff")
    return [b.binary("multiply", diff, diff, name)]


@converter("FLOOR_DIV")
def _floor_div(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x, y = c.input(op, 0), c.input(op, 1)
    if x.dtype != "float32":
        raise FrontendError(f"TFLite FLOOR_DIV {name!r} on {x.dtype} is not supported (float only)")
    return [b.unary("floor", b.binary("divide", x, y, f"{name}/div"), name)]


@converter("PRELU")
def _prelu(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x, alpha = c.input(op, 0), c.input(op, 1)
    if x.nchw:
        out = b.call("nn.prelu", [x.expr, b.broadcast_nchw(alpha, name)], name)
        return [Value(expr=out.expr, nchw=True)]
    return [b.call("nn.prelu", [b.fold_or_expr(x, name), b.expr(alpha, f"{name}/alpha")], name)]


@converter("SOFTMAX", "LOG_SOFTMAX")
def _softmax(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    if op.opcode == "SOFTMAX":
        beta = read_options(op.options, {"beta": (4, "f", 0.0)})["beta"]
        if beta != 1.0:
            x = b.binary("multiply", x, Value(array=np.asarray(beta, "float32")), f"{name}/beta")
    ember_op = "nn.softmax" if op.opcode == "SOFTMAX" else "nn.log_softmax"
    if x.nchw:  # softmax over NHWC's last axis is NCHW's channel axis
        return [Value(expr=b.call(ember_op, [x.expr], name, axis=1).expr, nchw=True)]
    return [b.call(ember_op, [b.fold_or_expr(x, name)], name, axis=-1)]


from ember.frontend import tflite_ops_tensor  # noqa: E402,F401  (registers the tensor ops)
