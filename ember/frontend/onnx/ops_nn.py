"""ONNX converters: convolutions, pooling, dense layers, normalization and softmax.

ember's conv and pool ops are 2-D (NCHW). 1-D ONNX convs and pools run as 2-D
ones over an inserted height axis of size 1; 3-D ones are reported as
unsupported. ``auto_pad`` is resolved here into explicit
``(top, left, bottom, right)`` padding.
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter, ember_dtype
from ember.graph.ir import Expr

# ----------------------------------------------------------------------------- helpers


def _spatial_rank(node: OnnxNode, rank: int) -> int:
    """Number of spatial dims; only 1 and 2 are supported."""
    spatial = rank - 2
    if spatial not in (1, 2):
        raise node.unsupported(
            f"{spatial}-D {node.op_type} (input rank {rank}) is not supported; "
            "ember has 1-D and 2-D convolutions and pools"
        )
    return spatial


def _to_2d(values: tuple[int, ...] | list[int], spatial: int, fill: int) -> tuple[int, ...]:
    """Per-spatial-axis values of a 1-D op as 2-D ones (height axis gets ``fill``)."""
    return tuple(values) if spatial == 2 else (fill, *values)


def _same_padding(
    in_size: int, kernel: int, stride: int, dilation: int, upper: bool
) -> tuple[int, int]:
    """(before, after) padding for auto_pad SAME_UPPER / SAME_LOWER (output = ceil(in/stride))."""
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


def _window_padding(
    node: OnnxNode,
    in_sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
) -> tuple[int, ...]:
    """Explicit ``(top, left, bottom, right)``-style padding (begins then ends) from the attrs."""
    spatial = len(in_sizes)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [
            _same_padding(
                in_sizes[i], kernel[i], strides[i], dilations[i], auto_pad == "SAME_UPPER"
            )
            for i in range(spatial)
        ]
        return tuple(p[0] for p in pairs) + tuple(p[1] for p in pairs)
    if auto_pad == "VALID":
        return (0,) * (2 * spatial)
    if auto_pad not in ("NOTSET", ""):
        raise node.error(
            f"auto_pad={auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
        )
    pads = tuple(node.attr("pads", (0,) * (2 * spatial)))
    if len(pads) != 2 * spatial:
        raise node.error(f"pads has {len(pads)} values, expected {2 * spatial}")
    return pads


def _pads_to_2d(pads: tuple[int, ...], spatial: int) -> tuple[int, int, int, int]:
    if spatial == 2:
        return pads  # type: ignore[return-value]
    return (0, pads[0], 0, pads[1])


def _lift_1d(node: OnnxNode, x: Expr, spatial: int) -> Expr:
    """Insert a height axis of size 1 so a 1-D op runs as 2-D."""
    return x if spatial == 2 else node.call("expand_dims", x, axes=(2,))


def _lower_1d(node: OnnxNode, y: Expr, spatial: int) -> Expr:
    return y if spatial == 2 else node.call("squeeze", y, axes=(2,))


# ----------------------------------------------------------------------------- conv


@converter("Conv")
def _conv(node: OnnxNode) -> Expr:
    x, weight = node.input(0), node.input(1)  # first: params are made in input order
    return conv(node, x, weight, node.input(2) if node.has_input(2) else None)


def conv(node: OnnxNode, x: Expr, weight: Expr, bias: Expr | None = None) -> Expr:
    """``nn.conv2d`` of ``x`` and ``weight`` with a Conv-like node's attributes (1-D and
    2-D; ConvInteger passes its inputs with the zero points subtracted)."""
    spatial = _spatial_rank(node, len(node.shape(0)))
    kernel = tuple(node.attr("kernel_shape", node.shape(1)[2:]))
    strides = tuple(node.attr("strides", (1,) * spatial))
    dilations = tuple(node.attr("dilations", (1,) * spatial))
    pads = _window_padding(node, node.shape(0)[2:], kernel, strides, dilations)
    args = [_lift_1d(node, x, spatial), _lift_1d(node, weight, spatial)]
    if bias is not None:
        args.append(bias)
    y = node.call(
        "nn.conv2d",
        *args,
        strides=_to_2d(strides, spatial, 1),
        padding=_pads_to_2d(pads, spatial),
        dilation=_to_2d(dilations, spatial, 1),
        groups=node.attr("group", 1),
    )
    return _lower_1d(node, y, spatial)


@converter("ConvTranspose")
def _conv_transpose(node: OnnxNode) -> Expr:
    x, weight = node.input(0), node.input(1)
    spatial = _spatial_rank(node, len(node.shape(0)))
    in_sizes = node.shape(0)[2:]
    kernel = tuple(node.attr("kernel_shape", node.shape(1)[2:]))
    strides = tuple(node.attr("strides", (1,) * spatial))
    dilations = tuple(node.attr("dilations", (1,) * spatial))
    output_padding = list(node.attr("output_padding", (0,) * spatial))
    output_shape = node.attr("output_shape")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        # The ONNX rule: derive pads from the wanted output size (pads attr is ignored).
        wanted = list(output_shape)[-spatial:] if output_shape is not None else None
        if wanted is None:
            wanted = [in_sizes[i] * strides[i] for i in range(spatial)]
        begins, ends = [], []
        for i in range(spatial):
            natural = (
                strides[i] * (in_sizes[i] - 1)
                + output_padding[i]
                + (kernel[i] - 1) * dilations[i]
                + 1
            )
            total = natural - wanted[i]
            if total < 0:  # a larger output than the kernel covers: extend at the end
                output_padding[i] += -total
                total = 0
            small, large = total // 2, total - total // 2
            begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
            begins.append(begin)
            ends.append(end)
        pads = tuple(begins + ends)
    else:
        pads = _window_padding(node, in_sizes, kernel, strides, dilations)
    args = [_lift_1d(node, x, spatial), _lift_1d(node, weight, spatial)]
    if node.has_input(2):
        args.append(node.input(2))
    y = node.call(
        "nn.conv2d_transpose",
        *args,
        strides=_to_2d(strides, spatial, 1),
        padding=_pads_to_2d(pads, spatial),
        output_padding=_to_2d(output_padding, spatial, 0),
        dilation=_to_2d(dilations, spatial, 1),
        groups=node.attr("group", 1),
    )
    return _lower_1d(node, y, spatial)


# ----------------------------------------------------------------------------- pooling


def window_pool(
    node: OnnxNode, op: str, x: Expr | None = None, count_include_pad: bool | None = None
) -> Expr:
    """A 1-D or 2-D pool of ``x`` (default: the node's input) with the node's window attrs."""
    x = node.input(0) if x is None else x
    spatial = _spatial_rank(node, len(node.shape(0)))
    kernel = tuple(node.attr("kernel_shape", ()))
    if len(kernel) != spatial:
        raise node.error(f"kernel_shape {list(kernel)} must have {spatial} values")
    strides = tuple(node.attr("strides", (1,) * spatial))
    dilations = tuple(node.attr("dilations", (1,) * spatial))
    pads = _window_padding(node, node.shape(0)[2:], kernel, strides, dilations)
    attrs = dict(
        pool_size=_to_2d(kernel, spatial, 1),
        strides=_to_2d(strides, spatial, 1),
        padding=_pads_to_2d(pads, spatial),
        dilation=_to_2d(dilations, spatial, 1),
        ceil_mode=bool(node.attr("ceil_mode", 0)),
    )
    if op == "nn.avg_pool2d":
        if count_include_pad is None:
            count_include_pad = bool(node.attr("count_include_pad", 0))
        attrs["count_include_pad"] = count_include_pad
    y = node.call(op, _lift_1d(node, x, spatial), **attrs)
    return _lower_1d(node, y, spatial)


@converter("MaxPool", min_version=8)
def _max_pool(node: OnnxNode) -> Expr:
    node.reject_attr("storage_order", 0, "ember's MaxPool has no Indices output")
    if node.num_outputs > 1:
        raise node.unsupported("the Indices output of MaxPool is not supported")
    return window_pool(node, "nn.max_pool2d")


@converter("AveragePool", min_version=7)
def _avg_pool(node: OnnxNode) -> Expr:
    return window_pool(node, "nn.avg_pool2d")


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node: OnnxNode) -> Expr:
    x = node.input(0)
    rank = len(node.shape(0))
    if rank == 4:
        op = (
            "nn.global_avg_pool2d"
            if node.op_type == "GlobalAveragePool"
            else "nn.global_max_pool2d"
        )
        return node.call(op, x)
    reduce = "reduce_mean" if node.op_type == "GlobalAveragePool" else "reduce_max"
    return node.call(reduce, x, axes=tuple(range(2, rank)), keepdims=True)


@converter("LRN")
def _lrn(node: OnnxNode) -> Expr:
    return node.call(
        "nn.lrn",
        node.input(0),
        size=node.attr("size"),
        alpha=node.attr("alpha", 1e-4),
        beta=node.attr("beta", 0.75),
        bias=node.attr("bias", 1.0),
        axis=1,
    )


# ----------------------------------------------------------------------------- dense


@converter("MatMul")
def _matmul(node: OnnxNode) -> Expr:
    return node.call("nn.matmul", node.input(0), node.input(1))


@converter("Gemm", min_version=7)
def _gemm(node: OnnxNode) -> Expr:
    a, b = node.input(0), node.input(1)
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if node.attr("transA", 0):
        a = node.call("transpose", a, axes=(1, 0))
    # nn.dense takes the weight as (N, K): transB=1 is its native form.
    if not node.attr("transB", 0):
        b = node.call("transpose", b, axes=(1, 0))
    has_c = node.has_input(2) and beta != 0.0
    n = b.type.shape[0]  # type: ignore[union-attr]
    c = node.input(2) if has_c else None
    if c is not None and alpha == 1.0 and beta == 1.0 and c.type.shape == (n,):  # type: ignore[union-attr]
        return node.call("nn.dense", a, b, c)
    y = node.call("nn.dense", a, b)
    if alpha != 1.0:
        y = node.call("multiply", y, node.constant(alpha, y.type.dtype))  # type: ignore[union-attr]
    if c is not None:
        if beta != 1.0:
            c = node.call("multiply", c, node.constant(beta, c.type.dtype))  # type: ignore[union-attr]
        y = node.call("add", y, c)
    return y


# ----------------------------------------------------------------------------- normalization


@converter("BatchNormalization", min_version=7)
def _batch_norm(node: OnnxNode) -> Expr:
    node.reject_attr("spatial", 1, "per-activation batch norm is not supported")
    if node.attr("training_mode", 0):
        raise node.unsupported("training_mode=1 is not supported (ember runs inference)")
    if node.num_outputs > 1:
        raise node.unsupported("the running mean/variance outputs (training) are not supported")
    return node.call(
        "nn.batch_norm",
        *(node.input(i) for i in range(5)),
        epsilon=node.attr("epsilon", 1e-5),
        axis=1,
    )


# Narrow floats are normalized in float32 (ONNX's stash_type=1, what onnxruntime does):
# a float16 mean of squares overflows past 256 and its sums lose the small terms.
_NARROW_FLOATS = ("float16", "bfloat16")


def _widen(node: OnnxNode, x: Expr) -> Expr:
    """``x`` in the dtype a normalization computes in: float32 for narrow floats."""
    dtype = x.type.dtype  # type: ignore[union-attr]
    return node.call("cast", x, dtype="float32") if dtype in _NARROW_FLOATS else x


def _narrow(node: OnnxNode, y: Expr, dtype: str) -> Expr:
    """``y`` rounded back to the model's ``dtype`` (once, at the end)."""
    return y if y.type.dtype == dtype else node.call("cast", y, dtype=dtype)  # type: ignore[union-attr]


def _normalize(
    node: OnnxNode, x: Expr, axes: tuple[int, ...], epsilon: float
) -> tuple[Expr, Expr, Expr]:
    """((x - mean) / sqrt(var + epsilon), mean, 1 / sqrt(var + epsilon)) over ``axes``,
    computed in ``x``'s dtype (widen narrow floats first)."""
    mean = node.call("reduce_mean", x, axes=axes, keepdims=True)
    centered = node.call("subtract", x, mean)
    var = node.call(
        "reduce_mean", node.call("multiply", centered, centered), axes=axes, keepdims=True
    )
    eps = node.constant(epsilon, x.type.dtype)  # type: ignore[union-attr]
    inv_std = node.call("rsqrt", node.call("add", var, eps))
    return node.call("multiply", centered, inv_std), mean, inv_std


@converter("InstanceNormalization", min_version=6)
def _instance_norm(node: OnnxNode) -> Expr:
    x = _widen(node, node.input(0))
    rank = len(node.shape(0))
    y, _, _ = _normalize(node, x, tuple(range(2, rank)), node.attr("epsilon", 1e-5))
    # scale and bias are per channel (C,): broadcast them over the spatial axes.
    channel_shape = (-1,) + (1,) * (rank - 2)
    scale = node.call("reshape", _widen(node, node.input(1)), newshape=channel_shape)
    bias = node.call("reshape", _widen(node, node.input(2)), newshape=channel_shape)
    return _narrow(node, node.call("add", node.call("multiply", y, scale), bias), node.dtype(0))


def _stash_dtype(node: OnnxNode) -> str:
    """The dtype of LayerNormalization's Mean / InvStdDev outputs (``stash_type``)."""
    return ember_dtype(node.attr("stash_type", 1), f"{node} stash_type")


@converter("LayerNormalization", min_version=17)
def _layer_norm(node: OnnxNode) -> list[Expr]:
    x = _widen(node, node.input(0))
    rank = len(node.shape(0))
    axis = node.axis(node.attr("axis", -1), rank)
    y, mean, inv_std = _normalize(node, x, tuple(range(axis, rank)), node.attr("epsilon", 1e-5))
    y = node.call("multiply", y, _widen(node, node.input(1)))
    if node.has_input(2):
        y = node.call("add", y, _widen(node, node.input(2)))
    stash = _stash_dtype(node)
    return [
        _narrow(node, y, node.dtype(0)),
        _narrow(node, mean, stash),
        _narrow(node, inv_std, stash),
    ]


@converter("MeanVarianceNormalization", min_version=9)
def _mvn(node: OnnxNode) -> Expr:
    axes = tuple(node.attr("axes", (0, 2, 3)))
    y = _normalize(node, _widen(node, node.input(0)), axes, 1e-9)[0]
    return _narrow(node, y, node.dtype(0))


@converter("RMSNormalization", min_version=23)
def _rms_norm(node: OnnxNode) -> Expr:
    x = _widen(node, node.input(0))
    rank = len(node.shape(0))
    axis = node.axis(node.attr("axis", -1), rank)
    mean_square = node.call(
        "reduce_mean", node.call("multiply", x, x), axes=tuple(range(axis, rank)), keepdims=True
    )
    eps = node.constant(node.attr("epsilon", 1e-5), x.type.dtype)  # type: ignore[union-attr]
    inv_rms = node.call("rsqrt", node.call("add", mean_square, eps))
    y = node.call("multiply", node.call("multiply", x, inv_rms), _widen(node, node.input(1)))
    return _narrow(node, y, node.dtype(0))


@converter("LpNormalization")
def _lp_norm(node: OnnxNode) -> Expr:
    x = _widen(node, node.input(0))
    p = node.attr("p", 2)
    if p not in (1, 2):
        raise node.error(f"p={p} must be 1 or 2")
    axis = node.attr("axis", -1)
    if p == 1:
        norm = node.call("reduce_sum", node.call("abs", x), axes=(axis,), keepdims=True)
    else:
        squares = node.call("multiply", x, x)
        norm = node.call("sqrt", node.call("reduce_sum", squares, axes=(axis,), keepdims=True))
    # A zero vector stays zero (the ONNX reference), rather than becoming 0/0 = NaN.
    zero = node.constant(0, x.type.dtype)  # type: ignore[union-attr]
    is_zero = node.call("equal", norm, zero)
    y = node.call("where", is_zero, zero, node.call("divide", x, norm))
    return _narrow(node, y, node.dtype(0))


@converter("GroupNormalization", min_version=18)
def _group_norm(node: OnnxNode) -> Expr:
    x = _widen(node, node.input(0))
    shape = node.shape(0)
    n, c = shape[0], shape[1]
    groups = node.attr("num_groups")
    if not groups or c % groups:
        raise node.error(f"num_groups={groups} does not divide the {c} channels")
    grouped = node.call("reshape", x, newshape=(n, groups, -1))
    y, _, _ = _normalize(node, grouped, (2,), node.attr("epsilon", 1e-5))
    spatial_ones = (1,) * (len(shape) - 2)
    scale, bias = _widen(node, node.input(1)), _widen(node, node.input(2))
    if node.version < 21:
        # GroupNormalization-18: scale and bias have one value per group.
        scale = node.call("reshape", scale, newshape=(1, groups, 1))
        bias = node.call("reshape", bias, newshape=(1, groups, 1))
        y = node.call("add", node.call("multiply", y, scale), bias)
        return _narrow(node, node.call("reshape", y, newshape=shape), node.dtype(0))
    y = node.call("reshape", y, newshape=shape)
    scale = node.call("reshape", scale, newshape=(c, *spatial_ones))
    bias = node.call("reshape", bias, newshape=(c, *spatial_ones))
    return _narrow(node, node.call("add", node.call("multiply", y, scale), bias), node.dtype(0))


@converter("Hardmax")
def _hardmax(node: OnnxNode) -> Expr:
    x = node.input(0)
    shape = node.shape(0)
    if node.version >= 13:
        axis = node.axis(node.attr("axis", -1), len(shape))
        flat, flat_shape = x, shape
    else:  # coerced to 2-D at axis, like Softmax before opset 13
        axis_2d = node.axis(node.attr("axis", 1), max(len(shape), 1))
        rows = int(np.prod(shape[:axis_2d], dtype=np.int64))
        flat_shape = (rows, int(np.prod(shape[axis_2d:], dtype=np.int64)))
        flat, axis = node.call("reshape", x, newshape=flat_shape), 1
    winner = node.call("argmax", flat, axis=axis, keepdims=True)
    positions = np.arange(flat_shape[axis], dtype=np.int64).reshape(
        [-1 if a == axis else 1 for a in range(len(flat_shape))]
    )
    hot = node.call(
        "cast", node.call("equal", winner, node.constant(positions)), dtype=node.dtype(0)
    )
    return hot if flat_shape == shape else node.call("reshape", hot, newshape=shape)


# ----------------------------------------------------------------------------- softmax


@converter("Softmax", "LogSoftmax")
def _softmax(node: OnnxNode) -> Expr:
    op = "nn.softmax" if node.op_type == "Softmax" else "nn.log_softmax"
    x = node.input(0)
    shape = node.shape(0)
    if node.version >= 13:
        return node.call(op, x, axis=node.attr("axis", -1))
    # Before opset 13 the input is coerced to 2-D at `axis` (default 1) and
    # normalized over everything from `axis` on.
    axis = node.axis(node.attr("axis", 1), max(len(shape), 1))
    if axis == len(shape) - 1:
        return node.call(op, x, axis=-1)
    rows = int(np.prod(shape[:axis], dtype=np.int64))
    flat = node.call("reshape", x, newshape=(rows, -1))
    return node.call("reshape", node.call(op, flat, axis=-1), newshape=shape)
