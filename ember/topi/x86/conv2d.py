"""x86 convolution in the blocked NCHW[x]c layout: TE compute and register-tiled schedule.

The data is (N, C/ic, H, W, ic) and the weights (O/oc, I/ic, KH, KW, ic, oc) with
``oc`` = one SIMD vector of output channels (8 float32 on AVX2, 16 with AVX-512). The
schedule keeps an output tile of ``oc_tile`` channel blocks x ``ow_tile`` pixels in
vector registers and, for every (input channel, kh, kw), broadcasts one input value
and multiply-adds it with each weight vector (TVM's x86 ``conv2d_NCHWc`` schedule)::

    parallel n, oc_outer, oh:
      for ow_outer:
        acc[oc_tile][ow_tile] (vectors) = 0
        for ic_outer, kh, kw, ic_inner:          # reduction
          unrolled ow_tile, oc_tile: acc += broadcast(data) * weight_vector
        epilogue (bias, relu, residual add, ...) per vector, stored

With row blocks (small output planes, see :func:`row_block`) the register tiles of
``rows`` output rows accumulate in a local buffer and the input-channel blocks move
outside them, so each weight is read from memory once per row block::

    parallel n, oc_outer, oh_outer:
      buffer[oc_tile][rows][ow] = 0
      for ic_outer:
        for oh_inner, ow_outer:                   # register tiles, loaded and stored
          for ic_block, kh, kw, ic_inner: unrolled FMAs as above
      epilogue over the buffer

Depthwise convolution (groups = channels) uses the same layout with ic = 1: each output
vector multiplies an input vector of the same channels by a weight vector. Grouped
convolution (RegNet, ResNeXt: groups of G channels) is the dense kernel with blocks that
do not straddle groups: an output block reads only its group's G/ic input blocks, and a
register tile's channel blocks stay within one group so each broadcast input value
feeds all of the tile's FMAs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ember import te
from ember.target import Target
from ember.te.exprutil import inline_tensors
from ember.te.schedule import Schedule
from ember.te.tensor import ComputeOp, Tensor
from ember.tir import expr as E
from ember.topi.common import (
    TAG_ELEMWISE,
    TAG_MATERIALIZE,
    int_shape,
    register_compute,
    shape_of,
)

TAG_CONV_NCHWC = "conv2d_nchwc"

OC_TILES = (4, 2, 1)
"""Output channel blocks per register tile tried (each broadcast input feeds that many FMAs)."""

MAX_OW_TILE = 16
"""Output pixels per register tile at most: more gives no further reuse of weight vectors."""

MAX_DW_OW_TILE = 28
"""Widest depthwise register tile the tuner may try: one weight vector per step leaves up to
30 of AVX-512's 32 registers for accumulators and the input."""

DW_TILE_REGISTER_SHARE = 2
"""A depthwise register tile holds at most 1/2 of the vector registers in accumulators (8
pixels with AVX2's 16, 16 with AVX-512's 32). Each step FMAs one weight vector into every
accumulator from a fresh input vector, so 7-8 accumulators already cover the FMA latency,
while a 14-pixel AVX2 tile leaves GCC no room for the loads and addresses of an unrolled
7x7 window and spills accumulators: measured on ConvNeXt's 7x7 / 96 channels / 56x56,
14 pixels ran at 12-16 GFLOP/s and 7 or 8 at 72-74; on 3x3 and 5x5 shapes 7-8 were as
fast as 14 or up to 1.4x faster (benchmarks/depthwise.py)."""

DW_MIN_BLOCKS = 8
"""A depthwise conv with at least this many channel blocks runs its parallel loop over the
blocks alone, its output rows serial inside: ``partition_selects`` then splits the border
rows off and the inner rows lose the padding mask (MobileNetV2 ~9% faster at 1 and 2
threads). With fewer blocks the rows stay in the parallel loop, so two threads have
enough tasks (at 2 blocks, blocks alone measured 5% slower on two threads)."""

MIN_PASS_STEPS = 128
"""Reduction steps (FMAs per accumulator) per pass of a row block over its accumulators."""

GROUP_BLOCKS = "group_blocks"
"""The conv compute's attribute: output channel blocks per group (all of them when groups
is 1). A register tile's channel blocks stay within one group so that every FMA of a
step shares the one broadcast input value."""

MIN_PARALLEL_FLOPS = 1 << 15
"""A conv kernel with fewer FLOPs (~2 us of work at one thread) runs serial: handing out
its loop costs more than the second thread saves. Measured at 2 threads, min of 40 rounds
(benchmarks/depthwise.py's kernels): a 3x3 depthwise of 8 or 16 channels at 7x7 (0.01
MFLOP) gains nothing with OpenMP's spinning team (0.98-1.04x); with a thread pool whose
wake-up and join cost ~2 us, 64 channels (0.06 MFLOP) ran 0.84x as fast and 96 channels
at 14x14 (0.34 MFLOP) 1.44x as fast, so the threshold stays well below both."""

ROW_BLOCK_BYTES = 16 * 1024
"""Accumulator buffer of one row block at most: a third of a 48 KiB L1 data cache, next to
the weights of one input-channel block and its input rows."""


# ----------------------------------------------------------------------------- computes


def conv2d_nchwc_compute(
    data: Tensor, weight: Tensor, attrs: Any, out_shape: tuple[int, ...]
) -> Tensor:
    """Blocked convolution: groups = 1, depthwise (weight (C/oc, 1, KH, KW, 1, oc)) or
    grouped (weight (O/oc, G/ic, KH, KW, ic, oc) with G input channels per group; an output
    block reads the ``G/ic`` input blocks of its group)."""
    _, _, h, w, data_block = int_shape(data)
    out_blocks, in_blocks, kh, kw, in_block, out_block = int_shape(weight)
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, pb, pr = attrs.padding
    if attrs.groups > 1 and in_blocks * in_block == 1:
        ry = te.reduce_axis((0, kh), name="kh")
        rx = te.reduce_axis((0, kw), name="kw")
        return _depthwise_compute(data, weight, attrs, out_shape, ry, rx)
    padded = data
    if any(attrs.padding):
        shape = (*int_shape(data)[:2], h + pt + pb, w + pl + pr, data_block)

        def fpad(n: E.PrimExpr, c: E.PrimExpr, y: E.PrimExpr, x: E.PrimExpr, b: E.PrimExpr):
            inside = te.all(y >= pt, y < h + pt, x >= pl, x < w + pl)
            return te.if_then_else(inside, data[n, c, y - pt, x - pl, b], E.const(0.0, data.dtype))

        padded = te.compute(shape, fpad, name="pad_data", tag=TAG_MATERIALIZE)
    ry = te.reduce_axis((0, kh), name="kh")
    rx = te.reduce_axis((0, kw), name="kw")
    ico = te.reduce_axis((0, in_blocks), name="ic_outer")
    ici = te.reduce_axis((0, in_block), name="ic_inner")

    # Output blocks per group: the output block ob belongs to group ob // group_blocks,
    # whose input blocks start at (ob // group_blocks) * in_blocks.
    group_blocks = out_blocks // attrs.groups

    def dense_conv(n: Any, ob: Any, y: Any, x: Any, c: Any) -> E.PrimExpr:
        # Input channel ico*in_block + ici of the data, whose own block may differ (C < 8).
        if attrs.groups > 1:
            block = ob // group_blocks * in_blocks + ico
            pixel = padded[n, block, y * sh + ry * dh, x * sw + rx * dw, ici]
        elif in_block == data_block:
            pixel = padded[n, ico, y * sh + ry * dh, x * sw + rx * dw, ici]
        else:
            channel = ico * in_block + ici
            pixel = padded[
                n, channel // data_block, y * sh + ry * dh, x * sw + rx * dw, channel % data_block
            ]
        return te.sum(pixel * weight[ob, ico, ry, rx, ici, c], axis=[ico, ry, rx, ici])

    return te.compute(
        out_shape,
        dense_conv,
        name="conv2d_nchwc",
        tag=TAG_CONV_NCHWC,
        attrs={GROUP_BLOCKS: group_blocks},
    )


def _depthwise_compute(
    data: Tensor, weight: Tensor, attrs: Any, out_shape: tuple[int, ...], ry: Any, rx: Any
) -> Tensor:
    """Depthwise conv without a padded copy: a depthwise conv does 2 FLOPs per loaded
    value, so copying the input to pad it would double its memory traffic (measured 3-4x
    slower on MobileNet's stride-2 layers). Border taps read a clamped (valid) pixel, and
    a select on a condition that depends only on (y, x, kh, kw) keeps the product or 0:
    one scalar condition for the whole channel vector, so the loads stay contiguous
    vectors. (A select, not a multiply by a 0/1 mask: 0 * inf would turn an inf or NaN
    next to the border into NaN where the padded reference sums a plain 0.)"""
    _, _, h, w, _ = int_shape(data)
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, _, _ = attrs.padding
    zero = E.const(0.0, data.dtype)

    def depthwise(n: Any, ob: Any, y: Any, x: Any, c: Any) -> E.PrimExpr:
        iy = y * sh + ry * dh - pt
        ix = x * sw + rx * dw - pl
        tap = weight[ob, 0, ry, rx, 0, c]
        if not any(attrs.padding):
            return te.sum(data[n, ob, iy, ix, c] * tap, axis=[ry, rx])
        safe_y = E.max_(E.min_(iy, E.const(h - 1)), E.const(0))
        safe_x = E.max_(E.min_(ix, E.const(w - 1)), E.const(0))
        inside = te.all(iy >= 0, iy < h, ix >= 0, ix < w)
        term = te.if_then_else(inside, data[n, ob, safe_y, safe_x, c] * tap, zero)
        return te.sum(term, axis=[ry, rx])

    return te.compute(out_shape, depthwise, name="conv2d_nchwc", tag=TAG_CONV_NCHWC)


def add_blocked_bias(out: Tensor, bias: Tensor) -> Tensor:
    """``out`` (N, C/c, H, W, c) plus the per-channel ``bias`` (C,): a conv's bias stage."""
    block = int_shape(out)[4]
    return te.compute(
        out.shape,
        lambda n, ob, y, x, c: out[n, ob, y, x, c] + bias[ob * block + c],
        name="bias_add",
        tag=TAG_ELEMWISE,
    )


@register_compute("nn.conv2d_nchwc")
def _conv2d_nchwc(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    out = conv2d_nchwc_compute(inputs[0], inputs[1], attrs, shape_of(out_type))
    return add_blocked_bias(out, inputs[2]) if len(inputs) == 3 else out


# ----------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class ConvTile:
    """The register tile: ``oc_tile`` channel blocks x ``ow_tile`` output pixels."""

    oc_tile: int
    ow_tile: int


def row_tiles(
    out_width: int, oc_tile: int, registers: int, spare: int, widest: int = MAX_OW_TILE
) -> tuple[int, int] | None:
    """How a row of ``out_width`` pixels splits into register tiles of ``oc_tile`` vectors:
    (tiles, pixels per tile), the fewest tiles of the widest width that fits in
    ``registers`` beside the ``oc_tile`` weight vectors and ``spare`` other registers
    (at most ``widest``), spread evenly; None when not even one pixel fits.

    >>> row_tiles(17, 4, 32, 0), row_tiles(56, 1, 16, 1), row_tiles(56, 1, 16, 1, 8)
    ((3, 6), (4, 14), (7, 8))
    """
    cap = min(out_width, widest, (registers - spare - oc_tile) // oc_tile)
    if cap < 1:
        return None
    tiles = -(-out_width // cap)
    return tiles, -(-out_width // tiles)


def choose_tile(
    out_blocks: int,
    out_width: int,
    registers: int,
    depthwise: bool,
    broadcast_register: bool = True,
) -> ConvTile:
    """The tile with the most accumulators per register tile, on average over the row
    (then the fewest loads per reduction step: ``ow_tile`` broadcasts + ``oc_tile`` weight
    vectors), that fits in ``registers`` with its weight vectors and, unless the ISA
    broadcasts from memory inside the FMA (AVX-512's ``{1to16}``), one broadcast
    register. ``oc_tile`` divides the output channel blocks. A row of ``out_width``
    pixels takes ``ceil(out_width / cap)`` tiles of the widest width ``cap`` that fits,
    and ``ow_tile`` spreads the row evenly over them: Inception's 17-pixel rows run as
    6+6+5 pixels x 4 channel blocks (about 23 accumulators per tile) rather than 15+2
    pixels x 2 blocks (17 on average: the 2-pixel tail tile does almost no work per
    load), which measured the whole of Inception-v3 ~25% faster. A width that does not
    divide leaves a last, narrower tile, which loop partitioning compiles as its own
    copy of the loop.

    >>> choose_tile(8, 56, 16, False)
    ConvTile(oc_tile=1, ow_tile=14)
    >>> choose_tile(12, 17, 32, False, broadcast_register=False)
    ConvTile(oc_tile=4, ow_tile=6)
    """
    spare = 1 if broadcast_register else 0
    best, best_key = ConvTile(1, 1), (0.0, -2)
    for oc_tile in (1,) if depthwise else OC_TILES:
        if out_blocks % oc_tile:
            continue
        widest = registers // DW_TILE_REGISTER_SHARE if depthwise else MAX_OW_TILE
        split = row_tiles(out_width, oc_tile, registers, spare, widest)
        if split is None:
            continue
        tiles, ow_tile = split
        key = (oc_tile * out_width / tiles, -(oc_tile + ow_tile))
        if key > best_key:
            best, best_key = ConvTile(oc_tile, ow_tile), key
    return best


def schedule_conv2d_nchwc(
    outputs: list[Tensor], target: Target, cfg: Any = None
) -> Schedule | None:
    """Schedule a fused kernel anchored on ``conv2d_nchwc``; None if it is not one.

    With an autotuner config ``cfg`` (ember.autotune) the tile choices become knobs whose
    first candidate, and so the fallback, is exactly the untuned choice:
    ``oc_tile`` / ``ow_tile`` (the register tile), ``reduce_order`` (0: input-channel
    blocks outermost, 1: kernel rows/columns outermost; register tiles only),
    ``unroll_kw`` / ``unroll_kh``, ``loop_order`` (see :class:`ConvChoices`) and
    ``row_block`` (output rows per row block, 0: none; see :func:`row_block`).

    >>> s = schedule_conv2d_nchwc(outputs, target)   # today's tile
    """
    if len(outputs) != 1:
        return None
    s = te.create_schedule([t.op for t in outputs])
    convs = [st for st in s.stages if isinstance(st.op, ComputeOp) and st.op.tag == TAG_CONV_NCHWC]
    if len(convs) != 1:
        return None
    out = outputs[0]
    conv = convs[0].op.outputs[0]
    group_blocks = int(conv.op.attrs.get(GROUP_BLOCKS, 0))
    if int_shape(out) != int_shape(conv):
        return None
    if out.op is conv.op:
        conv = s.cache_write(out, "local")
    else:
        inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]] = {}
        for st in s.stages:
            if not isinstance(st.op, ComputeOp) or st.op is out.op or st.op is conv.op:
                continue
            if st.reduce_axis:
                return None  # a second reduction: not a conv + epilogue kernel
            if st.op.tag == TAG_MATERIALIZE:
                continue
            st.compute_inline()
            inlined[st.op.outputs[0]] = ([iv.var for iv in st.axis], st.body[0])
        # Substitute now so the output reads the conv directly (compute_at needs the edge).
        for st in s.stages:
            if isinstance(st.op, ComputeOp) and st.attach_type != "inline":
                st.body = inline_tensors(tuple(st.body), inlined)
        s[conv].set_scope("local")
    # A kernel too small to repay waking the thread pool runs on the calling thread alone.
    parallel = conv_flops(conv) >= MIN_PARALLEL_FLOPS
    for st in s.stages:
        if isinstance(st.op, ComputeOp) and st.op.tag == TAG_MATERIALIZE:
            _schedule_pad(s, st, parallel)

    depthwise = len(s[conv].reduce_axis) == 2
    _, out_blocks, _, out_width, _ = int_shape(out)
    # A register tile's channel blocks divide a group's (all blocks when groups is 1).
    tile_blocks = group_blocks or out_blocks
    registers = target.vector_registers
    # With 32 registers the target has AVX-512, whose FMA broadcasts from memory.
    tile = choose_tile(tile_blocks, out_width, registers, depthwise, registers < 32)
    lanes = int_shape(out)[4]
    out_height = int_shape(out)[2]
    choice = ConvChoices(
        tile,
        rows=row_block(out_height, out_width, lanes, tile, depthwise),
        loop_order=2 if depthwise and out_blocks >= DW_MIN_BLOCKS else 0,
    )
    cst = s[conv]
    # The window's loops: (kh, kw) are the depthwise reduction, (ic, kh, kw, ic) the dense.
    kh_axis, kw_axis = cst.reduce_axis[-2:] if depthwise else cst.reduce_axis[1:3]
    if cfg is not None:
        window = (int(kh_axis.extent), int(kw_axis.extent))
        choice = _tuned_tile(
            cfg, choice, lanes, (out_blocks, tile_blocks), out_height, out_width, window, depthwise
        )
    tile, rows = choice.tile, choice.rows
    ost = s[out]
    n, ob, y, x, c = ost.op.axis
    obo, obi = ost.split(ob, factor=tile.oc_tile)
    # The epilogue's loops are left plain on purpose: ember's vectorizer turns max / min /
    # select (relu, clip) into per-lane inserts, while GCC vectorizes the plain contiguous
    # lane loop into vmaxps / vminps (measured 4-20x faster on MobileNet-v2's kernels).
    if rows:
        # Row blocks: the conv accumulates ``rows`` output rows of the channel tile in a
        # local buffer with the input-channel blocks outermost, so each block's weights
        # are read from memory once per row block and reused from cache by every register
        # tile of it (instead of streaming all the tile's weights once per register tile).
        yo, yi = ost.split(y, factor=rows)
        ost.reorder(n, obo, yo, yi, obi, x, c)
        fused = ost.fuse(n, obo, yo)
        if parallel:
            ost.parallel(fused)
        cst.compute_at(ost, fused)
        _, cob, cy, cx, cc = cst.op.axis
        cxo, cxi = cst.split(cx, factor=tile.ow_tile)
        ico, *window, ici = cst.reduce_axis
        # A pass over the accumulators loads and stores them once; it reduces enough
        # input-channel blocks for that to cost little (one 3x3 block: 144 FMA steps).
        steps = ici.extent * math.prod(w.extent for w in window)
        want = -(-MIN_PASS_STEPS // steps)
        blocks = [d for d in range(max(want, 2), ico.extent) if ico.extent % d == 0]
        if want <= 1:
            outer, inner = [ico], []
        elif blocks:
            outer, inner = cst.split(ico, factor=blocks[0])
            outer, inner = [outer], [inner]
        else:
            outer, inner = [], [ico]
        cst.reorder(*outer, cy, cxo, *inner, *window, ici, cxi, cob, cc)
        cx = cxi
    else:
        xo, xi = ost.split(x, factor=tile.ow_tile)
        if choice.loop_order == 1:
            ost.reorder(n, y, obo, xo, obi, xi, c)
            outer = ost.fuse(n, y)
        else:
            ost.reorder(n, obo, y, xo, obi, xi, c)
            outer = ost.fuse(n, obo) if choice.loop_order == 2 else ost.fuse(n, obo, y)
        if parallel:
            ost.parallel(outer)
        cst.compute_at(ost, xo)
        _, cob, _, cx, cc = cst.op.axis
        reds = list(cst.reduce_axis)
        if choice.reduce_order == 1:
            reds = reds[1:3] + reds[:1] + reds[3:]  # (kh, kw, ic_outer, ic_inner)
        cst.reorder(*reds, cx, cob, cc)
    if choice.unroll_kh:
        cst.unroll(kh_axis)
    if choice.unroll_kw:
        cst.unroll(kw_axis)
    cst.unroll(cx)
    cst.unroll(cob)
    cst.vectorize(cc)
    return s


def row_block(out_height: int, out_width: int, lanes: int, tile: ConvTile, depthwise: bool) -> int:
    """Output rows per row block by default: the whole output plane when a channel tile's
    accumulators for it fit in ``ROW_BLOCK_BYTES`` (small late layers, where each tile's
    weights are large next to its few outputs), else 0 (no row blocks).

    Without row blocks every register tile streams all of its channel tile's weights
    once; on ResNet-50's 7x7 layers (a 1.2 MB weight set for 7 register tiles) the first
    stream comes from DRAM and the kernel waits on it. A whole-plane row block reads each
    weight once and, measured, runs those kernels ~10% faster, while on larger planes row
    blocks measured no faster (the tuner may still pick them: knob ``row_block``).

    >>> row_block(7, 7, 16, ConvTile(4, 7), False), row_block(14, 14, 16, ConvTile(4, 7), False)
    (7, 0)
    """
    if depthwise:
        return 0
    plane_bytes = tile.oc_tile * out_height * out_width * lanes * 4
    return out_height if plane_bytes <= ROW_BLOCK_BYTES else 0


def default_first(default: Any, candidates: Any) -> list[Any]:
    """A knob's choices: ``default`` first (so it is the fallback point), then the other
    ``candidates`` in their order.

    >>> default_first(14, range(1, 5)), default_first(2, [1, 2, 4])
    ([14, 1, 2, 3, 4], [2, 1, 4])
    """
    return [default] + [c for c in candidates if c != default]


def define_tile_knobs(
    cfg: Any,
    default: ConvTile,
    out_blocks: int,
    widest: int,
    width_knob: str,
    oc_tiles: tuple[int, ...] = OC_TILES,
) -> ConvTile:
    """Define a register tile's knobs on ``cfg`` and read the chosen tile: ``oc_tile``
    (the ``oc_tiles`` that divide ``out_blocks``) and ``width_knob`` (every width up to
    ``widest``), each with the untuned ``default`` first. The direct conv and the
    Winograd GEMM tile the same way."""
    divisors = [t for t in oc_tiles if out_blocks % t == 0]
    cfg.define_knob("oc_tile", default_first(default.oc_tile, divisors))
    cfg.define_knob(width_knob, default_first(default.ow_tile, range(1, widest + 1)))
    return ConvTile(int(cfg["oc_tile"].val), int(cfg[width_knob].val))


@dataclass(frozen=True)
class ConvChoices:
    """Everything the conv schedule chooses: the untuned rule's values or a tuner's point."""

    tile: ConvTile
    rows: int = 0
    """Output rows per row block (0: none)."""
    reduce_order: int = 0
    """0: input-channel blocks outermost in the reduction; 1: kernel rows/columns outermost."""
    unroll_kw: bool = False
    unroll_kh: bool = False
    loop_order: int = 0
    """Register-tile loops (without row blocks): 0 channel tiles outside rows, parallel over
    (n, channel tiles, rows); 1 rows outside channel tiles, parallel over (n, rows), so one
    input row serves every channel tile while in cache; 2 parallel over (n, channel tiles)
    alone with the rows serial inside (the depthwise rule, ``DW_MIN_BLOCKS``)."""


def _tuned_tile(
    cfg: Any,
    default: ConvChoices,
    lanes: int,
    blocks: tuple[int, int],
    out_height: int,
    out_width: int,
    window: tuple[int, int],
    depthwise: bool,
) -> ConvChoices:
    """Define the conv knobs on ``cfg`` (the untuned choice first, so it is the fallback)
    and read the chosen point. ``blocks``: (output channel blocks, blocks per group).

    The register tile's width takes every value up to ``MAX_OW_TILE`` (a depthwise tile,
    with one weight vector per step, up to ``MAX_DW_OW_TILE``), not only the widths the
    rule weighs: a width that does not divide the row leaves a narrower last tile, and
    tiles too wide for the registers spill — points the search has to learn to avoid.
    """
    out_blocks, group_blocks = blocks
    widest = min(out_width, MAX_DW_OW_TILE if depthwise else MAX_OW_TILE)
    tile = define_tile_knobs(
        cfg, default.tile, group_blocks, widest, "ow_tile", (1,) if depthwise else OC_TILES
    )
    cfg.define_knob("reduce_order", [0] if depthwise else [0, 1])
    cfg.define_knob("unroll_kw", [False, True] if window[1] > 1 else [False])
    cfg.define_knob("unroll_kh", [False, True] if window[0] > 1 else [False])
    # Order 2 (channel tiles alone in parallel) only where they are enough tasks for the
    # threads: kernels are tuned at one thread, which would not see the lost parallelism.
    offered = (0, 1, 2) if out_blocks >= DW_MIN_BLOCKS else (0, 1)
    orders = default_first(default.loop_order, offered if out_height > 1 else ())
    cfg.define_knob("loop_order", orders)
    # Row blocks dividing the height whose buffer (at the largest channel tile) stays small
    # enough for a thread's stack and the caches.
    fits = [
        r
        for r in range(1, out_height + 1)
        if out_height % r == 0 and max(OC_TILES) * r * out_width * lanes * 4 <= 4 * ROW_BLOCK_BYTES
    ]
    cfg.define_knob("row_block", [0] if depthwise else default_first(default.rows, [0, *fits]))
    return ConvChoices(
        tile,
        rows=int(cfg["row_block"].val),
        reduce_order=int(cfg["reduce_order"].val),
        unroll_kw=bool(cfg["unroll_kw"].val),
        unroll_kh=bool(cfg["unroll_kh"].val),
        loop_order=int(cfg["loop_order"].val),
    )


def conv_flops(conv: Tensor) -> int:
    """Multiply-adds x 2 of a conv stage: its output elements times its reduction extent.

    >>> conv_flops(conv)   # doctest: +SKIP
    225792                 # 1x8x14x14x8 outputs, a 3x3 depthwise window
    """
    stage = conv.op
    assert isinstance(stage, ComputeOp)
    reduction = math.prod(r.extent for r in stage.reduce_axis)
    return 2 * math.prod(int_shape(conv)) * reduction


def _schedule_pad(s: Schedule, st: Any, parallel: bool) -> None:
    # Padded copy of the input: rows in parallel; the (x, channel) loops stay plain so GCC
    # vectorizes the select (ember's vectorizer would emit per-lane code for it).
    n, cb, y, _, _ = st.op.axis
    fused = st.fuse(n, cb, y)
    if parallel:
        st.parallel(fused)


__all__ = [
    "ConvChoices",
    "ConvTile",
    "choose_tile",
    "conv2d_nchwc_compute",
    "default_first",
    "define_tile_knobs",
    "row_tiles",
    "schedule_conv2d_nchwc",
]
