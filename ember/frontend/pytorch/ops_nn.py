"""PyTorch converters: convolutions, batch norm, activations, pooling, linear, resizing.

    conv2d(x, w, b, stride=1, padding=1)  ->  nn.conv2d(x, w, b, padding=(1, 1, 1, 1))

Activations without an ember op (SiLU, Mish) are composed from ember ops;
layer norm and attention live in ``ops_transformer.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.pytorch.context import AtenNode, ConverterFn, converter, pair
from ember.graph.ir import Expr, const

# ----------------------------------------------------------------------------- convolution


def _conv(
    node: AtenNode, data, weight, bias, stride, padding, dilation, transposed, out_pad, groups
):
    x, w = node.to_expr(data, node.name + "/input"), node.to_expr(weight, node.name + "/weight")
    if len(shape_of(x)) == 3:  # 1-D (N, C, W): a 2-D convolution over a height of 1
        x = node.call("expand_dims", x, suffix="/as_2d", axes=(2,))
        w = node.call("expand_dims", w, suffix="/weight_2d", axes=(2,))
        stride, padding, dilation, out_pad = (
            _with_height(v, h) for v, h in ((stride, 1), (padding, 0), (dilation, 1), (out_pad, 0))
        )
        out = _conv(node, x, w, bias, stride, padding, dilation, transposed, out_pad, groups)
        return node.call("squeeze", out, suffix="/as_1d", axes=(2,))
    if len(shape_of(x)) != 4:
        raise node.error(
            f"input has shape {shape_of(x)}; ember supports 1-D and 2-D convolution only"
        )
    kernel = shape_of(w)[2:]
    dil = pair(dilation, 1)
    if isinstance(padding, str):  # conv2d.padding overload: "same" / "valid"
        if padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            total = [dil[i] * (kernel[i] - 1) for i in range(2)]
            pads = (
                total[0] // 2,
                total[1] // 2,
                total[0] - total[0] // 2,
                total[1] - total[1] // 2,
            )
    else:
        ph, pw = pair(padding, 0)
        pads = (ph, pw, ph, pw)
    args = [x, w]
    if bias is not None:
        args.append(node.to_expr(bias, node.name + "/bias"))
    attrs = {"strides": pair(stride, 1), "padding": pads, "dilation": dil, "groups": int(groups)}
    if transposed:
        return node.call("nn.conv2d_transpose", *args, output_padding=pair(out_pad, 0), **attrs)
    return node.call("nn.conv2d", *args, **attrs)


def _with_height(value: Any, height: int) -> Any:
    """A 1-D conv's stride/padding/dilation (int or [int]) as 2-D: ``height`` first."""
    if isinstance(value, str) or value is None:
        return value  # "same" / "valid", or no output padding
    values = [int(value)] if isinstance(value, int) else [int(v) for v in value]
    return [height, values[0]] if values else [height, height]


@converter("conv1d", "conv2d", "_convolution_mode")
def _conv2d(node: AtenNode) -> Expr:
    a = node.args
    return _conv(node, a[0], a[1], a[2], a[3], a[4], a[5], False, 0, node.arg(6, 1))


@converter("convolution", "_convolution")
def _convolution(node: AtenNode) -> Expr:
    a = node.args
    return _conv(node, a[0], a[1], a[2], a[3], a[4], a[5], bool(a[6]), a[7], a[8])


@converter("conv_transpose1d", "conv_transpose2d")
def _conv_transpose2d(node: AtenNode) -> Expr:
    a = node.args
    return _conv(node, a[0], a[1], a[2], a[3], a[4], node.arg(7, 1), True, a[5], node.arg(6, 1))


# ----------------------------------------------------------------------------- normalization


def _batch_norm(node: AtenNode, eps: float) -> Expr:
    x = node.tensor(0)
    channels = shape_of(x)[1]
    dtype = x.type.dtype
    gamma = node.optional_tensor(1)
    beta = node.optional_tensor(2)
    mean, var = node.optional_tensor(3), node.optional_tensor(4)
    if mean is None or var is None:
        raise node.error(
            "batch norm without running statistics normalizes by batch statistics, which "
            "ember does not support at inference",
            hint="call model.eval() with track_running_stats=True before exporting",
        )
    if gamma is None:
        gamma = const(np.ones((channels,), dtype))
    if beta is None:
        beta = const(np.zeros((channels,), dtype))
    return node.call("nn.batch_norm", x, gamma, beta, mean, var, epsilon=float(eps), axis=1)


@converter("batch_norm")
def _batch_norm_op(node: AtenNode) -> Expr:
    if node.arg(5, False):
        raise node.error("batch norm in training mode", hint="call model.eval() before exporting")
    return _batch_norm(node, node.arg(7, 1e-5))


@converter("_native_batch_norm_legit_no_training")
def _native_bn_no_training(node: AtenNode) -> tuple:
    return (_batch_norm(node, node.arg(6, 1e-5)), None, None)


@converter("native_batch_norm", "_native_batch_norm_legit")
def _native_bn(node: AtenNode) -> tuple:
    if node.arg(5, False):
        raise node.error("batch norm in training mode", hint="call model.eval() before exporting")
    return (_batch_norm(node, node.arg(7, 1e-5)), None, None)


# ----------------------------------------------------------------------------- activations


def _unary(op: str) -> ConverterFn:
    return lambda node: node.call(op, node.tensor(0))


for _torch_name, _ember_name in {
    "relu": "nn.relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "exp": "exp",
    "log": "log",
    "sqrt": "sqrt",
    "rsqrt": "rsqrt",
    "abs": "abs",
    "neg": "negative",
    "negative": "negative",
    "erf": "erf",
    "reciprocal": "reciprocal",
    "sin": "sin",
    "cos": "cos",
    "floor": "floor",
    "ceil": "ceil",
    "sign": "sign",
    "hardswish": "nn.hard_swish",
    "logical_not": "logical_not",
}.items():
    converter(_torch_name)(_unary(_ember_name))


@converter("round")
def _round(node: AtenNode) -> Expr:
    """round(x) half to even; round.decimals scales by 10**decimals around it, as torch does."""
    x = node.tensor(0)
    decimals = int(node.kwargs.get("decimals", node.arg(1, 0)))
    if x.type.dtype.startswith("int") or x.type.dtype == "bool":
        return x
    if not decimals:
        return node.call("round", x)
    factor = scalar(10.0**decimals, x)
    scaled = node.call("multiply", x, factor, suffix="/scale")
    return node.call("divide", node.call("round", scaled, suffix="/round"), factor)


@converter("relu6")
def _relu6(node: AtenNode) -> Expr:
    return node.call("clip", node.tensor(0), a_min=0.0, a_max=6.0)


@converter("hardtanh")
def _hardtanh(node: AtenNode) -> Expr:
    low, high = float(node.arg(1, -1.0)), float(node.arg(2, 1.0))
    return node.call("clip", node.tensor(0), a_min=low, a_max=high)


@converter("clamp", "clip")
def _clamp(node: AtenNode) -> Expr:
    low, high = node.arg(1), node.arg(2)
    if not isinstance(low, int | float | None) or not isinstance(high, int | float | None):
        raise node.error("clamp with tensor bounds is not supported")
    return node.call(
        "clip",
        node.tensor(0),
        a_min=None if low is None else float(low),
        a_max=None if high is None else float(high),
    )


@converter("clamp_min")
def _clamp_min(node: AtenNode) -> Expr:
    return node.call("clip", node.tensor(0), a_min=float(node.arg(1)))


@converter("clamp_max")
def _clamp_max(node: AtenNode) -> Expr:
    return node.call("clip", node.tensor(0), a_max=float(node.arg(1)))


@converter("hardsigmoid")
def _hardsigmoid(node: AtenNode) -> Expr:
    return node.call("nn.hard_sigmoid", node.tensor(0), alpha=1.0 / 6.0, beta=0.5)


@converter("silu")
def _silu(node: AtenNode) -> Expr:
    return node.call("nn.silu", node.tensor(0))


@converter("mish")
def _mish(node: AtenNode) -> Expr:
    # x * tanh(softplus(x)); PyTorch's softplus threshold (x > 20 -> x) changes nothing in float32
    return node.call("nn.mish", node.tensor(0))


@converter("glu")
def _glu(node: AtenNode) -> Expr:
    """glu(x, dim=-1): the first half of ``dim`` gated by the sigmoid of the second."""
    x = node.tensor(0)
    shape = shape_of(x)
    axis = node.axis(node.arg(1, -1), len(shape), "dim")
    if shape[axis] % 2:
        raise node.error(f"glu halves dim {axis}, which has odd size {shape[axis]} in {shape}")
    half = shape[axis] // 2
    first = node.call("strided_slice", x, suffix="/first", begin=(0,), end=(half,), axes=(axis,))
    second = node.call(
        "strided_slice", x, suffix="/second", begin=(half,), end=(2 * half,), axes=(axis,)
    )
    return node.call("multiply", first, node.call("sigmoid", second, suffix="/gate"))


@converter("gelu")
def _gelu(node: AtenNode) -> Expr:
    return node.call("nn.gelu", node.tensor(0), approximate=str(node.arg(1, "none")))


@converter("leaky_relu")
def _leaky_relu(node: AtenNode) -> Expr:
    return node.call("nn.leaky_relu", node.tensor(0), alpha=float(node.arg(1, 0.01)))


@converter("elu")
def _elu(node: AtenNode) -> Expr:
    alpha, scale = float(node.arg(1, 1.0)), float(node.arg(2, 1.0))
    if float(node.arg(3, 1.0)) != 1.0:
        raise node.error("elu with input_scale other than 1 is not supported")
    x = node.tensor(0)
    if scale == 1.0:
        return node.call("nn.elu", x, alpha=alpha)
    out = node.call("nn.elu", x, suffix="/elu", alpha=alpha)  # selu decomposes to this
    return node.call("multiply", out, scalar(scale, x))


@converter("selu")
def _selu(node: AtenNode) -> Expr:
    return node.call("nn.selu", node.tensor(0))


@converter("softplus")
def _softplus(node: AtenNode) -> Expr:
    x, beta = node.tensor(0), float(node.arg(1, 1.0))
    # PyTorch returns x where beta*x > threshold; softplus equals x there to float precision
    if beta == 1.0:
        return node.call("nn.softplus", x)
    scaled = node.call("multiply", x, scalar(beta, x), suffix="/beta")
    soft = node.call("nn.softplus", scaled, suffix="/softplus")
    return node.call("divide", soft, scalar(beta, x))


@converter("prelu", "_prelu_kernel")
def _prelu(node: AtenNode) -> Expr:
    x, slope = node.tensor(0), node.tensor(1)
    rank, slope_shape = len(shape_of(x)), shape_of(slope)
    if rank > 2 and len(slope_shape) == 1 and slope_shape[0] > 1:
        newshape = (slope_shape[0],) + (1,) * (rank - 2)
        slope = node.call("reshape", slope, suffix="/slope", newshape=newshape)
    return node.call("nn.prelu", x, slope)


@converter("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout")
def _dropout(node: AtenNode) -> Expr:
    if node.arg(2, False):
        raise node.error("dropout in training mode", hint="call model.eval() before exporting")
    return node.tensor(0)


@converter("native_dropout")
def _native_dropout(node: AtenNode) -> tuple:
    if node.arg(2, False):
        raise node.error("dropout in training mode", hint="call model.eval() before exporting")
    return (node.tensor(0), None)


@converter(
    "contiguous", "clone", "alias", "detach", "lift_fresh_copy", "lift_fresh", "dequantize_noop"
)
def _identity(node: AtenNode) -> Expr:
    return node.tensor(0)


# ----------------------------------------------------------------------------- softmax


@converter("softmax", "_softmax", "log_softmax", "_log_softmax")
def _softmax(node: AtenNode) -> Expr:
    x = node.tensor(0)
    op = "nn.log_softmax" if "log" in node.op else "nn.softmax"
    return node.call(op, x, axis=node.axis(node.arg(1, -1), len(shape_of(x))))


# ----------------------------------------------------------------------------- pooling


def _pool_args(
    node: AtenNode,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    kernel = pair(node.arg(1), 1)
    stride = pair(node.arg(2), 0)
    if stride == (0, 0):  # PyTorch's empty stride means "the kernel size"
        stride = kernel
    ph, pw = pair(node.arg(3, 0), 0)
    return kernel, stride, (ph, pw, ph, pw)


@converter("max_pool2d")
def _max_pool2d(node: AtenNode) -> Expr:
    kernel, stride, pads = _pool_args(node)
    return node.call(
        "nn.max_pool2d",
        node.tensor(0),
        pool_size=kernel,
        strides=stride,
        padding=pads,
        dilation=pair(node.arg(4, 1), 1),
        ceil_mode=bool(node.arg(5, False)),
    )


@converter("max_pool2d_with_indices")
def _max_pool2d_with_indices(node: AtenNode) -> tuple:
    return (_max_pool2d(node), None)


@converter("avg_pool2d")
def _avg_pool2d(node: AtenNode) -> Expr:
    if node.arg(6) is not None:
        raise node.error("divisor_override is not supported")
    kernel, stride, pads = _pool_args(node)
    return node.call(
        "nn.avg_pool2d",
        node.tensor(0),
        pool_size=kernel,
        strides=stride,
        padding=pads,
        ceil_mode=bool(node.arg(4, False)),
        count_include_pad=bool(node.arg(5, True)),
    )


def _adaptive_sizes(node: AtenNode, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The output size per spatial axis; PyTorch's None keeps that axis's input size."""
    size = node.arg(1)
    sizes = [size] * len(spatial) if isinstance(size, int) else list(size)
    if len(sizes) == 1:
        sizes = sizes * len(spatial)
    if len(sizes) != len(spatial):
        raise node.error(f"output_size {list(size)} must give {len(spatial)} size(s)")
    return tuple(d if s is None else int(s) for s, d in zip(sizes, spatial))


def _adaptive_axis(node: AtenNode, x: Expr, axis: int, out: int, kind: str) -> Expr:
    """Adaptive pooling along one axis (pooling is separable: a window is a product of ranges).

    Output i pools input [floor(i*L/out), ceil((i+1)*L/out)); when ``out`` divides
    ``L`` the windows are equal, one reshape and one reduction.
    """
    shape = shape_of(x)
    length = shape[axis]
    reduce_op = f"reduce_{kind}"
    suffix = f"/axis{axis}"
    if length % out == 0:
        split = shape[:axis] + (out, length // out) + shape[axis + 1 :]
        windows = node.call("reshape", x, suffix=f"{suffix}/windows", newshape=split)
        return node.call(reduce_op, windows, suffix=suffix, axes=(axis + 1,), keepdims=False)
    pieces = []
    for i in range(out):
        begin, end = (i * length) // out, -(-((i + 1) * length) // out)
        window = node.call(
            "strided_slice", x, suffix=f"{suffix}/{i}", begin=(begin,), end=(end,), axes=(axis,)
        )
        pieces.append(
            node.call(reduce_op, window, suffix=f"{suffix}/{i}/pool", axes=(axis,), keepdims=True)
        )
    return node.call("concatenate", *pieces, suffix=suffix, axis=axis)


def _adaptive_pool(node: AtenNode, kind: str, dims: int) -> Expr:
    x = node.tensor(0)
    shape = shape_of(x)
    if len(shape) not in (dims + 1, dims + 2):
        raise node.error(f"input has shape {shape}; expected {dims + 1} or {dims + 2} axes")
    out = _adaptive_sizes(node, shape[-dims:])
    spatial = shape[-dims:]
    if dims == 2 and len(shape) == 4:  # ember's 2-D pools where the windows are regular
        if out == (1, 1):
            return node.call(f"nn.global_{kind}_pool2d", x)
        if spatial[0] % out[0] == 0 and spatial[1] % out[1] == 0:
            window = (spatial[0] // out[0], spatial[1] // out[1])
            return node.call(f"nn.{kind}_pool2d", x, pool_size=window, strides=window)
    reduce_kind = "mean" if kind == "avg" else "max"
    for k, size in enumerate(out):
        axis = len(shape) - dims + k
        if size != spatial[k]:
            x = _adaptive_axis(node, x, axis, size, reduce_kind)
    return x


@converter("adaptive_avg_pool2d", "_adaptive_avg_pool2d")
def _adaptive_avg_pool2d(node: AtenNode) -> Expr:
    return _adaptive_pool(node, "avg", 2)


@converter("adaptive_max_pool2d")
def _adaptive_max_pool2d(node: AtenNode) -> tuple:
    return (_adaptive_pool(node, "max", 2), None)


@converter("adaptive_avg_pool1d")
def _adaptive_avg_pool1d(node: AtenNode) -> Expr:
    return _adaptive_pool(node, "avg", 1)


@converter("adaptive_max_pool1d")
def _adaptive_max_pool1d(node: AtenNode) -> tuple:
    return (_adaptive_pool(node, "max", 1), None)


# ----------------------------------------------------------------------------- matmul


@converter("linear")
def _linear(node: AtenNode) -> Expr:
    args = [node.tensor(0), node.tensor(1)]
    bias = node.optional_tensor(2)
    if bias is not None:
        args.append(bias)
    return node.call("nn.dense", *args)


@converter("mm", "bmm", "matmul")
def _matmul(node: AtenNode) -> Expr:
    return node.call("nn.matmul", node.tensor(0), node.tensor(1))


@converter("addmm", "baddbmm")
def _addmm(node: AtenNode) -> Expr:
    bias, a, b = node.tensor(0), node.tensor(1), node.tensor(2)
    beta, alpha = float(node.arg(3, 1.0)), float(node.arg(4, 1.0))
    product = node.call("nn.matmul", a, b, suffix="/mm")
    if alpha != 1.0:
        product = node.call("multiply", product, scalar(alpha, product), suffix="/alpha")
    if beta == 0.0:
        return product
    if beta != 1.0:
        bias = node.call("multiply", bias, scalar(beta, bias), suffix="/beta")
    return node.call("add", product, bias)


def _pad_pairs(node: AtenNode, rank: int, pads: Sequence[int]) -> list[tuple[int, int]]:
    """PyTorch pads list the last axis first: (left, right, top, bottom, ...)."""
    if len(pads) % 2 or len(pads) // 2 > rank:
        raise node.error(
            f"pad {list(pads)} must hold (before, after) pairs for at most {rank} axes"
        )
    pairs = [(0, 0)] * rank
    for i in range(len(pads) // 2):
        pairs[rank - 1 - i] = (int(pads[2 * i]), int(pads[2 * i + 1]))
    return pairs


@converter("constant_pad_nd", "pad")
def _pad(node: AtenNode) -> Expr:
    x = node.tensor(0)
    shape = shape_of(x)
    pairs = _pad_pairs(node, len(shape), node.arg(1))
    if node.op == "pad":
        mode, value = str(node.arg(2, "constant")), node.arg(3, 0.0)
    else:
        mode, value = "constant", node.arg(2, 0.0)
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
    if mode not in modes:
        raise node.error(f"pad mode {mode!r} is not supported ({', '.join(modes)})")
    if any(before < 0 or after < 0 for before, after in pairs):  # negative pads crop
        begin = [max(-before, 0) for before, _ in pairs]
        end = [shape[i] - max(-after, 0) for i, (_, after) in enumerate(pairs)]
        x = node.call("strided_slice", x, suffix="/crop", begin=tuple(begin), end=tuple(end))
        pairs = [(max(before, 0), max(after, 0)) for before, after in pairs]
    return node.call(
        "nn.pad",
        x,
        pad_width=tuple(pairs),
        pad_value=float(value or 0.0),
        mode=modes[mode],
    )


def _resize(node: AtenNode, method: str, size: Any, align: bool, scales: Any) -> Expr:
    x = node.tensor(0)
    height, width = shape_of(x)[2:]
    factors = None
    if scales is not None and any(s is not None for s in scales):
        factors = (float(scales[0]), float(scales[-1]))
    if size is not None:
        out = pair(size, 0)
    elif factors is not None:
        out = (int(math.floor(height * factors[0])), int(math.floor(width * factors[1])))
    else:
        raise node.error("neither output_size nor scale_factors is given")
    attrs: dict[str, Any] = {"size": out, "method": method}
    if method == "nearest":
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    elif method == "nearest-exact":
        attrs.update(
            method="nearest",
            coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_ceil",
        )
    elif align:
        attrs["coordinate_transformation_mode"] = "align_corners"
    else:
        # bicubic maps (i + 0.5) / scale - 0.5 even for a size-1 output; bilinear uses 0 there
        cubic = method == "cubic"
        attrs["coordinate_transformation_mode"] = "half_pixel" if cubic else "pytorch_half_pixel"
    if factors is not None and not align:
        attrs["scales"] = factors  # PyTorch maps coordinates by 1/scale_factor when given
    return node.call("image.resize2d", x, **attrs)


def _resize_args(node: AtenNode) -> tuple[Any, Any]:
    """(output_size, scale factors) of the .vec and the default overloads."""
    if node.overload == "vec":
        return node.arg(1), node.arg(2)
    return node.arg(1), [node.arg(2), node.arg(3)]


@converter("upsample_nearest2d")
def _upsample_nearest(node: AtenNode) -> Expr:
    size, scales = _resize_args(node)
    return _resize(node, "nearest", size, False, scales)


@converter("_upsample_nearest_exact2d")
def _upsample_nearest_exact(node: AtenNode) -> Expr:
    # nearest-exact reads input floor((i + 0.5) / scale): ONNX's half_pixel, rounding up
    size, scales = _resize_args(node)
    return _resize(node, "nearest-exact", size, False, scales)


@converter("upsample_bicubic2d")
def _upsample_bicubic(node: AtenNode) -> Expr:
    if node.overload == "vec":
        return _resize(node, "cubic", node.arg(1), bool(node.arg(2)), node.arg(3))
    return _resize(node, "cubic", node.arg(1), bool(node.arg(2)), [node.arg(3), node.arg(4)])


@converter("upsample_bilinear2d")
def _upsample_bilinear(node: AtenNode) -> Expr:
    if node.overload == "vec":
        return _resize(node, "linear", node.arg(1), bool(node.arg(2)), node.arg(3))
    return _resize(node, "linear", node.arg(1), bool(node.arg(2)), [node.arg(3), node.arg(4)])
