"""x86 convolutions in the plain NHWC layout: TE computes and register-tiled schedules.

An experiment next to the blocked NCHW[x]c kernels of :mod:`ember.topi.x86.conv2d` (not
wired into the compiler; ``benchmarks/nhwc.py`` measures it against them). In NHWC the
channels of a pixel are contiguous, so both kernels vectorize over output channels
without any channel blocking of the tensors themselves:

* :func:`conv2d_nhwc` (data NHWC, weight HWIO, groups = 1). The register tile is
  ``ow_tile`` output pixels x ``oc_tile`` channel vectors; for every (kh, kw, input
  channel) one input scalar is broadcast and multiply-added with each weight vector.
  A 1x1 conv without padding is a GEMM (pixels x output channels, reducing over input
  channels) and reads the data directly; other convs read a padded copy::

    parallel n, oc_outer, oh:
      for ow_outer:
        acc[ow_tile][oc_tile] (vectors) = 0
        for kh, kw, ic:                            # reduction
          unrolled ow_tile, oc_tile: acc += broadcast(data) * weight_vector
        epilogue (bias, residual add, relu / relu6) per pixel, stored

* :func:`depthwise_conv2d_nhwc` (weight HWC or HWC1): each output vector multiplies an
  input vector of the same channels by a weight vector. Padding is a clamped read times
  a 0/1 mask (as the blocked depthwise kernel does) so no padded copy is made;
  ``partition_selects`` splits the border rows and columns off, so inner pixels run
  without the mask. Tiles are one channel vector x a row segment; the parallel tasks
  are (band of output rows, channel tile) pairs, or output rows with all channel tiles
  inside for inputs larger than L2 (see :func:`choose_nhwc_tile`).

Small output planes with long reductions (MobileNetV2's 7x7 and 14x14 1x1 convs from
576/960 channels) run as row blocks: a channel tile's whole plane accumulates in a local
buffer with the input channels outermost, so each weight is streamed once per tile.

The epilogue (per-channel bias, a residual NHWC tensor of the output's shape, then relu
or relu6) is one elementwise stage computed inside the conv's output loop.

    out = conv2d_nhwc(x, w, strides=1, padding=0, bias=b, activation="relu6")
    s = schedule_nhwc(out, target)
    f = ember.build(s, [x, w, b, out])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ember import te
from ember.errors import AttrError, ScheduleError, ShapeError
from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import ComputeOp, Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, TAG_MATERIALIZE, int_shape
from ember.topi.x86.conv2d import row_tiles

TAG_CONV_NHWC = "conv2d_nhwc"
TAG_DEPTHWISE_NHWC = "depthwise_conv2d_nhwc"

ACTIVATIONS = ("relu", "relu6")
"""Activations the fused epilogue knows: max(v, 0) and min(max(v, 0), 6)."""

MIN_ACCUMULATORS = 12
"""Accumulator vectors a dense conv's register tile keeps at least (on average over a row)
when it can: two FMA units of 4 cycles' latency need 8 independent chains, and more hide
the loads."""

L1_WEIGHT_BYTES = 32 * 1024
"""Weights of one channel tile (reduction x tile channels) that stay in the L1 data cache
(48 KiB here) beside the input rows. Larger ones stream from L2 once per register tile."""

L2_LOAD_COST = 3
"""Cost of a weight load streamed from L2 relative to an L1 hit, in the tile choice: on
MobileNetV2's 576->160 1x1 conv at 7x7, 2 vectors x 7 pixels (one tile per row, weights
streamed once per row) ran 1.4x faster than 5 x 4+3 (streamed twice)."""

DW_MIN_TILES = 8
"""Channel tiles from which a depthwise conv's parallel loop runs over them alone (its rows
serial inside); with fewer, two threads would get unequal shares."""

DW_ROWS_OUTER_BYTES = 2 * 1024 * 1024
"""Input size (the L2 cache of one core of the Xeon this was measured on) above which a
depthwise conv runs output rows in parallel with all channel tiles inside each row, so
every input line comes from memory once. Below it, each channel tile sweeps the rows (of
a band, see ``DW_BAND_ROWS``) and finds its input slice in L1/L2 (MobileNetV2: 56x56x144
~1.5x faster this way, while 112x112x96 at stride 2 ran 1.7x slower: it re-reads a 4.8 MB
input once per tile)."""

ROW_BLOCK_CHANNELS = 64
"""Input channels per pass of a row block over its accumulators (see ``row_block``): the
first divisor of the reduction from this up (else no blocks)."""

ROW_BLOCK_MIN_REDUCTION = 512
"""Reduction length (input channels x taps) from which a dense conv may run as a row block:
on MobileNetV2 row blocks ran faster for 576 and 960 input channels but 1.3-1.8x slower
for 160 and 320, whose weight tiles stream from L2 about as fast."""

ROW_BLOCK_BYTES = 40 * 1024
"""Largest accumulator buffer (a channel tile's whole output plane) of a row block:
MobileNetV2's 576->96 1x1 conv at 14x14 ran ~10% faster as a 37 KiB row block of 3 x 7
tiles than with its weights streamed per register tile."""

DW_BAND_ROWS = 7
"""Output rows per band of a depthwise conv (when it has at least two bands): the parallel
tasks are (band, channel tile) pairs, so each thread reads a contiguous band of the input
(channel tiles alone interleave the threads' reads within every pixel). MobileNetV2's
56x56x144 layer ran ~1.5x faster so at 2 threads, about the same at 1."""

IntPair = int | Sequence[int]


# ----------------------------------------------------------------------------- computes


def _pair(value: IntPair, what: str, op: str) -> tuple[int, int]:
    vals = (value, value) if isinstance(value, int) else tuple(value)
    if len(vals) != 2 or any(not isinstance(v, int) or v < 1 for v in vals):
        raise AttrError(
            f"{op}: {what} must be a positive int or a pair of them, got {value!r}",
            hint=f"e.g. {what}=2 or {what}=(2, 2)",
        )
    return vals  # type: ignore[return-value]


def _padding(value: IntPair, op: str) -> tuple[int, int, int, int]:
    vals = (value,) if isinstance(value, int) else tuple(value)
    if len(vals) not in (1, 2, 4) or any(not isinstance(v, int) or v < 0 for v in vals):
        raise AttrError(
            f"{op}: padding must be 1, 2 or 4 non-negative ints, got {value!r}",
            hint="padding=1, (pad_h, pad_w) or (top, left, bottom, right)",
        )
    if len(vals) == 1:
        return (vals[0],) * 4  # type: ignore[return-value]
    if len(vals) == 2:
        return (vals[0], vals[1], vals[0], vals[1])
    return vals  # type: ignore[return-value]


def _out_size(size: int, kernel: int, stride: int, before: int, after: int, op: str) -> int:
    out = (size + before + after - kernel) // stride + 1
    if out < 1:
        raise ShapeError(
            f"{op}: a {kernel}-tap kernel does not fit an input of {size} pixels with padding "
            f"({before}, {after}): the output would be empty",
            hint="use a smaller kernel or more padding",
        )
    return out


def _check_4d(t: Tensor, name: str, layout: str, op: str) -> tuple[int, ...]:
    shape = int_shape(t)
    if len(shape) != 4:
        raise ShapeError(f"{op}: {name} must be 4-D {layout}, got shape {shape}")
    if t.dtype != "float32":
        raise ShapeError(f"{op}: {name} must be float32, got {t.dtype}")
    return shape


def conv2d_nhwc(
    data: Tensor,
    weight: Tensor,
    strides: IntPair = 1,
    padding: IntPair = 0,
    *,
    bias: Tensor | None = None,
    activation: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """Convolution of NHWC ``data`` with HWIO ``weight`` (groups = 1), with an optional
    fused epilogue ``activation(conv + bias[o] + residual)``.

    >>> x = te.placeholder((1, 56, 56, 24), "float32", name="x")
    >>> w = te.placeholder((1, 1, 24, 144), "float32", name="w")
    >>> conv2d_nhwc(x, w, activation="relu6").shape     # (1, 56, 56, 144)
    """
    op = "conv2d_nhwc"
    n, h, w, c = _check_4d(data, "data", "NHWC", op)
    kh, kw, ci, co = _check_4d(weight, "weight", "HWIO (kernel h, w, in, out channels)", op)
    if ci != c:
        raise ShapeError(
            f"{op}: the weight's input channels (axis 2 of HWIO) are {ci} but the data has {c} "
            f"channels (axis 3 of NHWC)",
            hint="weights in OIHW convert to HWIO with w.transpose(2, 3, 1, 0)",
        )
    sh, sw = _pair(strides, "strides", op)
    pt, pl, pb, pr = _padding(padding, op)
    oh = _out_size(h, kh, sh, pt, pb, op)
    ow = _out_size(w, kw, sw, pl, pr, op)
    rc = te.reduce_axis((0, c), name="ic")
    if kh == kw == 1 and not any((pt, pl, pb, pr)):
        # The 1x1 path: a GEMM over (pixels, output channels), reducing input channels only.
        def gemm(b: E.Var, y: E.Var, x: E.Var, o: E.Var) -> E.PrimExpr:
            return te.sum(data[b, y * sh, x * sw, rc] * weight[0, 0, rc, o], axis=[rc])

        conv = te.compute((n, oh, ow, co), gemm, name="conv2d_nhwc", tag=TAG_CONV_NHWC)
    else:
        padded = data
        if any((pt, pl, pb, pr)):

            def fpad(b: E.Var, y: E.Var, x: E.Var, ch: E.Var) -> E.PrimExpr:
                inside = te.all(y >= pt, y < h + pt, x >= pl, x < w + pl)
                return te.if_then_else(inside, data[b, y - pt, x - pl, ch], E.const(0.0, "float32"))

            shape = (n, h + pt + pb, w + pl + pr, c)
            padded = te.compute(shape, fpad, name="pad_nhwc", tag=TAG_MATERIALIZE)
        ry = te.reduce_axis((0, kh), name="kh")
        rx = te.reduce_axis((0, kw), name="kw")

        def direct(b: E.Var, y: E.Var, x: E.Var, o: E.Var) -> E.PrimExpr:
            pixel = padded[b, y * sh + ry, x * sw + rx, rc]
            return te.sum(pixel * weight[ry, rx, rc, o], axis=[ry, rx, rc])

        conv = te.compute((n, oh, ow, co), direct, name="conv2d_nhwc", tag=TAG_CONV_NHWC)
    return _epilogue(conv, bias, activation, residual, op)


def depthwise_conv2d_nhwc(
    data: Tensor,
    weight: Tensor,
    strides: IntPair = 1,
    padding: IntPair = 0,
    *,
    bias: Tensor | None = None,
    activation: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """Depthwise convolution (groups = channels, multiplier 1) of NHWC ``data`` with
    ``weight`` of shape (KH, KW, C) or (KH, KW, C, 1), with the same optional epilogue
    as :func:`conv2d_nhwc`.

    Padding reads a clamped (valid) pixel times a 0/1 mask instead of a padded copy (a
    depthwise conv does 2 FLOPs per loaded value; a copy would double its traffic). A
    non-finite input value next to the border leaks through as NaN, as in the blocked
    depthwise kernel.

    >>> x = te.placeholder((1, 112, 112, 96), "float32", name="x")
    >>> w = te.placeholder((3, 3, 96), "float32", name="w")
    >>> depthwise_conv2d_nhwc(x, w, strides=2, padding=1).shape    # (1, 56, 56, 96)
    """
    op = "depthwise_conv2d_nhwc"
    n, h, w, c = _check_4d(data, "data", "NHWC", op)
    wshape = int_shape(weight)
    if len(wshape) not in (3, 4) or (len(wshape) == 4 and wshape[3] != 1):
        raise ShapeError(
            f"{op}: weight must be (KH, KW, C) or (KH, KW, C, 1), got shape {wshape}",
            hint="OIHW depthwise weights (C, 1, KH, KW) convert with w[:, 0].transpose(1, 2, 0)",
        )
    if wshape[2] != c:
        raise ShapeError(
            f"{op}: the weight has {wshape[2]} channels (axis 2) but the data has {c} "
            f"(axis 3 of NHWC); a depthwise conv needs the same number"
        )
    kh, kw = wshape[:2]
    sh, sw = _pair(strides, "strides", op)
    pt, pl, pb, pr = _padding(padding, op)
    oh = _out_size(h, kh, sh, pt, pb, op)
    ow = _out_size(w, kw, sw, pl, pr, op)
    ry = te.reduce_axis((0, kh), name="kh")
    rx = te.reduce_axis((0, kw), name="kw")
    zero = E.const(0.0, "float32")

    def depthwise(b: E.Var, y: E.Var, x: E.Var, ch: E.Var) -> E.PrimExpr:
        iy = y * sh + ry - pt
        ix = x * sw + rx - pl
        tap = weight[ry, rx, ch] if len(wshape) == 3 else weight[ry, rx, ch, 0]
        if not any((pt, pl, pb, pr)):
            return te.sum(data[b, iy, ix, ch] * tap, axis=[ry, rx])
        safe_y = E.max_(E.min_(iy, E.const(h - 1)), E.const(0))
        safe_x = E.max_(E.min_(ix, E.const(w - 1)), E.const(0))
        # A select, not a 0/1 mask: 0 * inf would turn a border inf into NaN.
        inside = te.all(iy >= 0, iy < h, ix >= 0, ix < w)
        term = te.if_then_else(inside, data[b, safe_y, safe_x, ch] * tap, zero)
        return te.sum(term, axis=[ry, rx])

    conv = te.compute((n, oh, ow, c), depthwise, name="depthwise_nhwc", tag=TAG_DEPTHWISE_NHWC)
    return _epilogue(conv, bias, activation, residual, op)


def _epilogue(
    conv: Tensor, bias: Tensor | None, activation: str | None, residual: Tensor | None, op: str
) -> Tensor:
    """One elementwise stage ``activation(conv + bias[c] + residual)``, or ``conv`` alone."""
    shape = int_shape(conv)
    if bias is not None and (int_shape(bias) != (shape[3],) or bias.dtype != "float32"):
        raise ShapeError(
            f"{op}: bias must be float32 of shape ({shape[3]},) (one per output channel), "
            f"got {int_shape(bias)} {bias.dtype}"
        )
    if residual is not None and (int_shape(residual) != shape or residual.dtype != "float32"):
        raise ShapeError(
            f"{op}: residual must be a float32 NHWC tensor of the output's shape {shape}, "
            f"got {int_shape(residual)} {residual.dtype}"
        )
    if activation is not None and activation not in ACTIVATIONS:
        raise AttrError(
            f"{op}: unknown activation {activation!r}; the fused epilogue knows "
            f"{', '.join(ACTIVATIONS)}",
            hint="apply other activations as a separate op",
        )
    if bias is None and residual is None and activation is None:
        return conv
    zero, six = E.const(0.0, "float32"), E.const(6.0, "float32")

    def epilogue(b: E.Var, y: E.Var, x: E.Var, ch: E.Var) -> E.PrimExpr:
        value = conv[b, y, x, ch]
        if bias is not None:
            value = value + bias[ch]
        if residual is not None:
            value = value + residual[b, y, x, ch]
        if activation is not None:
            value = E.max_(value, zero)
        if activation == "relu6":
            value = E.min_(value, six)
        return value

    return te.compute(shape, epilogue, name=f"{conv.op.name}_epilogue", tag=TAG_ELEMWISE)


# ----------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class NhwcTile:
    """The register tile -- ``ow_tile`` output pixels x ``oc_tile`` vectors of ``lanes``
    output channels -- and the loop order around it: ``rows_outer`` (parallel output
    rows, channel tiles inside each), ``row_block`` (dense convs: a channel tile's whole
    output plane accumulates in a local buffer, input channels outermost),
    ``row_bands`` (depthwise: parallel (band of rows, channel tile) pairs; 0: channel
    tiles only). With none of them, channel tiles are outermost and rows inside."""

    lanes: int
    oc_tile: int
    ow_tile: int
    rows_outer: bool = False
    row_block: bool = False
    row_bands: int = 0


def channel_lanes(channels: int, target: Target) -> int:
    """Float32 lanes of the channel vectors: the target's SIMD width when it divides
    ``channels``, or when the channels are a multiple of 8 above it (24 = 16 + 8 on
    AVX-512: the last vector is partial, and bound inference gives it 8 lanes, no
    masking), else the widest of 8, 4, 2 that divides them, else 1 (scalar).

    16 + 8 measured ~1.1x faster than 3 x 8 on MobileNetV2's 1x1 convs to 24 channels
    (96->24 and 144->24 at 56x56): a half-width FMA costs as much as a full one.

    >>> channel_lanes(24, target)    # 16 on AVX-512 (16 + 8), 8 on AVX2
    16
    """
    widest = target.vector_lanes("float32")
    if channels % widest == 0 or (channels > widest and channels % 8 == 0):
        return widest
    for lanes in (8, 4, 2):
        if channels % lanes == 0:
            return lanes
    return 1


def choose_nhwc_tile(
    channels: int,
    out_width: int,
    target: Target,
    depthwise: bool = False,
    input_bytes: int = 0,
    reduction: int = 1,
    out_height: int = 0,
) -> NhwcTile:
    """The register tile for an output of ``channels`` x ``out_width`` pixels per row.

    Dense convs: among tiles that fit the target's vector registers with their weight
    vectors (and, without AVX-512's broadcast-from-memory FMA, one broadcast register)
    and keep at least ``MIN_ACCUMULATORS`` accumulators to hide the FMA latency, the one
    with the fewest loads per FMA (``1/oc_tile + 1/ow_tile``, the weight term times
    ``L2_LOAD_COST`` when a channel tile's weights -- ``reduction`` x tile channels --
    outgrow ``L1_WEIGHT_BYTES``), then the most channel vectors. Such a tile whose whole
    output plane (``out_height`` rows) fits ``ROW_BLOCK_BYTES`` runs as a row block
    instead, which streams the weights once per channel tile (weight loads cost 1).
    Wide channel tiles also write whole cache lines of each output pixel: MobileNetV2's
    16->96 1x1 conv at 112x112 ran ~1.5x faster as 6 vectors x 4 pixels than as 2 x 14
    (the most accumulators).

    Depthwise convs: one channel vector x the widest row tile; ``rows_outer`` above
    ``DW_ROWS_OUTER_BYTES`` of input.

    ``oc_tile`` divides the channel vectors (the last may be partial, see
    :func:`channel_lanes`); the row is spread evenly over the fewest tiles of the widest
    width that fits (as :func:`ember.topi.x86.conv2d.choose_tile`).

    >>> choose_nhwc_tile(96, 112, target)     # AVX-512: 6 x 16 lanes x 4 px
    NhwcTile(lanes=16, oc_tile=6, ow_tile=4, rows_outer=False, row_block=False)
    """
    lanes = channel_lanes(channels, target)
    vectors = -(-channels // lanes)
    registers = target.vector_registers
    spare = 1 if registers < 32 else 0
    best, best_key = NhwcTile(lanes, 1, 1), (False, -2.0, 0)
    # Depthwise: one channel vector per tile. Its FMAs each load their own input vector,
    # so more vectors per tile save no loads (measured slower on every MobileNetV2 layer).
    oc_tiles = (1,) if depthwise else range(1, registers // 2 + 1)
    for oc_tile in oc_tiles:
        if vectors % oc_tile:
            continue
        split = row_tiles(out_width, oc_tile, registers, spare)
        if split is None:
            continue
        tiles, ow_tile = split
        accumulators = oc_tile * out_width / tiles
        streamed = reduction * oc_tile * lanes * 4 > L1_WEIGHT_BYTES
        row_block = (
            streamed
            and not depthwise
            and reduction >= ROW_BLOCK_MIN_REDUCTION
            and 0 < out_height * out_width * oc_tile * lanes * 4 <= ROW_BLOCK_BYTES
        )
        weight_cost = L2_LOAD_COST if streamed and not row_block else 1
        loads_per_fma = 1 / oc_tile + weight_cost * tiles / out_width
        key = (accumulators >= MIN_ACCUMULATORS, -loads_per_fma, oc_tile)
        if key > best_key:
            best, best_key = NhwcTile(lanes, oc_tile, ow_tile, row_block=row_block), key
    if depthwise and input_bytes > DW_ROWS_OUTER_BYTES:
        best = NhwcTile(best.lanes, best.oc_tile, best.ow_tile, rows_outer=True)
    elif depthwise and out_height >= 2 * DW_BAND_ROWS:
        bands = out_height // DW_BAND_ROWS
        best = NhwcTile(best.lanes, best.oc_tile, best.ow_tile, row_bands=bands)
    return best


def schedule_nhwc(out: Tensor, target: Target, tile: NhwcTile | None = None) -> Schedule:
    """Schedule a tensor made by :func:`conv2d_nhwc` or :func:`depthwise_conv2d_nhwc`
    (with or without its epilogue); ``tile`` overrides :func:`choose_nhwc_tile`.

    >>> s = schedule_nhwc(out, target)
    >>> f = ember.build(s, [x, w, b, out])
    """
    s = te.create_schedule(out.op)
    tags = (TAG_CONV_NHWC, TAG_DEPTHWISE_NHWC)
    convs = [st for st in s.stages if isinstance(st.op, ComputeOp) and st.op.tag in tags]
    if len(convs) != 1 or not (out.op is convs[0].op or out.op.tag == TAG_ELEMWISE):
        raise ScheduleError(
            f"schedule_nhwc: {out.name!r} is not the output of conv2d_nhwc or "
            f"depthwise_conv2d_nhwc (with its epilogue)",
            hint="pass the tensor those functions return",
        )
    conv = convs[0].op.outputs[0]
    depthwise = conv.op.tag == TAG_DEPTHWISE_NHWC
    input_bytes = max(4 * math.prod(int_shape(t)) for t in conv.op.input_tensors)
    reduction = math.prod(int(r.dom.extent.value) for r in conv.op.reduce_axis)
    if out.op is conv.op:
        conv = s.cache_write(out, "local")
    else:
        s[conv].set_scope("local")
    for st in s.stages:
        if isinstance(st.op, ComputeOp) and st.op.tag == TAG_MATERIALIZE:
            # Padded copy: rows in parallel; the (x, channel) loops stay plain for GCC.
            b, y, _, _ = st.op.axis
            st.parallel(st.fuse(b, y))
    _, _, out_width, channels = int_shape(out)
    tile = tile or choose_nhwc_tile(
        channels, out_width, target, depthwise, input_bytes, reduction, int_shape(out)[1]
    )
    if -(-channels // tile.lanes) % tile.oc_tile:
        raise AttrError(
            f"schedule_nhwc: {tile.oc_tile} vectors per tile do not divide the "
            f"{-(-channels // tile.lanes)} vectors of {tile.lanes} lanes that hold the "
            f"{channels} output channels",
            hint="pick oc_tile dividing ceil(channels / lanes)",
        )
    ost = s[out]
    b, y, x, o = ost.op.axis
    ob, ol = ost.split(o, factor=tile.lanes)
    obo, obi = ost.split(ob, factor=tile.oc_tile)
    xo, xi = ost.split(x, factor=tile.ow_tile)
    # The epilogue's (pixel, channel) loops stay plain: GCC vectorizes the contiguous
    # channel loop into vmaxps / vminps, where ember's vectorizer would emit per-lane
    # selects (see schedule_conv2d_nchwc).
    if tile.row_block and not depthwise:
        ost.reorder(b, obo, y, xo, xi, obi, ol)
        plane = ost.fuse(b, obo)
        ost.parallel(plane)
    elif tile.rows_outer:
        # Large inputs: each parallel task is an output row, its channel tiles inside, so
        # the input rows it reads (all channels) come from memory once and stay in L2.
        ost.reorder(b, y, obo, xo, xi, obi, ol)
        ost.parallel(ost.fuse(b, y, obo))
    elif depthwise and tile.row_bands:
        band, y = ost.split(y, nparts=tile.row_bands)
        ost.reorder(b, band, obo, y, xo, xi, obi, ol)
        ost.parallel(ost.fuse(b, band, obo))
    elif depthwise:
        # A channel tile sweeps all rows: its slice of the kh input rows stays in L1 from
        # one output row to the next. Rows join the parallel loop when the channel tiles
        # are too few to share between threads evenly.
        ost.reorder(b, obo, y, xo, xi, obi, ol)
        if -(-channels // tile.lanes) // tile.oc_tile >= DW_MIN_TILES:
            ost.parallel(ost.fuse(b, obo))
        else:
            ost.parallel(ost.fuse(b, obo, y))
    else:
        # Channel tiles outer: a tile's weights stay in cache over all rows of the task.
        ost.reorder(b, obo, y, xo, xi, obi, ol)
        ost.parallel(ost.fuse(b, obo, y))
    cst = s[conv]
    if tile.row_block and not depthwise:
        # Small planes: the whole plane of a channel tile accumulates in a local buffer
        # with the input channels outermost (in blocks of ``ROW_BLOCK_CHANNELS``), so each
        # weight is streamed from L2 once per channel tile and reused from L1 by every
        # register tile of the plane (not streamed once per register tile).
        cst.compute_at(ost, plane)
        _, cy, cx, co = cst.op.axis
        cxo, cx = cst.split(cx, factor=tile.ow_tile)
        cob, cl = cst.split(co, factor=tile.lanes)
        *window, rc = cst.reduce_axis
        in_channels = int(rc.dom.extent.value)
        blocks = [d for d in range(ROW_BLOCK_CHANNELS, in_channels) if in_channels % d == 0]
        if blocks:
            rco, rci = cst.split(rc, factor=blocks[0])
            cst.reorder(rco, cy, cxo, *window, rci, cx, cob, cl)
        else:
            cst.reorder(cy, cxo, *window, rc, cx, cob, cl)
    else:
        cst.compute_at(ost, xo)
        _, _, cx, co = cst.op.axis
        cob, cl = cst.split(co, factor=tile.lanes)
        cst.reorder(*cst.reduce_axis, cx, cob, cl)
    cst.unroll(cx)
    cst.unroll(cob)
    if tile.lanes > 1:
        cst.vectorize(cl)
    return s


__all__ = [
    "NhwcTile",
    "channel_lanes",
    "choose_nhwc_tile",
    "conv2d_nhwc",
    "depthwise_conv2d_nhwc",
    "schedule_nhwc",
]
