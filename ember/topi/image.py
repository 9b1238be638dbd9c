"""``image.resize2d`` (ONNX Resize over H and W) as a TE compute.

Each output row / column maps back to an input coordinate (in float64, like the
reference) with the coordinate transformation mode; ``nearest`` rounds it,
``linear`` and ``cubic`` blend 2 or 4 taps per axis::

    y = resize2d_compute(x, attrs)    # (N, C, out_h, out_w)
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_INJECTIVE, int_shape, register_compute

F64 = "float64"


def _f(value: float) -> E.PrimExpr:
    return E.const(float(value), F64)


def _intrin(name: str, x: E.PrimExpr) -> E.PrimExpr:
    return E.call_intrin(F64, name, x)


def _coordinate(
    i: E.PrimExpr,
    out_size: int,
    in_size: int,
    scale: float,
    mode: str,
    roi: tuple[float, float],
) -> E.PrimExpr:
    """Input coordinate of output index ``i`` (float64), as the reference computes it
    (``ember.ops.image.source_coordinates``)."""
    x = i.astype(F64)
    if scale == 1.0 and out_size == in_size and roi == (0.0, 1.0):
        return x  # an axis that is not resized is copied
    length = in_size * scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_size > 1:
            step = (end - start) * (in_size - 1) / (length - 1)
            return x * _f(step) + _f(start * (in_size - 1))
        return _f((end - start) * (in_size - 1) / 2 + start * (in_size - 1))
    if mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / length)
        return _f(offset) + (x + _f(0.5)) / _f(scale) - _f(0.5)
    if mode in ("half_pixel", "pytorch_half_pixel"):
        if mode == "pytorch_half_pixel" and out_size <= 1:
            return _f(0.0)
        return (x + _f(0.5)) / _f(scale) - _f(0.5)
    if mode == "align_corners":
        if out_size <= 1:
            return _f(0.0)
        return x * _f(in_size - 1) / _f(length - 1)
    if mode == "asymmetric":
        return x / _f(scale)
    return (x + _f(0.5)) / _f(scale)  # tf_half_pixel_for_nn


def _clamp_index(v: E.PrimExpr, in_size: int) -> E.PrimExpr:
    return E.max_(E.min_(v, E.const(in_size - 1)), E.const(0))


def _nearest(coord: E.PrimExpr, mode: str, in_size: int) -> E.PrimExpr:
    if mode == "round_prefer_floor":
        v = _intrin("ceil", coord - _f(0.5))
    elif mode == "round_prefer_ceil":
        v = _intrin("floor", coord + _f(0.5))
    elif mode == "floor":
        v = _intrin("floor", coord)
    else:
        v = _intrin("ceil", coord)
    v = E.max_(E.min_(v, _f(in_size - 1)), _f(0.0))
    return v.astype("int32")


def _linear_taps(coord: E.PrimExpr, in_size: int) -> list[tuple[E.PrimExpr, E.PrimExpr]]:
    c = E.max_(E.min_(coord, _f(in_size - 1)), _f(0.0))
    low = _intrin("floor", c)
    frac = c - low
    low_i = low.astype("int32")
    high_i = E.min_(low_i + 1, E.const(in_size - 1))
    return [(low_i, _f(1.0) - frac), (high_i, frac)]


def _cubic_taps(
    coord: E.PrimExpr, in_size: int, a: float, exclude_outside: bool
) -> list[tuple[E.PrimExpr, E.PrimExpr]]:
    base = _intrin("floor", coord)
    t = coord - base
    base_i = base.astype("int32")
    av = _f(a)

    def near(d: E.PrimExpr) -> E.PrimExpr:
        return ((av + _f(2)) * d - (av + _f(3))) * d * d + _f(1)

    def far(d: E.PrimExpr) -> E.PrimExpr:
        return ((av * d - _f(5) * av) * d + _f(8) * av) * d - _f(4) * av

    weights = [far(t + _f(1)), near(t), near(_f(1) - t), far(_f(2) - t)]
    index = [base_i + off for off in (-1, 0, 1, 2)]
    if exclude_outside:
        inside = [te.all(k >= 0, k < in_size) for k in index]
        weights = [E.select(ok, wt, _f(0.0)) for ok, wt in zip(inside, weights, strict=True)]
        total = weights[0] + weights[1] + weights[2] + weights[3]
        weights = [wt / total for wt in weights]
    return [(_clamp_index(k, in_size), wt) for k, wt in zip(index, weights, strict=True)]


def resize2d_compute(x: Tensor, attrs: Any) -> Tensor:
    """ONNX Resize of NCHW ``x`` to ``attrs.size`` with ``attrs.method``."""
    n, c, in_h, in_w = int_shape(x)
    out_h, out_w = attrs.size
    scale_h, scale_w = attrs.scales or (out_h / in_h, out_w / in_w)
    mode = attrs.coordinate_transformation_mode

    def fcompute(b: E.PrimExpr, ch: E.PrimExpr, y: E.PrimExpr, xx: E.PrimExpr) -> E.PrimExpr:
        cy = _coordinate(y, out_h, in_h, scale_h, mode, attrs.axis_roi(0))
        cx = _coordinate(xx, out_w, in_w, scale_w, mode, attrs.axis_roi(1))
        value = _interpolate(b, ch, cy, cx)
        if mode != "tf_crop_and_resize":
            return value
        # TF CropAndResize: a pixel sampled outside the input on either axis
        outside = te.any(cy < _f(0.0), cy > _f(in_h - 1), cx < _f(0.0), cx > _f(in_w - 1))
        return E.select(outside, _f(attrs.extrapolation_value).astype(x.dtype), value)

    def _interpolate(b: E.PrimExpr, ch: E.PrimExpr, cy: E.PrimExpr, cx: E.PrimExpr) -> E.PrimExpr:
        if attrs.method == "nearest":
            return x[
                b,
                ch,
                _nearest(cy, attrs.nearest_mode, in_h),
                _nearest(cx, attrs.nearest_mode, in_w),
            ]
        if attrs.method == "linear":
            taps_y, taps_x = _linear_taps(cy, in_h), _linear_taps(cx, in_w)
        else:
            a, excl = attrs.cubic_coeff_a, attrs.exclude_outside
            taps_y = _cubic_taps(cy, in_h, a, excl)
            taps_x = _cubic_taps(cx, in_w, a, excl)
        total: E.PrimExpr | None = None
        for iy, wy in taps_y:
            row: E.PrimExpr | None = None
            for ix, wx in taps_x:
                term = wx * x[b, ch, iy, ix].astype(F64)
                row = term if row is None else row + term
            assert row is not None
            term = wy * row
            total = term if total is None else total + term
        assert total is not None
        if E.is_int(x.dtype):
            info_lo, info_hi = _int_range(x.dtype)
            total = _intrin("nearbyint", total)
            total = E.max_(E.min_(total, _f(info_hi)), _f(info_lo))
        return total.astype(x.dtype)

    return te.compute((n, c, out_h, out_w), fcompute, name="resize2d", tag=TAG_INJECTIVE)


def _int_range(dtype: str) -> tuple[int, int]:
    bits = int(dtype.lstrip("uint"))
    if dtype.startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@register_compute("image.resize2d")
def _resize2d(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return resize2d_compute(inputs[0], attrs)


# ----------------------------------------------------------------------------- grid_sample


def _reflect(x: E.PrimExpr, low: float, high: float) -> E.PrimExpr:
    """Mirror ``x`` at ``low`` and ``high`` until it lies between them (float64), as
    ``ember.ops.image.reflect``: mirroring is periodic with period 2 * span, so
    ``low + span - |m - span|`` with ``m = (x - low) mod 2 * span``. One copy of ``x``
    per use keeps the 16-tap cubic kernel's expressions small."""
    span = high - low
    if span <= 0:
        return _f(low)
    d = x - _f(low)
    m = d - _intrin("floor", d * _f(1 / (2 * span))) * _f(2 * span)
    mirrored = _f(low + span) - te.abs(m - _f(span))
    return E.select(te.any(x < _f(low), x > _f(high)), mirrored, x)


def _grid_taps(g: E.PrimExpr, size: int, attrs: Any) -> list:
    """(index, weight, valid) per tap along one axis, as the reference's ``_grid_taps``."""
    if attrs.align_corners:
        x = (g + _f(1.0)) * _f((size - 1) / 2)
        low, high = 0.0, size - 1.0
    else:
        x = ((g + _f(1.0)) * _f(size) - _f(1.0)) * _f(0.5)
        low, high = -0.5, size - 0.5
    if attrs.method == "nearest":
        x = _intrin("nearbyint", x)  # half to even
    outside = te.any(x < _f(low), x > _f(high))
    if attrs.padding_mode == "border":
        x = E.select(outside, E.max_(E.min_(x, _f(size - 1)), _f(0.0)), x)
    elif attrs.padding_mode == "reflection":
        x = E.select(outside, _reflect(x, low, high), x)
    if attrs.method == "nearest":
        taps = [(x, _f(1.0))]
    else:
        base = _intrin("floor", x)
        t = x - base
        if attrs.method == "linear":
            taps = [(base, _f(1.0) - t), (base + _f(1.0), t)]
        else:
            a = _f(-0.75)

            def near(d: E.PrimExpr) -> E.PrimExpr:
                return ((a + _f(2)) * d - (a + _f(3))) * d * d + _f(1)

            def far(d: E.PrimExpr) -> E.PrimExpr:
                return ((a * d - _f(5) * a) * d + _f(8) * a) * d - _f(4) * a

            weights = [far(t + _f(1)), near(t), near(_f(1) - t), far(_f(2) - t)]
            taps = [(base + _f(k - 1), wt) for k, wt in enumerate(weights)]
    out = []
    for index, weight in taps:
        valid = te.all(index >= _f(0.0), index < _f(size))
        if attrs.padding_mode == "reflection":
            index = _reflect(index, low, high)
        # indices stay float64 until clamped, so a far-away sample cannot overflow int32
        clamped = E.max_(E.min_(index, _f(size - 1)), _f(0.0)).astype("int32")
        out.append((clamped, weight, None if attrs.padding_mode != "zeros" else valid))
    return out


def grid_sample_compute(x: Tensor, grid: Tensor, attrs: Any) -> Tensor:
    """ONNX GridSample of NCHW ``x`` at ``grid`` (N, H_out, W_out, 2) points."""
    n, c, in_h, in_w = int_shape(x)
    _, out_h, out_w, _ = int_shape(grid)

    def fcompute(b: E.PrimExpr, ch: E.PrimExpr, y: E.PrimExpr, xx: E.PrimExpr) -> E.PrimExpr:
        gx = grid[b, y, xx, 0].astype(F64)
        gy = grid[b, y, xx, 1].astype(F64)
        total: E.PrimExpr | None = None
        for iy, wy, vy in _grid_taps(gy, in_h, attrs):
            for ix, wx, vx in _grid_taps(gx, in_w, attrs):
                term = wy * wx * x[b, ch, iy, ix].astype(F64)
                valid = [v for v in (vy, vx) if v is not None]
                if valid:
                    term = E.select(te.all(*valid), term, _f(0.0))
                total = term if total is None else total + term
        assert total is not None
        return total.astype(x.dtype)

    return te.compute((n, c, out_h, out_w), fcompute, name="grid_sample", tag=TAG_INJECTIVE)


@register_compute("image.grid_sample")
def _grid_sample(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return grid_sample_compute(inputs[0], inputs[1], attrs)
