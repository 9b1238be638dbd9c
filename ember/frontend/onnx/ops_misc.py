"""ONNX converters: integer quantize/dequantize, integer matmul/conv, window functions,
CenterCropPad, SwiGLU, LpPool.

QuantizeLinear(x, s, zp)    ->  cast(clip(round(x / s) + zp), zp's dtype)
DequantizeLinear(q, s, zp)  ->  (cast(q) - cast(zp)) * s
HannWindow(size=8)          ->  Constant (the window does not depend on data)
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter, ember_dtype
from ember.frontend.onnx.ops_nn import conv, window_pool
from ember.frontend.onnx.ops_tensor import gather_elements
from ember.graph.ir import Constant, Expr

# ----------------------------------------------------------------------------- quantization


def _minus_zero_point(node: OnnxNode, index: int, zp_index: int, zp_axis: int | None) -> Expr:
    """Input ``index`` as int32 minus its zero point (input ``zp_index``, 0 if omitted); a
    1-D zero point of more than one value runs along ``zp_axis`` (None: must be a scalar)."""
    x = node.call("cast", node.input(index), dtype="int32")
    if not node.has_input(zp_index):
        return x
    zp = node.input(zp_index)
    zshape = zp.type.shape  # type: ignore[union-attr]
    count = math.prod(zshape)
    if count != 1 and (zp_axis is None or len(zshape) != 1):
        where = "a scalar" if zp_axis is None else f"a scalar or 1-D along axis {zp_axis}"
        raise node.unsupported(f"zero point input {zp_index} of shape {zshape} must be {where}")
    zp = node.call("cast", zp, dtype="int32")
    rank = len(node.shape(index))
    if count == 1:
        newshape: tuple[int, ...] = ()
    else:
        axis = zp_axis % rank
        newshape = tuple(count if a == axis else 1 for a in range(rank))
    if tuple(zshape) != newshape:
        zp = node.call("reshape", zp, newshape=newshape)
    return node.call("subtract", x, zp)


@converter("MatMulInteger", min_version=10)
def _matmul_integer(node: OnnxNode) -> Expr:
    """int32 (A - a_zero_point) @ (B - b_zero_point); a_zero_point may be per row of A,
    b_zero_point per column of B."""
    a = _minus_zero_point(node, 0, 2, -2 if len(node.shape(0)) >= 2 else None)
    b = _minus_zero_point(node, 1, 3, -1)
    return node.call("nn.matmul", a, b)


@converter("ConvInteger", min_version=10)
def _conv_integer(node: OnnxNode) -> Expr:
    """int32 Conv of (x - x_zero_point) and (w - w_zero_point); w_zero_point may be per
    output channel. Padding adds zeros after the subtraction (the zero point before it)."""
    x = _minus_zero_point(node, 0, 2, None)
    w = _minus_zero_point(node, 1, 3, 0)
    return conv(node, x, w)


def _per_axis(
    node: OnnxNode, value: Expr, shape: tuple[int, ...], axis: int, block_size: int
) -> Expr:
    """Scale / zero point reshaped (and, blocked, repeated) to broadcast against ``shape``."""
    vshape = value.type.shape  # type: ignore[union-attr]
    if math.prod(vshape) == 1:
        return node.call("reshape", value, newshape=()) if vshape else value
    rank = len(shape)
    axis = node.axis(axis, rank)
    if not block_size:
        return node.call(
            "reshape", value, newshape=tuple(d if a == axis else 1 for a, d in enumerate(shape))
        )
    # Blocked: repeat each entry block_size times along axis, then trim the last block.
    repeated = node.call("expand_dims", value, axes=(axis + 1,))
    full = list(vshape)
    full.insert(axis + 1, block_size)
    repeated = node.call("broadcast_to", repeated, shape=tuple(full))
    merged = list(vshape)
    merged[axis] *= block_size
    repeated = node.call("reshape", repeated, newshape=tuple(merged))
    if merged[axis] != shape[axis]:
        repeated = node.call(
            "strided_slice", repeated, begin=(0,), end=(shape[axis],), strides=(1,), axes=(axis,)
        )
    return repeated


_INT_RANGES = {
    "uint8": (0, 255),
    "int8": (-128, 127),
    "int16": (-32768, 32767),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "uint16": (0, 2**16 - 1),
}


@converter("QuantizeLinear", min_version=10)
def _quantize(node: OnnxNode) -> Expr:
    x = node.input(0)
    shape = node.shape(0)
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    if node.has_input(2):
        out_dtype = node.dtype(2)
    elif node.attr("output_dtype"):
        out_dtype = ember_dtype(node.attr("output_dtype"), f"{node} output_dtype")
    else:
        out_dtype = "uint8"
    if out_dtype not in _INT_RANGES:
        raise node.unsupported(f"quantizing to {out_dtype} is not supported (integer types are)")
    scale = _per_axis(node, node.input(1), shape, axis, block)
    if node.attr("precision"):
        precision = ember_dtype(node.attr("precision"), f"{node} precision")
        x, scale = node.call("cast", x, dtype=precision), node.call("cast", scale, dtype=precision)
    elif scale.type.dtype != x.type.dtype:  # type: ignore[union-attr]
        scale = node.call("cast", scale, dtype=x.type.dtype)  # type: ignore[union-attr]
    # round half to even, then shift by the zero point and saturate in int64.
    q = node.call("cast", node.call("round", node.call("divide", x, scale)), dtype="int64")
    if node.has_input(2):
        zero_point = _per_axis(node, node.input(2), shape, axis, block)
        q = node.call("add", q, node.call("cast", zero_point, dtype="int64"))
    low, high = _INT_RANGES[out_dtype]
    q = node.call("maximum", q, node.constant(low, "int64"))
    q = node.call("minimum", q, node.constant(high, "int64"))
    return node.call("cast", q, dtype=out_dtype)


@converter("DequantizeLinear", min_version=10)
def _dequantize(node: OnnxNode) -> Expr:
    x = node.input(0)
    shape = node.shape(0)
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    if node.dtype(0) not in _INT_RANGES:
        raise node.unsupported(f"dequantizing {node.dtype(0)} is not supported")
    scale = _per_axis(node, node.input(1), shape, axis, block)
    values = node.call("cast", x, dtype="float32")
    if node.has_input(2):
        zero_point = _per_axis(node, node.input(2), shape, axis, block)
        values = node.call("subtract", values, node.call("cast", zero_point, dtype="float32"))
    if scale.type.dtype != "float32":  # type: ignore[union-attr]
        scale = node.call("cast", scale, dtype="float32")
    y = node.call("multiply", values, scale)
    out_dtype = node.dtype(1)
    if node.attr("output_dtype"):
        out_dtype = ember_dtype(node.attr("output_dtype"), f"{node} output_dtype")
    return y if out_dtype == "float32" else node.call("cast", y, dtype=out_dtype)


# ----------------------------------------------------------------------------- windows


@converter("HannWindow", "HammingWindow", "BlackmanWindow", min_version=17)
def _window(node: OnnxNode) -> Expr:
    size = int(node.const(0, "size").reshape(-1)[0])
    dtype = ember_dtype(node.attr("output_datatype", 1), f"{node} output_datatype")
    length = size if node.attr("periodic", 1) else size - 1
    n = np.arange(size, dtype=np.float64)
    if node.op_type == "HannWindow":
        window = np.sin(n * np.pi / length) ** 2
    elif node.op_type == "HammingWindow":
        alpha = 25.0 / 46.0
        window = alpha - np.cos(n * np.pi * 2 / length) * (1 - alpha)
    else:
        window = 0.42 - 0.5 * np.cos(n * np.pi * 2 / length) + 0.08 * np.cos(n * np.pi * 4 / length)
    return Constant(window.astype(dtype), node.name)


# ----------------------------------------------------------------------------- misc


@converter("CenterCropPad", min_version=18)
def _center_crop_pad(node: OnnxNode) -> Expr:
    x = node.input(0)
    shape = node.shape(0)
    rank = len(shape)
    wanted = [int(v) for v in node.const(1, "shape").reshape(-1)]
    axes = [node.axis(a, rank) for a in node.attr("axes", range(rank))]
    if len(axes) != len(wanted):
        raise node.error(f"shape has {len(wanted)} values for {len(axes)} axes")
    crops, pads = [], [(0, 0)] * rank
    for axis, size in zip(axes, wanted):
        dim = shape[axis]
        if size < dim:
            begin = (dim - size) // 2
            crops.append((axis, begin, begin + size))
        elif size > dim:
            extra = size - dim
            pads[axis] = (extra // 2, extra - extra // 2)
    if crops:
        x = node.call(
            "strided_slice",
            x,
            begin=tuple(c[1] for c in crops),
            end=tuple(c[2] for c in crops),
            strides=(1,) * len(crops),
            axes=tuple(c[0] for c in crops),
        )
    if any(p != (0, 0) for p in pads):
        x = node.call("nn.pad", x, pad_width=tuple(pads), pad_value=0.0)
    return x if crops or any(p != (0, 0) for p in pads) else node.call("identity", x)


@converter("SwiGLU")
def _swiglu(node: OnnxNode) -> Expr:
    a, b = node.input(0), node.input(1)
    alpha = node.attr("alpha", 1.0)
    gate_input = (
        a if alpha == 1.0 else node.call("multiply", a, node.constant(alpha, node.dtype(0)))
    )
    swish = node.call("multiply", a, node.call("sigmoid", gate_input))
    return node.call("multiply", swish, b)


@converter("LpPool", min_version=11)
def _lp_pool(node: OnnxNode) -> Expr:
    """(sum over the window of |x|^p)^(1/p), as an average pool of |x|^p times the window size."""
    x = node.input(0)
    p = float(node.attr("p", 2))
    dtype = node.dtype(0)
    powered = node.call("power", node.call("abs", x), node.constant(p, dtype))
    kernel = node.attr("kernel_shape", ())
    mean = window_pool(node, "nn.avg_pool2d", powered, count_include_pad=True)
    total = node.call("multiply", mean, node.constant(float(math.prod(kernel)), dtype))
    return node.call("power", total, node.constant(1.0 / p, dtype))


# ----------------------------------------------------------------------------- selection


@converter("Compress", min_version=9)
def _compress(node: OnnxNode) -> Expr:
    """A take of the positions where ``condition`` is true (it decides the output shape,
    so it must be a constant); a condition shorter than the axis drops the rest."""
    x = node.input(0)
    condition = np.asarray(node.const(1, "condition")).reshape(-1).astype(bool)
    axis = node.attr("axis")
    if axis is None:  # compress the flattened input
        x = node.call("reshape", x, newshape=(-1,))
        axis = 0
    size = x.type.shape[node.axis(axis, len(x.type.shape))]  # type: ignore[union-attr]
    if condition.size > size:
        raise node.error(f"condition has {condition.size} values but the axis has {size} positions")
    positions = np.flatnonzero(condition).astype(np.int64)
    return node.call("take", x, node.constant(positions), axis=axis)


@converter("ReverseSequence", min_version=10)
def _reverse_sequence(node: OnnxNode) -> Expr:
    """Reverse the first ``sequence_lens[b]`` steps of each batch entry: a GatherElements
    along the time axis at ``len - 1 - t`` for ``t < len``, else ``t``."""
    shape = node.shape(0)
    rank = len(shape)
    batch_axis, time_axis = node.attr("batch_axis", 1), node.attr("time_axis", 0)
    if rank < 2 or {batch_axis, time_axis} != {0, 1}:
        raise node.error(
            f"batch_axis={batch_axis} and time_axis={time_axis} must be 0 and 1 (in either "
            f"order) of an input of rank >= 2, got rank {rank}"
        )
    lens = node.input(1)
    if node.dtype(1) != "int64":
        lens = node.call("cast", lens, dtype="int64")
    lens = node.call(
        "reshape", lens, newshape=tuple(-1 if a == batch_axis else 1 for a in range(rank))
    )
    steps = np.arange(shape[time_axis], dtype=np.int64)
    steps = node.constant(steps.reshape([-1 if a == time_axis else 1 for a in range(rank)]))
    reversed_steps = node.call(
        "subtract", node.call("subtract", lens, node.constant(1, "int64")), steps
    )
    index = node.call("where", node.call("less", steps, lens), reversed_steps, steps)
    index = node.call("broadcast_to", index, shape=tuple(shape))
    return gather_elements(node, node.input(0), index, time_axis)


_GRID_METHODS = {"bilinear": "linear", "bicubic": "cubic"}  # opset 16 names


@converter("GridSample", min_version=16)
def _grid_sample(node: OnnxNode) -> Expr:
    if len(node.shape(0)) != 4:
        raise node.unsupported(
            f"{len(node.shape(0)) - 2}-D GridSample (input rank {len(node.shape(0))}) is not "
            "supported; ember samples 2-D (N, C, H, W) inputs"
        )
    mode = node.attr("mode", "linear" if node.version >= 20 else "bilinear")
    return node.call(
        "image.grid_sample",
        node.input(0),
        node.input(1),
        method=_GRID_METHODS.get(mode, mode),
        padding_mode=node.attr("padding_mode", "zeros"),
        align_corners=bool(node.attr("align_corners", 0)),
    )
