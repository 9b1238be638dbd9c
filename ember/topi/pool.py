"""Pooling (max / average / global) and local response normalization as TE computes, NCHW.

Padding and the ceil-mode overhang are never materialized: a window cell outside
the input is skipped by a select (-inf for max, 0 for sums), and the average's
divisor is counted in closed form per window::

    out = pool2d_compute(x, attrs, out_shape, "max")
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import (
    TAG_ELEMWISE,
    TAG_MATERIALIZE,
    int_shape,
    normalize_axis,
    register_compute,
    shape_of,
)
from ember.topi.nn import accumulate_dtype


def _ceil_div(a: E.PrimExpr, d: int) -> E.PrimExpr:
    return E.const(0) - ((E.const(0) - a) // d)


def _window_count(start: E.PrimExpr, lo: int, hi: int, kernel: int, dil: int) -> E.PrimExpr:
    """Number of taps ``start + r * dil`` (0 <= r < kernel) inside ``[lo, hi)``."""
    first = E.max_(_ceil_div(E.const(lo) - start, dil), E.const(0))
    last = E.min_(_ceil_div(E.const(hi) - start, dil), E.const(kernel))
    return E.max_(last - first, E.const(0))


def _avg_dtype(dtype: str) -> str:
    return "float64" if E.is_int(dtype) else accumulate_dtype(dtype)


def _round_back(value: E.PrimExpr, dtype: str) -> E.PrimExpr:
    if E.is_int(dtype):  # integer average pooling rounds half to even (the reference)
        value = E.call_intrin(value.dtype, "nearbyint", value)
    return value if value.dtype == dtype else value.astype(dtype)


def pool2d_compute(x: Tensor, attrs: Any, out_shape: tuple[int, ...], kind: str) -> Tensor:
    """Max or average 2-D pooling with padding, dilation, ceil_mode, count_include_pad."""
    _, _, h, w = int_shape(x)
    kh, kw = attrs.pool_size
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, pb, pr = attrs.padding
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    acc = x.dtype if kind == "max" else _avg_dtype(x.dtype)
    fill = te.min_value(x.dtype) if kind == "max" else E.const(0, x.dtype)
    # The windows read a padded copy (padding, plus the ceil-mode overhang, filled with
    # -inf or 0): the inner loops then need no bounds checks and vectorize, and a fused
    # elementwise prologue runs once per input element instead of once per window tap.
    oh, ow = out_shape[2:]
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    extra_b = max(0, need_h - (h + pt))
    extra_r = max(0, need_w - (w + pl))
    if pt or pl or extra_b or extra_r:
        src = te.compute(
            (*int_shape(x)[:2], h + pt + extra_b, w + pl + extra_r),
            lambda n, c, iy, ix: te.if_then_else(
                te.all(iy >= pt, ix >= pl, iy < h + pt, ix < w + pl),
                x[n, c, iy - pt, ix - pl],
                fill,
            ),
            name="pad_data",
            tag=TAG_MATERIALIZE,
        )
    else:
        src = x

    def window(n: E.PrimExpr, c: E.PrimExpr, y: E.PrimExpr, xx: E.PrimExpr) -> E.PrimExpr:
        value = src[n, c, y * sh + ry * dh, xx * sw + rx * dw]
        if value.dtype != acc:
            value = value.astype(acc)
        reducer = te.max if kind == "max" else te.sum
        return reducer(value, axis=[ry, rx])

    pooled = te.compute(out_shape, window, name=f"{kind}_pool2d", tag="pool2d")
    if kind == "max":
        return pooled

    def average(n: E.PrimExpr, c: E.PrimExpr, y: E.PrimExpr, xx: E.PrimExpr) -> E.PrimExpr:
        y0, x0 = y * sh - pt, xx * sw - pl
        if attrs.count_include_pad:
            count = _window_count(y0, -pt, h + pb, kh, dh) * _window_count(x0, -pl, w + pr, kw, dw)
        else:
            count = _window_count(y0, 0, h, kh, dh) * _window_count(x0, 0, w, kw, dw)
        return _round_back(pooled[n, c, y, xx] / count.astype(acc), x.dtype)

    return te.compute(out_shape, average, name="avg_pool2d", tag=TAG_ELEMWISE)


@register_compute("nn.max_pool2d")
def _max_pool2d(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return pool2d_compute(inputs[0], attrs, shape_of(out_type), "max")


@register_compute("nn.avg_pool2d")
def _avg_pool2d(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return pool2d_compute(inputs[0], attrs, shape_of(out_type), "avg")


def global_pool_compute(x: Tensor, kind: str) -> Tensor:
    """Max or average over H and W of NCHW ``x``, keeping them as size 1."""
    n, c, h, w = int_shape(x)
    ry = te.reduce_axis((0, h), name="ry")
    rx = te.reduce_axis((0, w), name="rx")
    if kind == "max":
        return te.compute(
            (n, c, 1, 1),
            lambda i, j, a, b: te.max(x[i, j, ry, rx], axis=[ry, rx]),
            name="global_max_pool2d",
            tag="pool2d",
        )
    acc = _avg_dtype(x.dtype)
    total = te.compute(
        (n, c, 1, 1),
        lambda i, j, a, b: te.sum(x[i, j, ry, rx].astype(acc), axis=[ry, rx]),
        name="global_sum",
        tag="pool2d",
    )
    return te.compute(
        (n, c, 1, 1),
        lambda *i: _round_back(total[i] / E.const(h * w, acc), x.dtype),
        name="global_avg_pool2d",
        tag=TAG_ELEMWISE,
    )


@register_compute("nn.global_avg_pool2d")
def _global_avg(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return global_pool_compute(inputs[0], "avg")


@register_compute("nn.global_max_pool2d")
def _global_max(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return global_pool_compute(inputs[0], "max")


@register_compute("nn.lrn")
def _lrn(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    (x,) = inputs
    shape = int_shape(x)
    axis = normalize_axis(attrs.axis, x.ndim)
    channels = shape[axis]
    before = (attrs.size - 1) // 2
    r = te.reduce_axis((0, attrs.size), name="r")

    def square_sum(*i: E.PrimExpr) -> E.PrimExpr:
        idx = list(i)
        ch = i[axis] + r - before
        idx[axis] = ch
        v = x[tuple(idx)]
        v = v if v.dtype == acc else v.astype(acc)
        inside = te.all(ch >= 0, ch < channels)
        return te.sum(E.select(inside, v * v, E.const(0, acc)), axis=r)

    # float16 squares and their sum in float32 (a float16 square overflows past 256).
    acc = accumulate_dtype(x.dtype)
    sq = te.compute(shape, square_sum, name="lrn_square_sum", tag="lrn")
    scale = attrs.alpha / attrs.size

    def normalize(*i: E.PrimExpr) -> E.PrimExpr:
        base = E.const(attrs.bias, acc) + E.const(scale, acc) * sq[i]
        value = x[i].astype(acc) if acc != x.dtype else x[i]
        return _round_back(
            value / E.call_intrin(acc, "pow", base, E.const(attrs.beta, acc)), x.dtype
        )

    return te.compute(shape, normalize, name="lrn", tag=TAG_ELEMWISE)
