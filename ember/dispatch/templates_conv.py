"""Tunable CPU templates for NCHW convolutions and pooling.

``conv2d_nchw``  direct convolution, output blocked over (channels x width) in registers;
``depthwise_conv2d_nchw``  one filter per channel (weight (C, 1, KH, KW));
``pool2d_nchw``  max or average pooling (average divides by the window area).

Arguments are plain tuples so the workload is JSON: strides ``(sh, sw)``, padding
``(top, left, bottom, right)``.

    task = create_task("conv2d_nchw", (1, 64, 56, 56, 64, 3, 3, (1, 1), (1, 1, 1, 1)))
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.dispatch.space import _ConfigBase
from ember.dispatch.task import template
from ember.dispatch.templates_dense import _lanes
from ember.errors import ScheduleError

MAX_CHANNEL_BLOCK = 16
"""Output channels of one register block (unrolled)."""
MAX_WIDTH_BLOCK = 64
"""Output columns of one register block (vectorized in chunks)."""


def _out_size(size: int, pad: int, kernel: int, stride: int) -> int:
    out = (size + pad - kernel) // stride + 1
    if out < 1:
        raise ScheduleError(
            f"conv/pool template: window {kernel} with stride {stride} and total padding {pad} "
            f"does not fit an input of size {size}"
        )
    return out


def _pad(data: Any, padding: tuple[int, ...], value: float, name: str) -> Any:
    top, left, bottom, right = padding
    if not any(padding):
        return data
    n, c, h, w = (int(d.value) for d in data.shape)

    def body(b: Any, ch: Any, y: Any, x: Any) -> Any:
        inside = te.all(y >= top, y < h + top, x >= left, x < w + left)
        return te.if_then_else(inside, data[b, ch, y - top, x - left], te.const(value, data.dtype))

    return te.compute((n, c, h + top + bottom, w + left + right), body, name=name)


def _schedule_pad(cfg: _ConfigBase, s: Any, padded: Any, data: Any) -> None:
    """Padding either inlined into the consumer (no copy, a branch per load) or computed once."""
    if padded is data:
        return
    cfg.define_knob("inline_pad", [False, True])
    if cfg["inline_pad"].val:
        s[padded].compute_inline()
    else:
        b, ch, y, x = s[padded].op.axis
        s[padded].parallel(s[padded].fuse(b, ch))


@template("conv2d_nchw")
def conv2d_nchw(
    cfg: _ConfigBase,
    batch: int,
    in_channels: int,
    height: int,
    width: int,
    out_channels: int,
    kernel_h: int,
    kernel_w: int,
    strides: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    dtype: str = "float32",
) -> tuple[Any, list[Any]]:
    """Direct NCHW convolution (weight (O, C, KH, KW)); returns data, weight, output."""
    sh, sw = strides
    oh = _out_size(height, padding[0] + padding[2], kernel_h, sh)
    ow = _out_size(width, padding[1] + padding[3], kernel_w, sw)
    data = te.placeholder((batch, in_channels, height, width), dtype, name="data")
    weight = te.placeholder((out_channels, in_channels, kernel_h, kernel_w), dtype, name="weight")
    padded = _pad(data, padding, 0.0, "pad")
    ic = te.reduce_axis((0, in_channels), name="ic")
    kh = te.reduce_axis((0, kernel_h), name="kh")
    kw = te.reduce_axis((0, kernel_w), name="kw")
    out = te.compute(
        (batch, out_channels, oh, ow),
        lambda b, o, y, x: te.sum(
            padded[b, ic, y * sh + kh, x * sw + kw] * weight[o, ic, kh, kw], axis=[ic, kh, kw]
        ),
        name="conv",
    )
    cfg.add_flop(2.0 * batch * out_channels * oh * ow * in_channels * kernel_h * kernel_w)
    s = te.create_schedule(out.op)

    if cfg.is_fallback:
        cfg.fallback_split("tile_oc", [-1, 4 if out_channels % 4 == 0 else 1])
        cfg.fallback_split("tile_ow", [-1, _lanes(ow)])
        cfg.fallback_split("tile_ic", [-1, 1])
    cfg.define_split("tile_oc", out_channels, num_outputs=2, max_factor=MAX_CHANNEL_BLOCK)
    cfg.define_split("tile_ow", ow, num_outputs=2, max_factor=MAX_WIDTH_BLOCK)
    cfg.define_split("tile_ic", in_channels, num_outputs=2)
    cfg.define_knob("kernel_loops_outside", [True, False])
    cfg.define_knob("unroll_kw", [False, True])
    _schedule_pad(cfg, s, padded, data)

    CC = s.cache_write(out, "local")
    b, o, y, x = s[out].op.axis
    oco, oci = cfg["tile_oc"].apply(s, out, o)
    xo, xi = cfg["tile_ow"].apply(s, out, x)
    s[out].reorder(b, oco, y, xo, oci, xi)
    s[out].parallel(s[out].fuse(b, oco, y))
    s[CC].compute_at(s[out], xo)

    cb, co, cy, cx = s[CC].op.axis
    cic, ckh, ckw = s[CC].op.reduce_axis
    ico, ici = cfg["tile_ic"].apply(s, CC, cic)
    lanes = _lanes(cfg["tile_ow"].size[-1])
    cxo, cxi = s[CC].split(cx, factor=lanes)
    if cfg["kernel_loops_outside"].val:
        s[CC].reorder(cb, cy, ckh, ckw, ico, ici, co, cxo, cxi)
    else:
        s[CC].reorder(cb, cy, ico, ici, ckh, ckw, co, cxo, cxi)
    s[CC].unroll(co)
    s[CC].unroll(cxo)
    if cfg["unroll_kw"].val:
        s[CC].unroll(ckw)
    if lanes > 1 and sw == 1:
        s[CC].vectorize(cxi)
    return s, [data, weight, out]


@template("depthwise_conv2d_nchw")
def depthwise_conv2d_nchw(
    cfg: _ConfigBase,
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel_h: int,
    kernel_w: int,
    strides: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    dtype: str = "float32",
) -> tuple[Any, list[Any]]:
    """Depthwise NCHW convolution (weight (C, 1, KH, KW)); returns data, weight, output."""
    sh, sw = strides
    oh = _out_size(height, padding[0] + padding[2], kernel_h, sh)
    ow = _out_size(width, padding[1] + padding[3], kernel_w, sw)
    data = te.placeholder((batch, channels, height, width), dtype, name="data")
    weight = te.placeholder((channels, 1, kernel_h, kernel_w), dtype, name="weight")
    padded = _pad(data, padding, 0.0, "pad")
    kh = te.reduce_axis((0, kernel_h), name="kh")
    kw = te.reduce_axis((0, kernel_w), name="kw")
    out = te.compute(
        (batch, channels, oh, ow),
        lambda b, c, y, x: te.sum(
            padded[b, c, y * sh + kh, x * sw + kw] * weight[c, 0, kh, kw], axis=[kh, kw]
        ),
        name="depthwise",
    )
    cfg.add_flop(2.0 * batch * channels * oh * ow * kernel_h * kernel_w)
    s = te.create_schedule(out.op)

    if cfg.is_fallback:
        cfg.fallback_split("tile_oh", [-1, 1])
        cfg.fallback_split("tile_ow", [-1, _lanes(ow)])
    cfg.define_split("tile_oh", oh, num_outputs=2, max_factor=8)
    cfg.define_split("tile_ow", ow, num_outputs=2, max_factor=MAX_WIDTH_BLOCK)
    cfg.define_annotate("unroll_kernel", [kh, kw], policy="try_unroll")
    _schedule_pad(cfg, s, padded, data)

    CC = s.cache_write(out, "local")
    b, c, y, x = s[out].op.axis
    yo, yi = cfg["tile_oh"].apply(s, out, y)
    xo, xi = cfg["tile_ow"].apply(s, out, x)
    s[out].reorder(b, c, yo, xo, yi, xi)
    s[out].parallel(s[out].fuse(b, c))
    s[CC].compute_at(s[out], xo)
    cb, cc, cy, cx = s[CC].op.axis
    ckh, ckw = s[CC].op.reduce_axis
    lanes = _lanes(cfg["tile_ow"].size[-1])
    cxo, cxi = s[CC].split(cx, factor=lanes)
    s[CC].reorder(cb, cc, ckh, ckw, cy, cxo, cxi)
    cfg["unroll_kernel"].apply(s, CC, [ckh, ckw])
    s[CC].unroll(cy)
    if lanes > 1 and sw == 1:
        s[CC].vectorize(cxi)
    return s, [data, weight, out]


@template("pool2d_nchw")
def pool2d_nchw(
    cfg: _ConfigBase,
    batch: int,
    channels: int,
    height: int,
    width: int,
    pool_h: int,
    pool_w: int,
    strides: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    pool_type: str = "max",
    dtype: str = "float32",
) -> tuple[Any, list[Any]]:
    """Max or average pooling (the average divides by ``pool_h * pool_w``)."""
    if pool_type not in ("max", "avg"):
        raise ScheduleError(f"pool2d_nchw: pool_type must be 'max' or 'avg', got {pool_type!r}")
    sh, sw = strides
    oh = _out_size(height, padding[0] + padding[2], pool_h, sh)
    ow = _out_size(width, padding[1] + padding[3], pool_w, sw)
    data = te.placeholder((batch, channels, height, width), dtype, name="data")
    fill = float("-inf") if pool_type == "max" else 0.0
    padded = _pad(data, padding, fill, "pad")
    kh = te.reduce_axis((0, pool_h), name="kh")
    kw = te.reduce_axis((0, pool_w), name="kw")
    reducer = te.max if pool_type == "max" else te.sum
    pooled = te.compute(
        (batch, channels, oh, ow),
        lambda b, c, y, x: reducer(padded[b, c, y * sh + kh, x * sw + kw], axis=[kh, kw]),
        name="pool",
    )
    outputs = pooled
    if pool_type == "avg":
        area = float(pool_h * pool_w)
        outputs = te.compute(
            pooled.shape, lambda *i: pooled[i] / te.const(area, dtype), name="pool_avg"
        )
    cfg.add_flop(1.0 * batch * channels * oh * ow * pool_h * pool_w)
    s = te.create_schedule(outputs.op)

    if cfg.is_fallback:
        cfg.fallback_split("tile_ow", [-1, _lanes(ow)])
    cfg.define_split("tile_ow", ow, num_outputs=2, max_factor=MAX_WIDTH_BLOCK)
    cfg.define_annotate("unroll_window", [kh, kw], policy="try_unroll")
    _schedule_pad(cfg, s, padded, data)

    b, c, y, x = s[pooled].op.axis
    xo, xi = cfg["tile_ow"].apply(s, pooled, x)
    pkh, pkw = s[pooled].op.reduce_axis
    s[pooled].reorder(b, c, y, xo, pkh, pkw, xi)
    cfg["unroll_window"].apply(s, pooled, [pkh, pkw])
    if cfg["tile_ow"].size[-1] > 1 and sw == 1:
        s[pooled].vectorize(xi)
    if outputs is not pooled:
        ob, oc, oy, ox = s[outputs].op.axis
        s[pooled].compute_at(s[outputs], oy)
        s[outputs].parallel(s[outputs].fuse(ob, oc))
    else:
        s[pooled].parallel(s[pooled].fuse(b, c))
    return s, [data, outputs]


__all__ = ["conv2d_nchw", "depthwise_conv2d_nchw", "pool2d_nchw"]
