"""Convolutions and matrix products as TE computes (NCHW data, OIHW weights).

The reduction is its own stage (tag ``conv2d`` / ``dense`` / ``matmul``); a bias is
a separate elementwise stage after it, so the default schedule treats bias,
activation and residual add alike as an epilogue computed per output element::

    out = conv2d_compute(data, weight, attrs)      # te.sum over (rc, ry, rx)
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.ops.nn import PadAttrs
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, TAG_MATERIALIZE, int_shape, register_compute, shape_of
from ember.topi.transform import pad_compute

DOT_LANES = 8
"""Dense splits K into this many partial sums, so the inner loop runs along contiguous K
for both operands (8 float32 = one AVX2 register)."""

DOT_MIN_K = 16
"""Below this K a plain reduction is as fast as partial sums."""


def accumulate_dtype(dtype: str) -> str:
    """Sums of float16 and bfloat16 run in float32, sums of integers in int64, like the
    references."""
    if dtype in ("float16", "bfloat16"):
        return "float32"
    if dtype == "uint64":
        return "uint64"  # int64 would wrap the upper half of the range
    if E.is_int(dtype):
        return "int64"
    return dtype


def _mul(a: E.PrimExpr, b: E.PrimExpr, acc: str) -> E.PrimExpr:
    """``a * b`` in the accumulate dtype (operands widened first, like the references)."""
    return _acc(a, acc) * _acc(b, acc)


def _acc(value: E.PrimExpr, acc: str) -> E.PrimExpr:
    return value if value.dtype == acc else value.astype(acc)


def _finish(t: Tensor, dtype: str, name: str) -> Tensor:
    if t.dtype == dtype:
        return t
    return te.compute(t.shape, lambda *i: t[i].astype(dtype), name=name + "_cast", tag=TAG_ELEMWISE)


def add_bias(out: Tensor, bias: Tensor, axis: int, name: str = "bias_add") -> Tensor:
    """``out + bias`` with the (C,) ``bias`` broadcast along ``axis``."""
    return te.compute(out.shape, lambda *i: out[i] + bias[i[axis]], name=name, tag=TAG_ELEMWISE)


def pad_spatial(data: Tensor, padding: tuple[int, int, int, int]) -> Tensor:
    """Zero-pad H and W of NCHW ``data`` (a stage the schedule may store: tag materialize)."""
    pt, pl, pb, pr = padding
    if not any(padding):
        return data
    attrs = PadAttrs(pad_width=((0, 0), (0, 0), (pt, pb), (pl, pr)), pad_value=0.0)
    return pad_compute(data, attrs, name="pad_data", tag=TAG_MATERIALIZE)


def phase_split_columns(
    data: Tensor, padding: tuple[int, int, int, int], stride: int, fill: E.PrimExpr, width: int
) -> Tensor:
    """Padded NCHW ``data`` with its columns dealt into ``stride`` phases:
    ``out[n, c, y, p, j] = padded[n, c, y, j * stride + p]`` (``fill`` outside the input).

    A window reading padded column ``x * stride + t`` then reads phase ``t % stride`` at
    ``x + t // stride``: consecutive outputs read consecutive elements, so strided
    convolutions and pools vectorize with plain loads. ``width`` is the padded width needed.
    """
    n, c, h, w = int_shape(data)
    pt, pl, pb, _ = padding
    cols = -(-width // stride)

    def fcompute(b: Any, ch: Any, y: Any, phase: Any, j: Any) -> E.PrimExpr:
        iy, ix = y - pt, j * stride + phase - pl
        inside = te.all(iy >= 0, iy < h, ix >= 0, ix < w)
        return te.if_then_else(inside, data[b, ch, iy, ix], fill)

    return te.compute(
        (n, c, h + pt + pb, stride, cols), fcompute, name="pad_phases", tag=TAG_MATERIALIZE
    )


def conv2d_compute(data: Tensor, weight: Tensor, attrs: Any, out_shape: tuple[int, ...]) -> Tensor:
    """Grouped, strided, dilated 2-D convolution (NCHW x OIHW), summed in the accumulate dtype."""
    _, _, kh, kw = int_shape(weight)
    cg = int_shape(weight)[1]
    out_channels = out_shape[1]
    out_per_group = out_channels // attrs.groups
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    padded = pad_spatial(data, attrs.padding)
    acc = accumulate_dtype(data.dtype)
    rc = te.reduce_axis((0, cg), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")

    def fcompute(n: E.PrimExpr, o: E.PrimExpr, y: E.PrimExpr, x: E.PrimExpr) -> E.PrimExpr:
        channel = rc if attrs.groups == 1 else (o // out_per_group) * cg + rc
        value = _mul(
            padded[n, channel, y * sh + ry * dh, x * sw + rx * dw], weight[o, rc, ry, rx], acc
        )
        return te.sum(value, axis=[rc, ry, rx])

    if _use_channel_blocks(attrs, out_shape, data.dtype):
        return _conv2d_channel_blocked(padded, weight, attrs, out_shape, acc, data.dtype)
    if sw > 1:
        # Row vectors of a strided convolution: read the columns phase by phase.
        width = (out_shape[3] - 1) * sw + dw * (kw - 1) + 1
        phases = phase_split_columns(data, attrs.padding, sw, E.const(0, data.dtype), width)

        def fcompute(n: E.PrimExpr, o: E.PrimExpr, y: E.PrimExpr, x: E.PrimExpr) -> E.PrimExpr:
            channel = rc if attrs.groups == 1 else (o // out_per_group) * cg + rc
            tap = rx * dw
            pixel = phases[n, channel, y * sh + ry * dh, tap % sw, x + tap // sw]
            return te.sum(_mul(pixel, weight[o, rc, ry, rx], acc), axis=[rc, ry, rx])

    out = te.compute(out_shape, fcompute, name="conv2d", tag="conv2d")
    return _finish(out, data.dtype, "conv2d")


OUTPUT_CHANNEL_BLOCK = 8
"""Output channels computed together (one vector) by the channel-blocked convolution."""

SHORT_ROW = 7
"""Output rows this short use blocks of two channel vectors."""

TAG_CONV_BLOCKED = "conv2d_oc_block"


def _use_channel_blocks(attrs: Any, out_shape: tuple[int, ...], dtype: str) -> bool:
    """Vectorize over output channels whenever they come in blocks of 8: loads of the
    input are then scalar broadcasts, never strided or unaligned row vectors, so the
    same loop serves 7x7 maps, strided convolutions and 1x1 layers (measured at least
    as fast as row vectors everywhere). Grouped / depthwise layers vectorize rows."""
    _, o, _, _ = out_shape
    return attrs.groups == 1 and o % OUTPUT_CHANNEL_BLOCK == 0 and E.is_float(dtype)


def _conv2d_channel_blocked(
    padded: Tensor, weight: Tensor, attrs: Any, out_shape: tuple[int, ...], acc: str, dtype: str
) -> Tensor:
    """conv2d computed as (N, O/8, OH, OW, 8) blocks, then read back as NCHW.

    The schedule hosts the blocked stage a row at a time: every input pixel is
    broadcast against a vector of 8 output channels, one accumulator per column.
    """
    n, o, oh, ow = out_shape
    # Short rows have few column accumulators; two vectors of channels per column then
    # reuse each input broadcast twice and still fit the registers (7 columns x 2).
    block = (
        2 * OUTPUT_CHANNEL_BLOCK
        if ow <= SHORT_ROW and o % (2 * OUTPUT_CHANNEL_BLOCK) == 0
        else OUTPUT_CHANNEL_BLOCK
    )
    _, cin, kh, kw = int_shape(weight)
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    rc = te.reduce_axis((0, cin), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")

    # Weights repacked so the 8 channels of one tap are contiguous (one vector load).
    packed = te.compute(
        (o // block, cin, kh, kw, block),
        lambda ob, c, y, x, lane: weight[ob * block + lane, c, y, x],
        name="weight_pack",
        tag=TAG_MATERIALIZE,
    )

    def fcompute(b: Any, oc_block: Any, y: Any, x: Any, lane: Any) -> E.PrimExpr:
        pixel = padded[b, rc, y * sh + ry * dh, x * sw + rx * dw]
        return te.sum(_mul(pixel, packed[oc_block, rc, ry, rx, lane], acc), axis=[rc, ry, rx])

    blocked = te.compute(
        (n, o // block, oh, ow, block), fcompute, name="conv2d_oc_block", tag=TAG_CONV_BLOCKED
    )
    return te.compute(
        out_shape,
        lambda b, c, y, x: (
            blocked[b, c // block, y, x, c % block].astype(dtype)
            if acc != dtype
            else blocked[b, c // block, y, x, c % block]
        ),
        name="conv2d",
        tag=TAG_ELEMWISE,
    )


@register_compute("nn.conv2d")
def _conv2d(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    out = conv2d_compute(inputs[0], inputs[1], attrs, shape_of(out_type))
    return add_bias(out, inputs[2], 1) if len(inputs) == 3 else out


def conv2d_transpose_compute(
    data: Tensor, weight: Tensor, attrs: Any, out_shape: tuple[int, ...]
) -> Tensor:
    """Transposed convolution: each output pixel gathers the input pixels whose kernel
    taps land on it (no scatter, so it parallelizes like a convolution)."""
    _, c, h, w = int_shape(data)
    _, og, kh, kw = int_shape(weight)
    cg = c // attrs.groups
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, _, _ = attrs.padding
    acc = accumulate_dtype(data.dtype)
    rc = te.reduce_axis((0, cg), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")

    def fcompute(n: E.PrimExpr, o: E.PrimExpr, y: E.PrimExpr, x: E.PrimExpr) -> E.PrimExpr:
        channel = rc if attrs.groups == 1 else (o // og) * cg + rc
        ty = y + pt - ry * dh
        tx = x + pl - rx * dw
        iy, ix = ty // sh, tx // sw
        ok = [ty >= 0, tx >= 0, iy < h, ix < w]
        if sh > 1:
            ok.append((ty % sh).equal(0))
        if sw > 1:
            ok.append((tx % sw).equal(0))
        # Clamped indices keep every read in bounds; the select zeroes the invalid taps.
        safe_y = E.max_(E.min_(iy, E.const(h - 1)), E.const(0))
        safe_x = E.max_(E.min_(ix, E.const(w - 1)), E.const(0))
        o_in_group = o if attrs.groups == 1 else o % og
        value = _mul(data[n, channel, safe_y, safe_x], weight[channel, o_in_group, ry, rx], acc)
        return te.sum(E.select(te.all(*ok), value, E.const(0, acc)), axis=[rc, ry, rx])

    out = te.compute(out_shape, fcompute, name="conv2d_transpose", tag="conv2d_transpose")
    return _finish(out, data.dtype, "conv2d_transpose")


@register_compute("nn.conv2d_transpose")
def _conv2d_transpose(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    out = conv2d_transpose_compute(inputs[0], inputs[1], attrs, shape_of(out_type))
    return add_bias(out, inputs[2], 1) if len(inputs) == 3 else out


def dense_compute(data: Tensor, weight: Tensor, out_shape: tuple[int, ...]) -> Tensor:
    """``out[..., n] = sum_k data[..., k] * weight[n, k]``.

    For K >= DOT_MIN_K the sum runs in two stages: DOT_LANES partial sums strided
    along K (vectorizable, contiguous reads of both operands), then their total.
    """
    k_total = int_shape(weight)[1]
    acc = accumulate_dtype(data.dtype)
    lead = len(out_shape) - 1
    if k_total < DOT_MIN_K:
        k = te.reduce_axis((0, k_total), name="k")

        def direct(*i: E.PrimExpr) -> E.PrimExpr:
            return te.sum(_mul(data[(*i[:lead], k)], weight[i[lead], k], acc), axis=k)

        out = te.compute(out_shape, direct, name="dense", tag="dense")
        return _finish(out, data.dtype, "dense")
    chunks = -(-k_total // DOT_LANES)
    ko = te.reduce_axis((0, chunks), name="ko")

    def partial(*i: E.PrimExpr) -> E.PrimExpr:
        lane = i[-1]
        kk = ko * DOT_LANES + lane
        if k_total % DOT_LANES == 0:
            return te.sum(_mul(data[(*i[:lead], kk)], weight[i[lead], kk], acc), axis=ko)
        safe = E.min_(kk, E.const(k_total - 1))
        value = _mul(data[(*i[:lead], safe)], weight[i[lead], safe], acc)
        return te.sum(E.select(kk < k_total, value, E.const(0, acc)), axis=ko)

    parts = te.compute((*out_shape, DOT_LANES), partial, name="dense_partial", tag="dense_partial")
    lane = te.reduce_axis((0, DOT_LANES), name="lane")
    out = te.compute(
        out_shape, lambda *i: te.sum(parts[(*i, lane)], axis=lane), name="dense", tag="dense"
    )
    return _finish(out, data.dtype, "dense")


@register_compute("nn.dense")
def _dense(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    out = dense_compute(inputs[0], inputs[1], shape_of(out_type))
    return add_bias(out, inputs[2], len(out.shape) - 1) if len(inputs) == 3 else out


def _batch_index(t_shape: tuple[int, ...], out_batch: tuple[E.PrimExpr, ...]) -> list[E.PrimExpr]:
    offset = len(out_batch) - len(t_shape)
    return [E.const(0) if d == 1 else out_batch[offset + k] for k, d in enumerate(t_shape)]


@register_compute("nn.matmul")
def _matmul(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    a, b = inputs
    a_shape, b_shape = int_shape(a), int_shape(b)
    out_shape = shape_of(out_type)
    k_total = a_shape[-1]
    acc = accumulate_dtype(a.dtype)
    k = te.reduce_axis((0, k_total), name="k")
    a_batch = a_shape[:-2] if a.ndim > 1 else ()
    b_batch = b_shape[:-2] if b.ndim > 1 else ()
    nbatch = len(out_shape) - (a.ndim > 1) - (b.ndim > 1)

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        batch, rest = i[:nbatch], list(i[nbatch:])
        a_idx = [*_batch_index(a_batch, batch), *([rest.pop(0)] if a.ndim > 1 else []), k]
        b_idx = [*_batch_index(b_batch, batch), k, *([rest.pop(0)] if b.ndim > 1 else [])]
        return te.sum(_mul(a[tuple(a_idx)], b[tuple(b_idx)], acc), axis=k)

    out = te.compute(out_shape, fcompute, name="matmul", tag="matmul")
    return _finish(out, a.dtype, "matmul")


@register_compute("nn.batch_matmul")
def _batch_matmul(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    a, b = inputs
    a_shape, b_shape = int_shape(a), int_shape(b)
    k_total = a_shape[1] if attrs.transpose_a else a_shape[2]
    acc = accumulate_dtype(a.dtype)
    k = te.reduce_axis((0, k_total), name="k")

    def fcompute(bi: E.PrimExpr, m: E.PrimExpr, n: E.PrimExpr) -> E.PrimExpr:
        ab = E.const(0) if a_shape[0] == 1 else bi
        bb = E.const(0) if b_shape[0] == 1 else bi
        av = a[ab, k, m] if attrs.transpose_a else a[ab, m, k]
        bv = b[bb, n, k] if attrs.transpose_b else b[bb, k, n]
        return te.sum(_mul(av, bv, acc), axis=k)

    out = te.compute(shape_of(out_type), fcompute, name="batch_matmul", tag="matmul")
    return _finish(out, a.dtype, "batch_matmul")
