"""x86 GEMM for ``nn.dense_pack``: a register-tiled product by a weight in column panels.

The weight arrives packed at compile time as (N/block, K, block) panels (the ``pack_dense``
pass folds the packing into a constant), ``block`` = ``vectors`` SIMD vectors of columns.
The schedule keeps a register tile of ``rows`` output rows x ``vectors`` vectors of
accumulators over the whole reduction, and for every k broadcasts one input value per
row and multiply-adds it with each of the panel's ``vectors`` weight vectors (one
contiguous load of ``block`` floats per k: the packing's point)::

    parallel row_block, panel:                    # row blocks only for large weights
      for row_tile in row_block:
        acc[rows][vectors] (vector registers) = 0
        for k:                                     # reduction, innermost over the tile
          unrolled rows, vectors: acc += broadcast(data[row, k]) * panel[k, vector]
        epilogue (bias, GELU, residual add, ...) per element, stored

With ``rows`` x ``vectors`` accumulators plus ``vectors`` weight registers and one
broadcast register within the target's vector registers (AVX2: 6 x 2 of 16), the
loop is bound by FMA throughput: 74-85 GFLOP/s on one core of this 2-core EPYC (AVX2)
for ConvNeXt's and ViT's Linear layers, ~95% of the FMA peak.

    out = dense_pack_compute(x, packed)     # x (M, K), packed (N/block, K, block)
    s = schedule_dense_pack([out], target)
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.target import Target
from ember.te.exprutil import inline_tensors, producer_loads
from ember.te.schedule import Schedule
from ember.te.tensor import ComputeOp, Tensor
from ember.tir import expr as E
from ember.topi.common import int_shape, register_compute, shape_of
from ember.topi.nn import _finish, _mul, accumulate_dtype
from ember.topi.x86.conv2d import default_first

NAME_DENSE_PACK = "dense_pack"
"""The reduction stage's name: the schedule rule recognizes its kernels by it (its tag is
``dense``, so the default schedule, used for N-D data, treats it as any dense)."""

MAX_TILE_ROWS = 8
"""Rows of a register tile at most: more rows only lengthen the unrolled body once the
accumulators already hide the FMA latency (12 chains for two 4-cycle FMA units)."""

STREAM_WEIGHT_BYTES = 4 * 1024 * 1024
"""Weights up to this size are read once per row tile (from L2 / L3, fast enough for an
FMA-bound tile: ConvNeXt's 2.3 MB 384x1536 layer ran at 75 GFLOP/s so); larger ones (ViT's
and ConvNeXt's 768x3072, 9 MB) once in all, panel by panel (26 -> 42+ GFLOP/s)."""

L2_BYTES = 256 * 1024
"""Data rows a panel passes while they stay in L2 (half of this EPYC's 512 KiB L2,
leaving room for the panel and the output)."""


def tile_rows(vectors: int, registers: int, broadcast_register: bool = True) -> int:
    """Rows of the register tile: as many as fit beside the ``vectors`` weight registers
    (and a broadcast register, unless the FMA broadcasts from memory as AVX-512's does).

    >>> tile_rows(2, 16), tile_rows(3, 32, False), tile_rows(1, 16)
    (6, 8, 8)
    """
    spare = 1 if broadcast_register else 0
    return max(1, min(MAX_TILE_ROWS, (registers - vectors - spare) // vectors))


def dense_pack_compute(data: Tensor, packed: Tensor) -> Tensor:
    """``out[..., n] = sum_k data[..., k] * packed[n // block, k, n % block]``."""
    _, k_total, block = int_shape(packed)
    shape = int_shape(data)
    out_shape = (*shape[:-1], int_shape(packed)[0] * block)
    acc = accumulate_dtype(data.dtype)
    k = te.reduce_axis((0, k_total), name="k")
    lead = len(out_shape) - 1

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        n = i[lead]
        return te.sum(_mul(data[(*i[:lead], k)], packed[n // block, k, n % block], acc), axis=k)

    out = te.compute(out_shape, fcompute, name=NAME_DENSE_PACK, tag="dense")
    return _finish(out, data.dtype, NAME_DENSE_PACK)


@register_compute("nn.dense_pack")
def _dense_pack(inputs: list[Tensor], attrs: object, out_type: object) -> Tensor:
    out = dense_pack_compute(inputs[0], inputs[1])
    assert int_shape(out) == shape_of(out_type)
    return out


def schedule_dense_pack(outputs: list[Tensor], target: Target, cfg: Any = None) -> Schedule | None:
    """Schedule a fused kernel anchored on a 2-D float32 ``nn.dense_pack`` (see the module
    doc); None for any other kernel.

    With an autotuner config ``cfg`` the choices become knobs whose first candidate, and
    so the fallback, is the untuned choice: ``tile_rows`` (register tile rows, 1 to
    ``MAX_TILE_ROWS``) and ``panels_outer`` (whether the weights stream panel by panel
    with the rows in L2-sized blocks inside, or the row tiles run outermost).

    >>> s = schedule_dense_pack(outputs, Target.parse("host"))   # doctest: +SKIP
    """
    if len(outputs) != 1:
        return None
    s = te.create_schedule([t.op for t in outputs])
    gemms = [
        st for st in s.stages if isinstance(st.op, ComputeOp) and st.op.name == NAME_DENSE_PACK
    ]
    if len(gemms) != 1 or gemms[0].op.outputs[0].dtype != "float32":
        return None
    out = outputs[0]
    gemm = gemms[0].op.outputs[0]
    if len(int_shape(gemm)) != 2 or int_shape(out) != int_shape(gemm):
        return None
    panels = [t for t in gemm.op.input_tensors if len(int_shape(t)) == 3]
    if len(panels) != 1:
        return None
    block = int_shape(panels[0])[2]
    acc = _inline_epilogue(s, out, gemm)
    if acc is None:
        return None  # a second reduction: not a GEMM + epilogue kernel
    gemm = acc
    rows_total, columns = int_shape(out)
    if rows_total == 0 or columns == 0:
        return None  # an empty product: nothing to tile (the generic schedule runs it)
    (k_axis,) = s[gemm].reduce_axis
    depth = int(k_axis.extent)
    registers = target.vector_registers
    lanes = next((w for w in (target.vector_lanes("float32"), 8) if block % w == 0), 0)
    if lanes == 0:
        return None
    vectors = block // lanes
    rows = min(rows_total, tile_rows(vectors, registers, registers < 32))
    panels_outer = depth * columns * 4 > STREAM_WEIGHT_BYTES
    if cfg is not None:
        cfg.define_knob(
            "tile_rows", default_first(rows, range(1, min(rows_total, MAX_TILE_ROWS) + 1))
        )
        cfg.define_knob("panels_outer", default_first(panels_outer, (False, True)))
        rows, panels_outer = int(cfg["tile_rows"].val), bool(cfg["panels_outer"].val)
    ost = s[out]
    m, n = ost.op.axis
    if not panels_outer:
        # Row tiles outermost: each reads the weights from L2 / L3 once, its rows from L1.
        mo, mi = ost.split(m, factor=rows)
        no, ni = ost.split(n, factor=block)
        ost.reorder(mo, no, mi, ni)
        outer = anchor = ost.fuse(mo, no)
    else:
        # Panels outermost, so the weights stream from memory once; the rows run in blocks
        # that stay in L2 while a panel passes them.
        block_rows = max(rows, L2_BYTES // (depth * 4) // rows * rows)
        mb, mr = ost.split(m, factor=min(block_rows, rows_total))
        mo, mi = ost.split(mr, factor=rows)
        no, ni = ost.split(n, factor=block)
        ost.reorder(mb, no, mo, mi, ni)
        outer = ost.fuse(mb, no)
        anchor = mo
    ost.parallel(outer)
    s[gemm].compute_at(ost, anchor)
    _tile_loops(s, gemm, lanes)
    # The epilogue's loops stay plain (as the conv's do): GCC vectorizes the contiguous
    # row of ``block`` columns itself, max / min / select included.
    return s


def _inline_epilogue(s: Schedule, out: Tensor, anchor: Tensor) -> Tensor | None:
    """Make ``anchor`` the kernel's local accumulator: cache-write it when it is the output,
    else inline every other stage (the elementwise epilogue) into the output. Returns the
    accumulator, or None when another stage reduces too (not an anchor + epilogue kernel)."""
    if out.op is anchor.op:
        return s.cache_write(out, "local")
    inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]] = {}
    for st in s.stages:
        if not isinstance(st.op, ComputeOp) or st.op is out.op or st.op is anchor.op:
            continue
        if st.reduce_axis:
            return None
        st.compute_inline()
        inlined[st.op.outputs[0]] = ([iv.var for iv in st.axis], st.body[0])
    # Substitute now so the output reads the anchor directly (compute_at needs the edge).
    for st in s.stages:
        if isinstance(st.op, ComputeOp) and st.attach_type != "inline":
            st.body = inline_tensors(tuple(st.body), inlined)
    s[anchor].set_scope("local")
    return anchor


def _tile_loops(s: Schedule, acc: Tensor, lanes: int) -> None:
    """The accumulator's loops: the reduction outermost, then the unrolled rows and column
    vectors of the register tile, the vector lanes innermost."""
    st = s[acc]
    *batch, ci, cj = st.op.axis
    (k_axis,) = st.reduce_axis
    cjo, cji = st.split(cj, factor=lanes)
    st.reorder(*batch, k_axis, ci, cjo, cji)
    st.unroll(ci)
    st.unroll(cjo)
    st.vectorize(cji)


def _activation_operands(body: E.PrimExpr, out_axes: list[E.Var], k: E.Var) -> bool:
    """Whether the product reads one operand along the reduction (A[..., m, k]) and the
    other along the output's columns (B[..., k, n], n contiguous): then a register tile
    broadcasts A's values and loads B's columns as vectors."""
    loads = producer_loads(body)
    along_k = [ld for ld in loads if ld.indices and ld.indices[-1] is k]
    along_n = [ld for ld in loads if ld.indices and ld.indices[-1] is out_axes[-1]]
    return len(loads) == 2 and len(along_k) == 1 and len(along_n) == 1


def schedule_matmul(outputs: list[Tensor], target: Target) -> Schedule | None:
    """Schedule a fused kernel anchored on a float32 ``nn.matmul`` / ``nn.batch_matmul`` of
    rank >= 2 whose second operand is read along its last axis (``B[..., k, n]``, not
    transposed): products of two activations (attention's QK^T after its transpose, and
    attention x V), which ``pack_dense`` leaves alone. None for any other kernel.

    The register tile is the GEMM's (``rows`` x ``vectors`` vectors of columns, k
    innermost), reading B's rows in place instead of packed panels; the parallel loop runs
    over the batch x row tiles::

        parallel batch, row_tile:
          for column_tile:
            acc[rows][vectors] = 0
            for k: unrolled rows, vectors: acc += broadcast(A[b, row, k]) * B[b, k, cols]
            epilogue, stored

    A column count that is not a multiple of the tile leaves a narrower last tile.
    """
    if len(outputs) != 1:
        return None
    s = te.create_schedule([t.op for t in outputs])
    products = [
        st
        for st in s.stages
        if isinstance(st.op, ComputeOp) and st.op.tag == "matmul" and st.reduce_axis
    ]
    if len(products) != 1 or products[0].op.outputs[0].dtype != "float32":
        return None
    out = outputs[0]
    product = products[0].op.outputs[0]
    shape = int_shape(out)
    if len(shape) < 2 or shape != int_shape(product) or len(products[0].reduce_axis) != 1:
        return None
    axes = [iv.var for iv in products[0].op.axis]
    k_var = products[0].reduce_axis[0].var
    if not _activation_operands(products[0].op.body[0], axes, k_var):
        return None
    acc = _inline_epilogue(s, out, product)
    if acc is None:
        return None
    *batch_shape, rows_total, columns = shape
    if 0 in shape:
        return None  # an empty product: nothing to tile (the generic schedule runs it)
    registers = target.vector_registers
    lanes = target.vector_lanes("float32")
    if columns < lanes * 2:
        lanes = 8
    vectors = 2 if columns >= 2 * lanes else 1
    rows = min(rows_total, tile_rows(vectors, registers, registers < 32))
    ost = s[out]
    *batch, m, n = ost.op.axis
    mo, mi = ost.split(m, factor=rows)
    no, ni = ost.split(n, factor=vectors * lanes)
    ost.reorder(*batch, mo, no, mi, ni)
    outer = ost.fuse(*batch, mo) if batch else mo
    ost.parallel(outer)
    s[acc].compute_at(ost, no)
    _tile_loops(s, acc, lanes)
    return s


__all__ = [
    "NAME_DENSE_PACK",
    "dense_pack_compute",
    "schedule_dense_pack",
    "schedule_matmul",
    "tile_rows",
]
