"""Default CPU schedules: vectorized inner loops, parallel outer loops, fused epilogues.

:func:`schedule_outputs` schedules a whole fused kernel (the TE graph of one
primitive function):

1. every injective / elementwise stage that is not an output is inlined into its
   consumers, except stages tagged ``materialize`` (a conv's or pool's padded input,
   a conv's repacked weights), which get loop nests of their own so the hot loops
   read them without bounds checks;
2. the anchor -- a reduction of the output's shape (conv, dense, matmul, pooling
   sum) -- is computed inside the output's parallel loop in a local buffer, and the
   epilogue (bias, batch-norm remnant, activation, residual add) stores from it.
   A conv / matmul that is itself the output gets such a buffer too (cache_write);
3. anchor placement: a convolution with output channels in blocks of 8 computes
   (batch, channel block, row) per parallel iteration, one vector of 8 (or 16)
   channels per output column, up to 14 columns unrolled as register accumulators,
   the reduction loops outside them; other anchors compute a whole output row
   (row vectors unrolled when few) or, with few rows, one vector of outputs;
4. other reductions (softmax's max and sum, dense's partial sums, argmax's value)
   and reductions that are outputs (pooling, reduce_*) run on their own: rows in
   parallel, reduction loops, then the row's vectors;
5. everything else: outer axes fused into one parallel loop (serial below
   PARALLEL_MIN_WORK), the innermost axis split by the vector width and vectorized.

    s = schedule_outputs([out], target)

Measured on this machine (1 thread, process CPU time, busy host): 3x3 conv
64->64 at 56x56 with bias+relu ~73 GFLOP/s, 512->512 at 7x7 ~55 GFLOP/s,
256x256 matmul ~36 GFLOP/s, 1x512x1000 dense ~10 GFLOP/s.
"""

from __future__ import annotations

from collections.abc import Sequence

from ember import te
from ember.target import Target
from ember.te.exprutil import inline_tensors
from ember.te.schedule import Schedule, Stage
from ember.te.tensor import ComputeOp, IterVar, Tensor, read_tensors
from ember.tir import expr as E
from ember.topi.common import TAG_ANCHOR, TAG_MATERIALIZE
from ember.topi.nn import TAG_CONV_BLOCKED

VECTOR_BYTES = 32
"""Bytes per SIMD register: AVX2 (256 bits); wider ISAs still gain from 8-float vectors."""


def vector_lanes(dtype: str, target: Target | None = None) -> int:
    """Lanes per vector for ``dtype`` (8 for float32 on AVX2), between 4 and 16."""
    itemsize = {"bool": 1, "float16": 2, "float64": 8}.get(dtype)
    if itemsize is None:
        itemsize = int("".join(ch for ch in dtype if ch.isdigit()) or 32) // 8
    return max(4, min(16, VECTOR_BYTES // max(itemsize, 1)))


def vector_factor(extent: int, lanes: int) -> int | None:
    """A power-of-two split factor (the vector width or half of it) that divides the
    innermost axis, or None. Odd widths (7, 13) stay scalar loops: a 7-lane vector is
    emitted lane by lane, measured 10x slower than the loop the C compiler vectorizes."""
    for f in (lanes, lanes // 2):
        if f >= 4 and extent % f == 0:
            return f
    return None


def _extent(iv: IterVar) -> int:
    return iv.extent


def _is_reduction(st: Stage) -> bool:
    return isinstance(st.op, ComputeOp) and bool(st.reduce_axis)


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(int(d.value) for d in t.shape)  # type: ignore[attr-defined]


def _split_inner(
    st: Stage, lanes: int
) -> tuple[list[IterVar], IterVar | None, IterVar | None, int]:
    """Split the innermost data axis by a dividing vector factor:
    (leading axes, outer loop or None, vector loop or None, outer extent)."""
    axes = list(st.axis)
    if not axes:
        return [], None, None, 1
    last = axes[-1]
    factor = vector_factor(_extent(last), lanes)
    if factor is None:
        return axes[:-1], last, None, _extent(last)
    if factor == _extent(last):
        return axes[:-1], None, last, 1
    outer, inner = st.split(last, factor=factor)
    return axes[:-1], outer, inner, _extent(last) // factor


def schedule_reduction(st: Stage, lanes: int, attached: bool) -> IterVar | None:
    """Loops of a reduction stage. A stage of its own with enough rows runs a whole row per
    parallel iteration, reduction loops outside the row's vectors (each input vector is
    read once per tap, measured 1.8x faster for pooling); otherwise (leading..., outer)
    are fused, then the reduction loops, then the vectorized inner axis."""
    leading, outer, inner, count = _split_inner(st, lanes)
    raxes = list(st.reduce_axis)
    if not attached and leading and outer is not None and _row_level(leading, count):
        st.reorder(*leading, *raxes, outer, *([inner] if inner is not None else []))
        if inner is not None:
            st.vectorize(inner)
        fused = st.fuse(*leading) if len(leading) > 1 else leading[0]
        _parallel(st, fused)
        return fused
    data_outer = leading + ([outer] if outer is not None else [])
    st.reorder(*data_outer, *raxes, *([inner] if inner is not None else []))
    if inner is not None:
        st.vectorize(inner)
    if not data_outer:
        return None
    fused = st.fuse(*data_outer) if len(data_outer) > 1 else data_outer[0]
    if not attached:
        _parallel(st, fused)
    return fused


ANCHOR_TAGS = ("conv2d", "conv2d_transpose", "dense", "matmul", TAG_ANCHOR)
"""Reductions computed into a local accumulator inside their output's loops."""

ROW_MIN_PARALLEL = 16
"""Host an anchor a whole output row at a time only when the rows alone give at least this
many parallel iterations (batch-1 dense has a single row)."""

ROW_MAX_VECTORS = 64
"""... and the row is at most this many vectors (their accumulators stay in L1)."""

ROW_UNROLL_VECTORS = 8
"""Rows of up to this many vectors are unrolled: independent accumulator chains hide the
latency of the fused multiply-adds."""


def _row_level(leading: Sequence[IterVar], vectors_per_row: int) -> bool:
    rows = 1
    for a in leading:
        rows *= _extent(a)
    return rows >= ROW_MIN_PARALLEL and vectors_per_row <= ROW_MAX_VECTORS


def schedule_row_reduction(st: Stage, lanes: int) -> None:
    """An anchor computed a row at a time: reduction loops outside, then the row's vectors
    (unrolled when few: independent accumulators), the vector lanes innermost."""
    leading, outer, inner, count = _split_inner(st, lanes)
    raxes = list(st.reduce_axis)
    tail = [a for a in (outer, inner) if a is not None]
    st.reorder(*leading, *raxes, *tail)
    if inner is not None:
        st.vectorize(inner)
    if outer is not None and count <= ROW_UNROLL_VECTORS:
        st.unroll(outer)


def schedule_channel_blocked(out: Stage, anchor: Stage, lanes: int) -> None:
    """NCHW output hosting a (N, O/8, OH, OW, 8) convolution one block-row at a time: the
    parallel loop runs over (batch, channel block, row); the anchor keeps one 8-channel
    accumulator per column (unrolled for short rows) with the reduction loops outside."""
    block = _extent(anchor.axis[-1])
    n, o, y, x = out.axis
    oo, oi = out.split(o, factor=block)
    out.reorder(n, oo, y, oi, x)
    if _extent(x) % lanes == 0:
        xo, xi = out.split(x, factor=lanes)
        out.vectorize(xi)
    fused = out.fuse(n, oo, y)
    _parallel(out, fused, anchor)
    anchor.compute_at(out, fused)
    anchor.set_scope("local")
    an, ab, ay, ax, alane = anchor.axis
    cols = _column_block(_extent(ax))
    if cols == _extent(ax):
        anchor.reorder(an, ab, ay, *anchor.reduce_axis, ax, alane)
        xi = ax
    else:
        xo, xi = anchor.split(ax, factor=cols)
        anchor.reorder(an, ab, ay, xo, *anchor.reduce_axis, xi, alane)
    anchor.vectorize(alane)
    anchor.unroll(xi)


MAX_COLUMN_BLOCK = 14
"""Output columns accumulated at once by the channel-blocked convolution: 14 vector
accumulators plus a weight vector and an input broadcast fill the 16 AVX2 registers."""


def _column_block(width: int) -> int:
    """The largest divisor of ``width`` in [6, MAX_COLUMN_BLOCK], else 8 (a guarded tail)."""
    if width <= MAX_COLUMN_BLOCK:
        return width
    for c in range(MAX_COLUMN_BLOCK, 5, -1):
        if width % c == 0:
            return c
    return 8


def _data_size(st: Stage) -> int:
    total = 1
    for a in st.axis:
        total *= _extent(a)
    return total


PARALLEL_MIN_WORK = 4096
"""Element-steps (outputs x reduction taps) below which a loop nest stays serial: waking
the thread pool costs microseconds, more than a few thousand multiply-adds."""


def _worth_parallel(st: Stage, *more: Stage) -> bool:
    work = 0
    for stage in (st, *more):
        taps = 1
        for a in stage.reduce_axis:
            taps *= _extent(a)
        work += _data_size(stage) * taps
    return work >= PARALLEL_MIN_WORK


def _parallel(st: Stage, iv: IterVar, *more: Stage) -> None:
    if _worth_parallel(st, *more):
        st.parallel(iv)


def schedule_injective(st: Stage, lanes: int) -> IterVar | None:
    """Outer axes fused and parallel, the innermost split by the vector width and vectorized
    (a split that does not divide leaves a guarded tail the vectorizer handles)."""
    axes = list(st.axis)
    if not axes:
        return None
    last = axes[-1]
    ext = _extent(last)
    inner = None
    outer: IterVar | None = last
    factor = vector_factor(ext, lanes)
    if factor is None and ext > lanes:
        factor = lanes  # non-dividing: the vectorizer keeps a guarded scalar tail
    if factor is not None:
        if factor == ext:
            outer, inner = None, last
        else:
            outer, inner = st.split(last, factor=factor)
    data_outer = axes[:-1] + ([outer] if outer is not None else [])
    if inner is not None:
        st.vectorize(inner)
    if not data_outer:
        return None
    fused = st.fuse(*data_outer) if len(data_outer) > 1 else data_outer[0]
    _parallel(st, fused)
    return fused


MATERIALIZE_MIN_ROWS = 16
"""Parallel iterations a materialized stage's leading axes must give before the next axis
joins them (a 3-channel image's padded copy fuses its rows too)."""


def schedule_materialized(st: Stage, lanes: int) -> IterVar | None:
    """A stored injective stage (a pool's padded input): the fewest leading axes that give
    MATERIALIZE_MIN_ROWS iterations fused and parallel, the other axes plain loops, the
    innermost split by the vector width and vectorized. Keeping the row and column loops
    unfused lets ``partition_selects`` split them where the padding condition changes, so
    the interior is a plain copy (fused into one loop, the condition is a division and a
    remainder per vector that no range decides)."""
    axes = list(st.axis)
    if len(axes) < 3:
        return schedule_injective(st, lanes)
    count, rows = 1, _extent(axes[0])
    while rows < MATERIALIZE_MIN_ROWS and count < len(axes) - 2:
        rows *= _extent(axes[count])
        count += 1
    leading = axes[:count]
    last = axes[-1]
    factor = vector_factor(_extent(last), lanes)
    if factor is None and _extent(last) > lanes:
        factor = lanes  # non-dividing: the vectorizer keeps a guarded scalar tail
    if factor is not None:
        if factor == _extent(last):
            st.vectorize(last)
        else:
            _, inner = st.split(last, factor=factor)
            st.vectorize(inner)
    fused = st.fuse(*leading) if len(leading) > 1 else leading[0]
    _parallel(st, fused)
    return fused


def schedule_outputs(outputs: Sequence[Tensor], target: Target | None = None) -> Schedule:
    """The default CPU schedule of a fused kernel computing ``outputs``."""
    s = te.create_schedule([t.op for t in outputs])
    output_ops = {t.op for t in outputs}
    for t in outputs:
        # A conv / matmul that is itself the output still gets a local accumulator, so it
        # is scheduled like an anchor with an (empty) epilogue.
        if isinstance(t.op, ComputeOp) and t.op.reduce_axis and t.op.tag in ANCHOR_TAGS:
            s.cache_write(t, "local")
    reductions: list[Stage] = []
    materialized: list[Stage] = []
    inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]] = {}
    for st in s.stages:
        if not isinstance(st.op, ComputeOp) or st.op in output_ops:
            continue
        if st.reduce_axis:
            reductions.append(st)
        elif st.op.tag == TAG_MATERIALIZE:
            materialized.append(st)
        else:
            st.compute_inline()
            inlined[st.op.outputs[0]] = ([iv.var for iv in st.axis], st.body[0])
    # Substitute the inlined stages now (lowering would do it too), so an output reads
    # its anchor directly and compute_at sees the producer-consumer edge.
    for st in s.stages:
        if isinstance(st.op, ComputeOp) and st.attach_type != "inline":
            st.body = inline_tensors(tuple(st.body), inlined)

    for st in materialized:
        schedule_materialized(st, vector_lanes(st.op.outputs[0].dtype, target))

    # Pick, per output, the one same-shaped reduction it can host as an anchor.
    hosted: dict[Stage, Stage] = {}
    for out in outputs:
        ost = s[out]
        if _is_reduction(ost):
            continue
        for red in reductions:
            if red in hosted or _shape(red.op.outputs[0]) != _shape(out):
                continue
            if _reads(ost, red.op.outputs[0]):
                hosted[red] = ost
                break

    for red in reductions:
        if red.op.tag != TAG_CONV_BLOCKED or red in hosted:
            continue
        for out in outputs:
            taken = s[out] in hosted.values()
            if out.ndim == 4 and not taken and _reads(s[out], red.op.outputs[0]):
                hosted[red] = s[out]
                break

    for red in reductions:
        lanes = vector_lanes(red.op.outputs[0].dtype, target)
        if red in hosted:
            continue
        schedule_reduction(red, lanes, attached=False)

    for out in outputs:
        ost = s[out]
        lanes = vector_lanes(out.dtype, target)
        anchors = [r for r, host in hosted.items() if host is ost]
        if _is_reduction(ost):
            schedule_reduction(ost, lanes, attached=False)
            continue
        if not anchors:
            schedule_injective(ost, lanes)
            continue
        anchor = anchors[0]
        if anchor.op.tag == TAG_CONV_BLOCKED:
            schedule_channel_blocked(ost, anchor, lanes)
            continue
        # Same vector factor on both, so the anchor computes exactly the outputs that one
        # iteration of the output's parallel loop stores.
        leading, outer, inner, count = _split_inner(ost, lanes)
        if inner is not None:
            ost.vectorize(inner)
        row_level = outer is not None and _row_level(leading, count)
        data_outer = leading + ([outer] if outer is not None and not row_level else [])
        if not data_outer:
            schedule_reduction(anchor, lanes, attached=False)
            continue
        fused = ost.fuse(*data_outer) if len(data_outer) > 1 else data_outer[0]
        _parallel(ost, fused, anchor)
        anchor.compute_at(ost, fused)
        anchor.set_scope("local")
        if row_level:
            schedule_row_reduction(anchor, lanes)
        else:
            schedule_reduction(anchor, lanes, attached=True)
    return s


def _reads(st: Stage, t: Tensor) -> bool:
    return t in read_tensors(st.body)


__all__ = ["schedule_injective", "schedule_outputs", "schedule_reduction", "vector_lanes"]
