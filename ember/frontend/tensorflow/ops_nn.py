"""TensorFlow converters: convolutions, pooling, normalization, elementwise ops, softmax, calls.

Each converter takes a :class:`~ember.frontend.tensorflow.context.TFNode` and
returns the node's output values (NHWC semantics; NCHW inside for convs and
pools)::

    Conv2D(x, filter (KH, KW, I, O), padding="SAME")  ->  nn.conv2d on x in NCHW, OIHW weight
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.frontend.common import int_list
from ember.frontend.nhwc import Value, tf_padding
from ember.frontend.tensorflow.context import FREEZE_HINT, TFNode, converter
from ember.frontend.tensorflow.proto import DTYPES


def _hw(values: list[int], fmt: str) -> tuple[int, int]:
    """The (h, w) entries of a 4-element strides / ksize / dilations list."""
    return (values[1], values[2]) if fmt == "NHWC" else (values[2], values[3])


@converter("Placeholder")
def _placeholder(node: TFNode) -> list[Value]:
    return [node.importer.placeholder(node)]


@converter("Const")
def _const(node: TFNode) -> list[Value]:
    value = node.attrs.get("value")
    if value is None or value.dtype == object:
        raise node.error("it holds no numeric value")
    return [Value(array=value)]


@converter("Identity", "StopGradient", "Snapshot", "PreventGradient", "PlaceholderWithDefault")
def _identity(node: TFNode) -> list[Value]:
    return [node.input(0)]


@converter("IdentityN")
def _identity_n(node: TFNode) -> list[Value]:
    return [node.input(k) for k in range(len(node.inputs()))]


@converter("NoOp")
def _no_op(node: TFNode) -> list[Value]:
    return []


# ----------------------------------------------------------------------------- conv, pool, norm


def _conv_padding(node: TFNode, hw: tuple[int, int], kernel, strides, dilation, fmt: str):
    mode = node.attrs.get("padding", "VALID")
    if mode == "EXPLICIT":
        pads = int_list(node.attrs.get("explicit_paddings", []))
        pairs = [pads[2 * i : 2 * i + 2] for i in range(4)]
        (top, bottom), (left, right) = (
            (pairs[1], pairs[2]) if fmt == "NHWC" else (pairs[2], pairs[3])
        )
        return (top, left, bottom, right)
    if mode not in ("SAME", "VALID"):
        raise node.error(f"padding {mode} is not supported")
    return tf_padding(mode, hw, kernel, strides, dilation)


def _conv(node: TFNode, weight_oihw: np.ndarray, groups: int) -> list[Value]:
    b, fmt = node.builder, node.data_format()
    x = node.input(0)
    strides = _hw(int_list(node.attrs.get("strides", [1, 1, 1, 1])), fmt)
    dilation = _hw(int_list(node.attrs.get("dilations", [1, 1, 1, 1])), fmt)
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:4]
    padding = _conv_padding(node, hw, weight_oihw.shape[2:], strides, dilation, fmt)
    weight = b.add_weight(node.inputs()[1].split(":")[0], weight_oihw)
    attrs = dict(strides=strides, padding=padding, dilation=dilation, groups=groups)
    if fmt == "NCHW":
        return [b.apply("nn.conv2d", [b.expr(x, node.name), weight], node.name, **attrs)]
    return [b.nchw_call("nn.conv2d", x, [weight], node.name, **attrs)]


def _channels(x: Value, node: TFNode) -> int:
    return x.shape[3] if node.data_format() == "NHWC" else x.shape[1]


@converter("Conv2D")
def _conv2d(node: TFNode) -> list[Value]:
    weight = node.const(1, "filter")  # (KH, KW, I, O)
    channels = _channels(node.input(0), node)
    if channels % weight.shape[2]:
        raise node.error(
            f"{channels} input channels do not divide into groups of {weight.shape[2]}"
        )
    return _conv(node, np.transpose(weight, (3, 2, 0, 1)), channels // weight.shape[2])


@converter("DepthwiseConv2dNative")
def _depthwise(node: TFNode) -> list[Value]:
    weight = node.const(1, "filter")  # (KH, KW, C, M): output channel c*M + m
    kh, kw, channels, multiplier = weight.shape
    oihw = np.transpose(weight.reshape(kh, kw, channels * multiplier), (2, 0, 1))[:, None]
    return _conv(node, oihw, channels)


@converter("Conv2DBackpropInput")
def _conv2d_transpose(node: TFNode) -> list[Value]:
    b, fmt = node.builder, node.data_format()
    if fmt != "NHWC":
        raise node.error("only NHWC is supported")
    out_shape = int_list(node.const(0, "output shape"))
    weight = node.const(1, "filter")  # (KH, KW, O, I)
    x = node.input(2)
    strides = _hw(int_list(node.attrs.get("strides", [1, 1, 1, 1])), fmt)
    mode = node.attrs.get("padding", "VALID")
    pads, out_pads = [], []
    for axis in range(2):
        size, k, s = x.shape[1 + axis], weight.shape[axis], strides[axis]
        total = max((size - 1) * s + k - out_shape[1 + axis], 0) if mode == "SAME" else 0
        pads.append((total // 2, total - total // 2))
        out_pads.append(out_shape[1 + axis] - ((size - 1) * s + k - total))
    w = b.add_weight(node.inputs()[1].split(":")[0], np.transpose(weight, (3, 2, 0, 1)))
    padding = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    return [
        b.nchw_call(
            "nn.conv2d_transpose",
            x,
            [w],
            node.name,
            strides=strides,
            padding=padding,
            output_padding=tuple(out_pads),
        )
    ]


@converter("BiasAdd", "BiasAddV1")
def _bias_add(node: TFNode) -> list[Value]:
    x, bias = node.input(0), node.input(1)
    if node.data_format() == "NCHW" and len(x.shape) == 4 and bias.array is not None:
        bias = Value(array=bias.array.reshape(-1, 1, 1))
    return [node.builder.binary("add", x, bias, node.name)]


@converter("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_batch_norm(node: TFNode) -> list[Value]:
    b = node.builder
    if node.attrs.get("is_training", False):
        raise node.error(
            "it is in training mode",
            hint="export the model for inference (call it with training=False)",
        )
    x = node.input(0)
    stats = [b.expr(node.input(k), f"{node.name}/{k}") for k in range(1, 5)]
    eps = float(node.attrs.get("epsilon", 1e-3))
    if node.data_format() == "NCHW":
        args = [b.expr(x, node.name), *stats]
        return [b.apply("nn.batch_norm", args, node.name, epsilon=eps, axis=1)]
    if len(x.shape) != 4:
        args = [b.expr(x, node.name), *stats]
        return [b.apply("nn.batch_norm", args, node.name, epsilon=eps, axis=-1)]
    return [b.nchw_call("nn.batch_norm", x, stats, node.name, epsilon=eps, axis=1)]


@converter("MaxPool", "AvgPool")
def _pool(node: TFNode) -> list[Value]:
    b, fmt = node.builder, node.data_format()
    x = node.input(0)
    kernel = _hw(int_list(node.attrs.get("ksize", [1, 1, 1, 1])), fmt)
    strides = _hw(int_list(node.attrs.get("strides", [1, 1, 1, 1])), fmt)
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:4]
    attrs: dict[str, Any] = {
        "pool_size": kernel,
        "strides": strides,
        "padding": _conv_padding(node, hw, kernel, strides, (1, 1), fmt),
    }
    op = "nn.max_pool2d"
    if node.op == "AvgPool":  # TF averages over the valid part of each window
        op, attrs["count_include_pad"] = "nn.avg_pool2d", False
    if fmt == "NCHW":
        return [b.apply(op, [b.expr(x, node.name)], node.name, **attrs)]
    return [b.nchw_call(op, x, [], node.name, **attrs)]


@converter("LRN")
def _lrn(node: TFNode) -> list[Value]:
    size = 2 * int(node.attrs.get("depth_radius", 5)) + 1
    attrs = dict(
        size=size,
        alpha=float(node.attrs.get("alpha", 1.0)) * size,  # TF: alpha * sum; ONNX: alpha / size
        beta=float(node.attrs.get("beta", 0.5)),
        bias=float(node.attrs.get("bias", 1.0)),
        axis=1,
    )
    return [node.builder.nchw_call("nn.lrn", node.input(0), [], node.name, **attrs)]


@converter("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _matmul(node: TFNode) -> list[Value]:
    b = node.builder
    x, w = node.input(0), node.input(1)
    ta = node.attrs.get("transpose_a", node.attrs.get("adj_x", False))
    tb = node.attrs.get("transpose_b", node.attrs.get("adj_y", False))
    if node.op == "MatMul" and not ta and w.array is not None:
        weight = w.array if tb else w.array.T  # nn.dense takes (N, K)
        args = [b.fold_or_expr(x, node.name), b.expr(Value(array=weight), f"{node.name}/weight")]
        return [b.apply("nn.dense", args, node.name)]
    args = []
    for k, (value, flip) in enumerate(((x, ta), (w, tb))):
        expr = b.fold_or_expr(value, f"{node.name}/{k}")
        if flip:
            rank = len(value.shape)
            axes = (*range(rank - 2), rank - 1, rank - 2)
            expr = b.fold_or_expr(b.apply("transpose", [expr], f"{node.name}/t{k}", axes=axes), "")
        args.append(expr)
    return [b.apply("nn.matmul", args, node.name)]


# ----------------------------------------------------------------------------- elementwise

UNARY = {
    "Relu": ("nn.relu", {}),
    "Relu6": ("clip", {"a_min": 0.0, "a_max": 6.0}),
    "Elu": ("nn.elu", {}),
    "Selu": ("nn.selu", {}),
    "Softplus": ("nn.softplus", {}),
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "Exp": ("exp", {}),
    "Log": ("log", {}),
    "Sqrt": ("sqrt", {}),
    "Rsqrt": ("rsqrt", {}),
    "Neg": ("negative", {}),
    "Abs": ("abs", {}),
    "Floor": ("floor", {}),
    "Ceil": ("ceil", {}),
    "Round": ("round", {}),
    "Sign": ("sign", {}),
    "Reciprocal": ("reciprocal", {}),
    "Inv": ("reciprocal", {}),
    "Erf": ("erf", {}),
    "Sin": ("sin", {}),
    "Cos": ("cos", {}),
    "LogicalNot": ("logical_not", {}),
}


@converter(*UNARY)
def _unary(node: TFNode) -> list[Value]:
    op, attrs = UNARY[node.op]
    return [node.builder.unary(op, node.input(0), node.name, **attrs)]


@converter("LeakyRelu")
def _leaky_relu(node: TFNode) -> list[Value]:
    alpha = float(node.attrs.get("alpha", 0.2))
    return [node.builder.unary("nn.leaky_relu", node.input(0), node.name, alpha=alpha)]


@converter("Square")
def _square(node: TFNode) -> list[Value]:
    x = node.input(0)
    return [node.builder.binary("multiply", x, x, node.name)]


@converter("Cast")
def _cast(node: TFNode) -> list[Value]:
    dtype = DTYPES.get(node.attrs.get("DstT", 1))
    if dtype is None:
        raise node.error(f"target dtype {node.attrs.get('DstT')} is not supported")
    return [node.builder.unary("cast", node.input(0), node.name, dtype=dtype)]


BINARY = {
    "Add": "add",
    "AddV2": "add",
    "Sub": "subtract",
    "Mul": "multiply",
    "RealDiv": "divide",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Pow": "power",
    "Less": "less",
    "LessEqual": "less_equal",
    "Greater": "greater",
    "GreaterEqual": "greater_equal",
    "Equal": "equal",
    "NotEqual": "not_equal",
    "LogicalAnd": "logical_and",
    "LogicalOr": "logical_or",
}


@converter(*BINARY)
def _binary(node: TFNode) -> list[Value]:
    return [node.builder.binary(BINARY[node.op], node.input(0), node.input(1), node.name)]


@converter("Div", "FloorDiv")
def _div(node: TFNode) -> list[Value]:
    b = node.builder
    x, y = node.input(0), node.input(1)
    if x.dtype.startswith("float"):
        out = b.binary("divide", x, y, node.name if node.op == "Div" else f"{node.name}/div")
        return [out if node.op == "Div" else b.unary("floor", out, node.name)]
    if x.array is not None and y.array is not None:  # integer shape arithmetic
        return [Value(array=np.floor_divide(x.array, y.array).astype(x.dtype))]
    raise node.error(f"{node.op} on {x.dtype} tensors is not supported")


@converter("SquaredDifference")
def _squared_difference(node: TFNode) -> list[Value]:
    b = node.builder
    diff = b.binary("subtract", node.input(0), node.input(1), f"{node.name}/diff")
    return [b.binary("multiply", diff, diff, node.name)]


@converter("AddN")
def _add_n(node: TFNode) -> list[Value]:
    values = [node.input(k) for k in range(len(node.inputs()))]
    out = values[0]
    for k, value in enumerate(values[1:], 1):
        out = node.builder.binary(
            "add", out, value, node.name if k == len(values) - 1 else f"{node.name}/{k}"
        )
    return [out]


@converter("Softmax", "LogSoftmax")
def _softmax(node: TFNode) -> list[Value]:
    b = node.builder
    x = node.input(0)
    op = "nn.softmax" if node.op == "Softmax" else "nn.log_softmax"
    if x.nchw:  # the last NHWC axis is NCHW's channel axis
        return [Value(expr=b.apply(op, [x.expr], node.name, axis=1).expr, nchw=True)]
    return [b.apply(op, [b.fold_or_expr(x, node.name)], node.name, axis=-1)]


@converter("_FunctionArg")
def _function_arg(node: TFNode) -> list[Value]:
    return [node.importer.bound[node.name]]


@converter("PartitionedCall", "StatefulPartitionedCall")
def _call(node: TFNode) -> list[Value]:
    return node.importer.call_function(
        node.node_def, [node.input(k) for k in range(len(node.inputs()))]
    )


@converter("Erfc")
def _erfc(node: TFNode) -> list[Value]:
    b = node.builder
    erf = b.unary("erf", node.input(0), f"{node.name}/erf")
    return [b.binary("subtract", Value(array=np.asarray(1.0, np.float32)), erf, node.name)]


@converter("VarHandleOp")
def _var_handle(node: TFNode) -> list[Value]:
    """A resource variable: its value comes from a SavedModel's checkpoint."""
    if node.name not in node.importer.variables:
        raise node.error(
            "the graph holds variables, so it is not frozen, and no checkpoint gives their values",
            hint=FREEZE_HINT + "\n  or pass the SavedModel directory",
        )
    return [Value(array=node.importer.variables[node.name])]


@converter("ReadVariableOp")
def _read_variable(node: TFNode) -> list[Value]:
    return [node.input(0)]
