"""MXNet converters: convolutions, dense layers, batch norm, activations, softmax, pooling.

Defaults follow MXNet 1.x (note ``BatchNorm.fix_gamma=True``, ``eps=1e-3`` and
``Deconvolution.no_bias=True``)::

    Convolution(kernel="(3, 3)", pad="(1, 1)")  ->  nn.conv2d(x, w, b, padding=(1, 1, 1, 1))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.mxnet.context import ConverterFn, MXNetNode, converter
from ember.graph.ir import Expr, const


def _spatial(node: MXNetNode, key: str, default: int, rank: int) -> tuple[int, int]:
    value = node.ints(key) or (default,) * rank
    if len(value) != 2:
        raise node.error(
            f"attribute {key}={value} is not 2-D; ember supports 2-D convolution and pooling only"
        )
    return value[0], value[1]


# ----------------------------------------------------------------------------- convolution


@converter("Convolution")
def _convolution(node: MXNetNode) -> Expr:
    kernel = node.ints("kernel")
    if len(kernel) != 2:
        raise node.error(f"kernel {kernel} is not 2-D; ember supports 2-D convolution only")
    if node.get("layout", "NCHW") not in ("NCHW", None):
        raise node.error(f"layout {node.get('layout')} is not supported (only NCHW)")
    pad = _spatial(node, "pad", 0, 2)
    args = [node.input(0), node.input(1)]
    if not node.flag("no_bias", False):
        args.append(node.input(2))
    return node.call(
        "nn.conv2d",
        *args,
        strides=_spatial(node, "stride", 1, 2),
        padding=(pad[0], pad[1], pad[0], pad[1]),
        dilation=_spatial(node, "dilate", 1, 2),
        groups=int(node.get("num_group", 1)),
    )


@converter("Deconvolution")
def _deconvolution(node: MXNetNode) -> Expr:
    kernel = node.ints("kernel")
    if len(kernel) != 2:
        raise node.error(f"kernel {kernel} is not 2-D; ember supports 2-D deconvolution only")
    if node.ints("target_shape"):
        raise node.error(
            "target_shape is not supported", hint="export the model with explicit pad and adj"
        )
    pad = _spatial(node, "pad", 0, 2)
    args = [node.input(0), node.input(1)]
    if not node.flag("no_bias", True):  # MXNet's default differs from Convolution's
        args.append(node.input(2))
    return node.call(
        "nn.conv2d_transpose",
        *args,
        strides=_spatial(node, "stride", 1, 2),
        padding=(pad[0], pad[1], pad[0], pad[1]),
        output_padding=_spatial(node, "adj", 0, 2),
        dilation=_spatial(node, "dilate", 1, 2),
        groups=int(node.get("num_group", 1)),
    )


@converter("FullyConnected")
def _fully_connected(node: MXNetNode) -> Expr:
    data = node.input(0)
    if node.flag("flatten", True) and len(shape_of(data)) != 2:
        data = node.call("flatten", data, suffix="/flatten", axis=1)
    args = [data, node.input(1)]
    if not node.flag("no_bias", False):
        args.append(node.input(2))
    return node.call("nn.dense", *args)


@converter("BatchNorm", "BatchNorm_v1")
def _batch_norm(node: MXNetNode) -> Expr | list[Expr]:
    data, gamma, beta, mean, var = (node.input(i) for i in range(5))
    if node.flag("fix_gamma", True):
        # fix_gamma ignores the stored gamma (it may hold anything) and uses 1
        gamma = const(np.ones(shape_of(gamma), dtype=gamma.type.dtype), name=f"{node.name}/one")
    out = node.call(
        "nn.batch_norm",
        data,
        gamma,
        beta,
        mean,
        var,
        epsilon=node.number("eps", 1e-3),
        axis=int(node.get("axis", 1)),
    )
    if node.flag("output_mean_var", False):
        return [out, mean, var]
    return out


# ----------------------------------------------------------------------------- activations


def _softsign(node: MXNetNode, x: Expr) -> Expr:
    denom = node.call("add", node.call("abs", x, suffix="/abs"), scalar(1, x), suffix="/denom")
    return node.call("divide", x, denom)


@converter("Activation")
def _activation(node: MXNetNode) -> Expr:
    act = node.required("act_type")
    x = node.input(0)
    ops = {"relu": "nn.relu", "sigmoid": "sigmoid", "tanh": "tanh", "softrelu": "nn.softplus"}
    if act in ops:
        return node.call(ops[act], x)
    if act == "softsign":
        return _softsign(node, x)
    raise node.error(f"act_type {act!r} is not supported (supported: {', '.join(ops)}, softsign)")


@converter("LeakyReLU")
def _leaky_relu(node: MXNetNode) -> Expr:
    act = node.get("act_type", "leaky")
    x = node.input(0)
    if act == "leaky":
        return node.call("nn.leaky_relu", x, alpha=node.number("slope", 0.25))
    if act == "rrelu":  # inference uses the mean of the random slope's range
        slope = (node.number("lower_bound", 0.125) + node.number("upper_bound", 0.334)) / 2
        return node.call("nn.leaky_relu", x, alpha=slope)
    if act == "elu":
        return node.call("nn.elu", x, alpha=node.number("slope", 0.25))
    if act == "selu":
        return node.call("nn.selu", x)
    if act == "gelu":
        return node.call("nn.gelu", x)  # MXNet 1.x's GELU is the exact (erf) form
    if act == "prelu":
        slope = node.input(1)
        rank, slope_shape = len(shape_of(x)), shape_of(slope)
        if rank > 2 and len(slope_shape) == 1 and slope_shape[0] > 1:
            # per-channel slopes (C,) apply along axis 1: make them (C, 1, ..., 1)
            slope = node.call(
                "reshape", slope, suffix="/slope", newshape=(slope_shape[0],) + (1,) * (rank - 2)
            )
        return node.call("nn.prelu", x, slope)
    raise node.error(
        f"act_type {act!r} is not supported (supported: leaky, prelu, rrelu, elu, selu, gelu)"
    )


_UNARY = {
    "relu": "nn.relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "rsqrt": "rsqrt",
    "abs": "abs",
    "negative": "negative",
    "floor": "floor",
    "ceil": "ceil",
    "reciprocal": "reciprocal",
    "erf": "erf",
    "sin": "sin",
    "cos": "cos",
    "sign": "sign",
}


def _unary(op: str) -> ConverterFn:
    return lambda node: node.call(op, node.input(0))


for _mx_name, _ember_name in _UNARY.items():
    converter(_mx_name)(_unary(_ember_name))


@converter("square")
def _square(node: MXNetNode) -> Expr:
    return node.call("multiply", node.input(0), node.input(0))


@converter("softsign")
def _softsign_op(node: MXNetNode) -> Expr:
    return _softsign(node, node.input(0))


@converter("clip")
def _clip(node: MXNetNode) -> Expr:
    return node.call(
        "clip",
        node.input(0),
        a_min=node.number("a_min", -math.inf),
        a_max=node.number("a_max", math.inf),
    )


@converter("Dropout", "_copy", "identity", "BlockGrad", "stop_gradient", "make_loss", "MakeLoss")
def _passthrough(node: MXNetNode) -> Expr:
    return node.input(0)  # inference: these are the identity


# ----------------------------------------------------------------------------- softmax


@converter("softmax", "log_softmax")
def _softmax(node: MXNetNode) -> Expr:
    x = node.input(0)
    temperature = node.get("temperature")
    if temperature is not None and float(temperature) != 1.0:
        x = node.call("divide", x, scalar(float(temperature), x), suffix="/temperature")
    op = "nn.softmax" if node.op == "softmax" else "nn.log_softmax"
    return node.call(op, x, axis=int(node.get("axis", -1)))


def _softmax_flat(node: MXNetNode, x: Expr) -> Expr:
    """Softmax over all axes but the batch axis (MXNet's 'instance' mode)."""
    shape = shape_of(x)
    flat = node.call("reshape", x, suffix="/flatten", newshape=(shape[0], -1))
    soft = node.call("nn.softmax", flat, suffix="/softmax", axis=1)
    return node.call("reshape", soft, newshape=shape)


@converter("SoftmaxOutput", "Softmax")
def _softmax_output(node: MXNetNode) -> Expr:
    x = node.input(0)
    shape = shape_of(x)
    if node.flag("preserve_shape", False):
        return node.call("nn.softmax", x, axis=-1)
    if len(shape) <= 2 or node.flag("multi_output", False):
        return node.call("nn.softmax", x, axis=1)
    # without multi_output MXNet normalizes over everything but the batch axis
    return _softmax_flat(node, x)


@converter("SoftmaxActivation")
def _softmax_activation(node: MXNetNode) -> Expr:
    x = node.input(0)
    shape = shape_of(x)
    if node.get("mode", "instance") == "channel" or len(shape) <= 2:
        return node.call("nn.softmax", x, axis=1)
    return _softmax_flat(node, x)


@converter("LinearRegressionOutput", "MAERegressionOutput")
def _regression_output(node: MXNetNode) -> Expr:
    return node.input(0)


@converter("LogisticRegressionOutput")
def _logistic_output(node: MXNetNode) -> Expr:
    return node.call("sigmoid", node.input(0))


# ----------------------------------------------------------------------------- pooling


def _pool_out(size: int, kernel: int, stride: int, pad: int, full: bool) -> int:
    span = size + 2 * pad - kernel
    return (-(-span // stride) if full else span // stride) + 1


@converter("Pooling", "Pooling_v1")
def _pooling(node: MXNetNode) -> Expr:
    x = node.input(0)
    pool_type = node.get("pool_type", "max")
    if pool_type not in ("max", "avg", "sum"):
        raise node.error(f"pool_type {pool_type!r} is not supported (max, avg, sum)")
    if len(shape_of(x)) != 4:
        raise node.error(f"input has shape {shape_of(x)}; ember supports 2-D (NCHW) pooling only")
    if node.flag("global_pool", False):
        if pool_type == "sum":
            return node.call("reduce_sum", x, axes=(2, 3), keepdims=True)
        return node.call(
            "nn.global_max_pool2d" if pool_type == "max" else "nn.global_avg_pool2d", x
        )
    kernel = node.ints("kernel")
    if len(kernel) != 2:
        raise node.error(f"kernel {kernel} is not 2-D; ember supports 2-D pooling only")
    stride = _spatial(node, "stride", 1, 2)
    pad = _spatial(node, "pad", 0, 2)
    convention = node.get("pooling_convention", "valid")
    if convention not in ("valid", "full"):
        raise node.error(f"pooling_convention {convention!r} is not supported (valid, full)")
    full = convention == "full"
    height, width = shape_of(x)[2:]
    expected = (
        _pool_out(height, kernel[0], stride[0], pad[0], full),
        _pool_out(width, kernel[1], stride[1], pad[1], full),
    )
    if pool_type == "sum":
        out = _sum_pool(node, x, kernel, stride, pad, expected)
    else:
        attrs: dict[str, Any] = {
            "pool_size": kernel,
            "strides": stride,
            "padding": (pad[0], pad[1], pad[0], pad[1]),
            "ceil_mode": full,
        }
        if pool_type == "avg":
            attrs["count_include_pad"] = node.flag("count_include_pad", True)
        out = node.call("nn.max_pool2d" if pool_type == "max" else "nn.avg_pool2d", x, **attrs)
    if shape_of(out)[2:] != expected:
        raise node.error(
            f"MXNet's output size {expected} differs from ember's {shape_of(out)[2:]} for this "
            "pooling (a 'full' window that starts past the padded input)",
            hint="use pooling_convention='valid' or change the padding",
        )
    return out


def _sum_pool(node: MXNetNode, x: Expr, kernel, stride, pad, expected) -> Expr:
    """Sum pooling: a depthwise convolution with an all-ones kernel."""
    channels, height, width = shape_of(x)[1:]
    # padding past the input on the bottom/right makes room for 'full' windows
    extra_h = max((expected[0] - 1) * stride[0] + kernel[0] - height - 2 * pad[0], 0)
    extra_w = max((expected[1] - 1) * stride[1] + kernel[1] - width - 2 * pad[1], 0)
    ones = const(
        np.ones((channels, 1) + tuple(kernel), dtype=x.type.dtype), name=f"{node.name}/ones"
    )
    return node.call(
        "nn.conv2d",
        x,
        ones,
        strides=stride,
        padding=(pad[0], pad[1], pad[0] + extra_h, pad[1] + extra_w),
        groups=channels,
    )


@converter("LRN")
def _lrn(node: MXNetNode) -> Expr:
    return node.call(
        "nn.lrn",
        node.input(0),
        size=int(node.required("nsize")),
        alpha=node.number("alpha", 1e-4),
        beta=node.number("beta", 0.75),
        bias=node.number("knorm", 2.0),
    )


@converter("UpSampling")
def _upsampling(node: MXNetNode) -> Expr:
    if node.get("sample_type", "nearest") != "nearest":
        raise node.error("only sample_type='nearest' is supported")
    if int(node.get("num_args", 1)) != 1:
        raise node.error("UpSampling of several inputs is not supported")
    x = node.input(0)
    scale = int(node.required("scale"))
    height, width = shape_of(x)[2:]
    return node.call(
        "image.resize2d",
        x,
        size=(height * scale, width * scale),
        method="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
