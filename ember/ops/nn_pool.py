"""Pooling ops (max / average / global) and local response normalization, NCHW.

Window sizes follow ONNX and onnxruntime, including ``ceil_mode`` (the last
window may hang past the padding but must start inside the input or its
leading padding) and ``count_include_pad`` (declared padding counts, the
ceil-mode overhang never does)::

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((1, 64, 112, 112)))
    >>> call("nn.max_pool2d", x, pool_size=3, strides=2, padding=1).type.shape
    (1, 64, 56, 56)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    FLOAT_DTYPES,
    NUMBER_DTYPES,
    accumulate_dtype,
    bool_attr,
    check_dtype,
    check_rank,
    conv_output_size,
    int_tuple,
    normalize_axis,
    number,
    padding4,
    set_attr,
    tensor,
)
from ember.ops.nn_conv import windows
from ember.ops.registry import NoAttrs, OpPattern, register_op


@dataclass(frozen=True)
class MaxPool2DAttrs:
    """``pool_size`` (kh, kw) windows; padding is (top, left, bottom, right)."""

    pool_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        set_attr(self, "pool_size", int_tuple("pool_size", self.pool_size, 2, min_value=1))
        set_attr(self, "strides", int_tuple("strides", self.strides, 2, min_value=1))
        set_attr(self, "padding", padding4("padding", self.padding))
        set_attr(self, "dilation", int_tuple("dilation", self.dilation, 2, min_value=1))
        bool_attr(self, "ceil_mode")
        pt, pl, pb, pr = self.padding
        kh, kw = self.pool_size
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            # ONNX / PyTorch: a window made only of padding has no defined value.
            raise AttrError(
                f"attribute padding {self.padding} must be smaller than pool_size {self.pool_size} "
                "along each axis"
            )


@dataclass(frozen=True)
class AvgPool2DAttrs(MaxPool2DAttrs):
    """Like max pooling; ``count_include_pad`` divides by the window size including padding."""

    count_include_pad: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        bool_attr(self, "count_include_pad")


def pool_output_hw(shape: tuple[int, ...], attrs: MaxPool2DAttrs) -> tuple[int, int]:
    """(OH, OW) of a 2-D pool over an NCHW ``shape``."""
    pt, pl, pb, pr = attrs.padding
    out = []
    for i, (before, after) in enumerate(((pt, pb), (pl, pr))):
        out.append(
            conv_output_size(
                shape[2 + i],
                attrs.pool_size[i],
                stride=attrs.strides[i],
                pad_before=before,
                pad_after=after,
                dilation=attrs.dilation[i],
                ceil_mode=attrs.ceil_mode,
            )
        )
    return out[0], out[1]


def _pool_type(types: list, attrs: MaxPool2DAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_rank(data, "data (N, C, H, W)", 4)
    check_dtype(data, "data", NUMBER_DTYPES)
    oh, ow = pool_output_hw(data.shape, attrs)
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"pool window {attrs.pool_size} (dilation {attrs.dilation}) is larger than the "
            f"padded input {data.shape[2:]} with padding {attrs.padding}"
        )
    return TensorType((*data.shape[:2], oh, ow), data.dtype)


def _padded_windows(
    x: np.ndarray, attrs: MaxPool2DAttrs, fill: float | int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Windows (N, C, OH, OW, KH, KW) of ``x`` padded with ``fill`` (ceil overhang included)."""
    pt, pl, pb, pr = attrs.padding
    oh, ow = pool_output_hw(x.shape, attrs)
    # The ceil-mode overhang: extra rows past the declared bottom/right padding.
    need_h = (oh - 1) * attrs.strides[0] + attrs.dilation[0] * (attrs.pool_size[0] - 1) + 1
    need_w = (ow - 1) * attrs.strides[1] + attrs.dilation[1] * (attrs.pool_size[1] - 1) + 1
    extra_h = max(0, need_h - (x.shape[2] + pt + pb))
    extra_w = max(0, need_w - (x.shape[3] + pl + pr))
    padded = np.pad(
        x, ((0, 0), (0, 0), (pt, pb + extra_h), (pl, pr + extra_w)), constant_values=fill
    )
    return windows(padded, attrs.pool_size, attrs.strides, attrs.dilation, (oh, ow)), (
        extra_h,
        extra_w,
    )


max_pool2d = register_op("nn.max_pool2d", MaxPool2DAttrs, OpPattern.COMM_REDUCE, num_inputs=1)


@max_pool2d.flop_rule
def _max_pool2d_flops(call: Call) -> int:
    kh, kw = call.attrs.pool_size
    return call.type.size * kh * kw


max_pool2d.type_rule(_pool_type)


@max_pool2d.reference
def _max_pool2d_ref(inputs: list[np.ndarray], attrs: MaxPool2DAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    low = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    win, _ = _padded_windows(x, attrs, low)
    return win.max(axis=(4, 5)).astype(x.dtype)


avg_pool2d = register_op("nn.avg_pool2d", AvgPool2DAttrs, OpPattern.COMM_REDUCE, num_inputs=1)


@avg_pool2d.flop_rule
def _avg_pool2d_flops(call: Call) -> int:
    kh, kw = call.attrs.pool_size
    return call.type.size * kh * kw


avg_pool2d.type_rule(_pool_type)


@avg_pool2d.reference
def _avg_pool2d_ref(inputs: list[np.ndarray], attrs: AvgPool2DAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    acc = np.float64 if np.issubdtype(x.dtype, np.integer) else accumulate_dtype(x.dtype)
    win, (extra_h, extra_w) = _padded_windows(x.astype(acc, copy=False), attrs, 0)
    total = win.sum(axis=(4, 5))
    # The divisor counts window cells that are input (or declared padding when
    # count_include_pad); pooling a mask of such cells gives it for every window.
    pt, pl, pb, pr = attrs.padding
    h, w = x.shape[2:]
    mask = np.zeros((1, 1, h + pt + pb + extra_h, w + pl + pr + extra_w), dtype=acc)
    if attrs.count_include_pad:
        mask[..., : h + pt + pb, : w + pl + pr] = 1
    else:
        mask[..., pt : pt + h, pl : pl + w] = 1
    oh, ow = total.shape[2:]
    count = windows(mask, attrs.pool_size, attrs.strides, attrs.dilation, (oh, ow)).sum(axis=(4, 5))
    out = total / count
    if np.issubdtype(x.dtype, np.integer):
        out = np.round(out)  # integer average pooling rounds half to even like the quantized ops
    return out.astype(x.dtype)


def _global_pool_type(types: list, attrs: NoAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_rank(data, "data (N, C, H, W)", 4)
    check_dtype(data, "data", NUMBER_DTYPES)
    return TensorType((*data.shape[:2], 1, 1), data.dtype)


global_avg_pool2d = register_op("nn.global_avg_pool2d", NoAttrs, OpPattern.COMM_REDUCE)
global_avg_pool2d.type_rule(_global_pool_type)


@global_avg_pool2d.reference
def _global_avg_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    acc = np.float64 if np.issubdtype(x.dtype, np.integer) else accumulate_dtype(x.dtype)
    out = x.astype(acc, copy=False).mean(axis=(2, 3), keepdims=True)
    if np.issubdtype(x.dtype, np.integer):
        out = np.round(out)
    return out.astype(x.dtype)


global_max_pool2d = register_op("nn.global_max_pool2d", NoAttrs, OpPattern.COMM_REDUCE)
global_max_pool2d.type_rule(_global_pool_type)


@global_max_pool2d.reference
def _global_max_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    return x.max(axis=(2, 3), keepdims=True)


# ----------------------------------------------------------------------------- lrn


@dataclass(frozen=True)
class LRNAttrs:
    """ONNX LRN: ``x / (bias + alpha / size * sum(x^2 over size channels)) ** beta``."""

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0
    axis: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int | np.integer):
            raise AttrError(f"attribute size must be a positive int, got {self.size!r}")
        if self.size < 1:
            raise AttrError(f"attribute size must be a positive int, got {self.size}")
        set_attr(self, "size", int(self.size))
        set_attr(self, "alpha", number("alpha", self.alpha))
        set_attr(self, "beta", number("beta", self.beta))
        set_attr(self, "bias", number("bias", self.bias))
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise AttrError(f"attribute axis must be an int, got {self.axis!r}")
        set_attr(self, "axis", int(self.axis))


lrn = register_op("nn.lrn", LRNAttrs, OpPattern.OPAQUE, num_inputs=1)


@lrn.flop_rule
def _lrn_flops(call: Call) -> int:
    return call.type.size * (2 * call.attrs.size + 3)


@lrn.type_rule
def _lrn_type(types: list, attrs: LRNAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_dtype(data, "data", FLOAT_DTYPES)
    normalize_axis(attrs.axis, data.ndim)
    return data


@lrn.reference
def _lrn_ref(inputs: list[np.ndarray], attrs: LRNAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    axis = normalize_axis(attrs.axis, x.ndim)
    x64 = np.moveaxis(x.astype(np.float64), axis, 0)
    # ONNX: channels [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the tensor.
    before, after = (attrs.size - 1) // 2, attrs.size - 1 - (attrs.size - 1) // 2
    sq = np.pad(x64 * x64, [(before, after)] + [(0, 0)] * (x.ndim - 1))
    csum = np.concatenate([np.zeros((1, *sq.shape[1:])), np.cumsum(sq, axis=0)])
    c = x64.shape[0]
    window = csum[attrs.size : attrs.size + c] - csum[:c]
    out = x64 / (attrs.bias + attrs.alpha / attrs.size * window) ** attrs.beta
    return np.moveaxis(out, 0, axis).astype(x.dtype)
