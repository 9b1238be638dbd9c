"""x86 Winograd convolution F(m x m, 3 x 3) in the blocked layout: TE computes and schedules
of the three ops of :mod:`ember.ops.winograd` (TVM's x86 winograd structure, with the GEMM
register-tiled like :mod:`ember.topi.x86.conv2d`)::

    V (alpha, alpha, C/ib, P, ib)    input transform B^T d B (zero border read through a guard)
    M (alpha, alpha, O/ob, P, ob)    M[e, u] = V[e, u] x U[e, u] over the input channels
    Y (N, O/ob, OH, OW, ob)          output transform A^T M A, then the fused epilogue

The transforms are written as sums of only the non-zero terms of B^T / A^T: each stage
picks its expression with a select on the tile coordinate (e, u or y % m, x % m); the
schedules unroll those loops, so after unrolling every select folds to one branch and the
C code holds exactly the adds and multiplies of the transform (no multiply by 0 or 1).
The GEMM (where the FLOPs are) keeps ``oc_tile`` output blocks x ``p_tile`` tiles of
accumulators in vector registers and reduces over the input channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ember import te
from ember.ops.winograd import tile_counts, winograd_matrices
from ember.target import Target
from ember.te.exprutil import inline_tensors
from ember.te.schedule import Schedule
from ember.te.tensor import ComputeOp, Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_MATERIALIZE, int_shape, register_compute, shape_of
from ember.topi.x86.conv2d import (
    MAX_OW_TILE,
    ConvTile,
    add_blocked_bias,
    choose_tile,
    define_tile_knobs,
)

TAG_WINOGRAD_INPUT = "winograd_input_transform"
TAG_WINOGRAD_GEMM = "winograd_gemm"
TAG_WINOGRAD_OUTPUT = "winograd_output_transform"


def _combination(coefficients: np.ndarray, terms: list[E.PrimExpr], dtype: str) -> E.PrimExpr:
    """sum(c * t) over the non-zero coefficients, with +-1 as an add or subtract."""
    out: E.PrimExpr | None = None
    pairs = list(zip(coefficients.tolist(), terms, strict=True))
    pairs.sort(key=lambda pair: pair[0] < 0)  # a positive term first: no "0 - x"
    for coef, term in pairs:
        if coef == 0:
            continue
        if abs(coef) != 1:
            term = term * E.const(float(abs(coef)), dtype)
        if out is None:
            out = -term if coef < 0 else term
        else:
            out = out - term if coef < 0 else out + term
    assert out is not None, "a Winograd matrix row is all zeros"
    return out


def _pick(index: E.PrimExpr, branches: list[E.PrimExpr]) -> E.PrimExpr:
    """branches[index] as a select chain (folds to one branch once index is a constant)."""
    out = branches[-1]
    for k in range(len(branches) - 2, -1, -1):
        out = E.select(E.equal(index, E.const(k)), branches[k], out)
    return out


def _transform_2d(
    left: np.ndarray, right: np.ndarray, row: E.PrimExpr, col: E.PrimExpr, read: Callable
) -> E.PrimExpr:
    """(left @ X @ right^T)[row, col] with X[i, j] = read(i, j): the 2-D transform of one
    tile, an explicit sum for every (row, col) pair chosen by a select chain."""
    dtype = read(0, 0).dtype
    n_in = left.shape[1]
    rows = []
    for r in range(left.shape[0]):
        cols = []
        for c in range(right.shape[0]):
            coef = np.outer(left[r], right[c]).reshape(-1)
            terms = [read(i, j) for i in range(n_in) for j in range(n_in)]
            cols.append(_combination(coef, terms, dtype))
        rows.append(_pick(col, cols))
    return _pick(row, rows)


def winograd_input_compute(data: Tensor, attrs: Any, out_shape: tuple[int, ...]) -> Tensor:
    """V = B^T d B for every tile, reading a zero-padded copy of the input (the schedule
    makes that copy one tile row at a time, small enough for the stack)."""
    n, in_blocks, h, w, in_block = int_shape(data)
    alpha, _, _, tiles, _ = out_shape
    m = attrs.tile_size
    _, _, bt = winograd_matrices(m)
    pt, pl = attrs.padding[0], attrs.padding[1]
    tiles_w = -(-(w + pl + attrs.padding[3] - 2) // m)
    tiles_h = tiles // (n * tiles_w)
    zero = E.const(0.0, data.dtype)

    def fpad(b: Any, c: Any, y: Any, x: Any, k: Any) -> E.PrimExpr:
        inside = te.all(y >= pt, y < h + pt, x >= pl, x < w + pl)
        return te.if_then_else(inside, data[b, c, y - pt, x - pl, k], zero)

    padded_shape = (n, in_blocks, tiles_h * m + 2, tiles_w * m + 2, in_block)
    padded = te.compute(padded_shape, fpad, name="winograd_pad", tag=TAG_MATERIALIZE)

    def finput(e: Any, u: Any, cb: Any, p: Any, k: Any) -> E.PrimExpr:
        b = p // (tiles_h * tiles_w)
        ty = p // tiles_w % tiles_h
        tx = p % tiles_w
        return _transform_2d(bt, bt, e, u, lambda i, j: padded[b, cb, ty * m + i, tx * m + j, k])

    return te.compute(
        out_shape,
        finput,
        name="winograd_V",
        tag=TAG_WINOGRAD_INPUT,
        attrs={"tiles_w": tiles_w},
    )


def winograd_gemm_compute(v: Tensor, u: Tensor, out_shape: tuple[int, ...]) -> Tensor:
    """M[e, u, ob, p, c] = sum over input channels of V[e, u, ., p, .] * U[e, u, ob, ., ., c]."""
    _, _, in_blocks, _, in_block = int_shape(v)
    rcb = te.reduce_axis((0, in_blocks), name="ic_outer")
    rci = te.reduce_axis((0, in_block), name="ic_inner")
    return te.compute(
        out_shape,
        lambda e, a, ob, p, c: te.sum(
            v[e, a, rcb, p, rci] * u[e, a, ob, rcb, rci, c], axis=[rcb, rci]
        ),
        name="winograd_M",
        tag=TAG_WINOGRAD_GEMM,
    )


def winograd_output_compute(mm: Tensor, attrs: Any, out_shape: tuple[int, ...]) -> Tensor:
    """Y = A^T M A for every output pixel's tile (cropped to the output)."""
    m = attrs.tile_size
    at, _, _ = winograd_matrices(m)
    out_h, out_w = out_shape[2], out_shape[3]
    tiles_h, tiles_w = tile_counts(out_h, out_w, m)

    def foutput(b: Any, ob: Any, y: Any, x: Any, c: Any) -> E.PrimExpr:
        p = b * (tiles_h * tiles_w) + (y // m) * tiles_w + x // m
        return _transform_2d(at, at, y % m, x % m, lambda i, j: mm[i, j, ob, p, c])

    return te.compute(
        out_shape, foutput, name="winograd_Y", tag=TAG_WINOGRAD_OUTPUT, attrs={"tile_size": m}
    )


@register_compute("nn.winograd_input_transform")
def _input(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return winograd_input_compute(inputs[0], attrs, shape_of(out_type))


@register_compute("nn.winograd_batch_matmul")
def _gemm(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return winograd_gemm_compute(inputs[0], inputs[1], shape_of(out_type))


@register_compute("nn.winograd_output_transform")
def _output(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    out = winograd_output_compute(inputs[0], attrs, shape_of(out_type))
    return add_blocked_bias(out, inputs[1]) if len(inputs) == 2 else out


# ----------------------------------------------------------------------------- schedules


def _anchor(s: Schedule, tag: str) -> Any:
    found = [st for st in s.stages if isinstance(st.op, ComputeOp) and st.op.tag == tag]
    return found[0] if len(found) == 1 else None


def schedule_winograd(outputs: list[Tensor], target: Target, cfg: Any = None) -> Schedule | None:
    """Schedule a kernel anchored on one of the three Winograd ops; None otherwise.

    - input transform: parallel over (channel block, tile); (e, u) unrolled so each
      element's select picks its own sum; the 16-lane loop left plain (GCC vectorizes it);
    - batched GEMM: parallel over (e, u, output block group); a register tile of
      ``oc_tile`` output blocks x ``p_tile`` tiles (:func:`choose_tile`, the tiles as the
      "width") accumulates over the input channels, like the direct conv; with an
      autotuner config ``cfg`` its choices are knobs (:func:`_gemm_choices`);
    - output transform: parallel over (n, output block, tile row); the m x m tile unrolled,
      the epilogue (bias, relu, residual add) inlined.

    >>> s = schedule_winograd(outputs, target)
    """
    if len(outputs) != 1:
        return None
    s = te.create_schedule([t.op for t in outputs])
    out = outputs[0]
    if (st := _anchor(s, TAG_WINOGRAD_INPUT)) is not None and st.op is out.op:
        # One tile row per iteration: the padded rows it reads are made right before it.
        e, u, cb, p, _ = st.op.axis
        row, tx = st.split(p, factor=int(st.op.attrs["tiles_w"]))
        st.reorder(cb, row, tx, e, u)
        st.parallel(st.fuse(cb, row))
        st.unroll(e)
        st.unroll(u)
        pad = _anchor(s, TAG_MATERIALIZE)
        if pad is not None:
            pad.compute_at(st, st.leaf_iter_vars[0])
        return s
    if (st := _anchor(s, TAG_WINOGRAD_GEMM)) is not None and st.op is out.op:
        _schedule_gemm(s, out, target, cfg)
        return s
    st = _anchor(s, TAG_WINOGRAD_OUTPUT)
    if st is None or int_shape(out) != int_shape(st.op.outputs[0]):
        return None
    inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]] = {}
    for other in s.stages:
        if not isinstance(other.op, ComputeOp) or other.op is out.op:
            continue
        if other.reduce_axis:
            return None  # a reduction in the epilogue: not ours
        other.compute_inline()
        inlined[other.op.outputs[0]] = ([iv.var for iv in other.axis], other.body[0])
    for other in s.stages:
        if isinstance(other.op, ComputeOp) and other.attach_type != "inline":
            other.body = inline_tensors(tuple(other.body), inlined)
    m = int(st.op.attrs["tile_size"])
    ost = s[out]
    n, ob, y, x, _ = ost.op.axis
    yo, yi = ost.split(y, factor=m)
    xo, xi = ost.split(x, factor=m)
    ost.reorder(n, ob, yo, xo, yi, xi)
    ost.parallel(ost.fuse(n, ob, yo))
    ost.unroll(yi)
    ost.unroll(xi)
    return s


def _gemm_choices(
    cfg: Any, default: ConvTile, out_blocks: int, tiles: int
) -> tuple[ConvTile, int, bool]:
    """Define the GEMM's knobs on ``cfg`` (the untuned choice first, so it is the fallback)
    and read the chosen point: ``oc_tile`` output blocks x ``p_tile`` tiles of
    accumulators; ``loop_order`` 0 runs the tiles inside each output-block group (one
    group's weights stay in cache across the tiles), 1 the groups inside each tile
    group (one tile group's V stays in cache across the weights); ``unroll_ic`` unrolls
    the input-channel block's steps.
    """
    tile = define_tile_knobs(cfg, default, out_blocks, min(tiles, MAX_OW_TILE), "p_tile")
    cfg.define_knob("loop_order", [0, 1])
    cfg.define_knob("unroll_ic", [False, True])
    return tile, int(cfg["loop_order"].val), bool(cfg["unroll_ic"].val)


def _schedule_gemm(s: Schedule, gemm: Tensor, target: Target, cfg: Any) -> None:
    local = s.cache_write(gemm, "local")
    _, _, out_blocks, tiles, _ = int_shape(gemm)
    registers = target.vector_registers
    # With 32 registers the target has AVX-512, whose FMA broadcasts from memory.
    tile = choose_tile(out_blocks, tiles, registers, False, registers < 32)
    loop_order, unroll_ic = 0, False
    if cfg is not None:
        tile, loop_order, unroll_ic = _gemm_choices(cfg, tile, out_blocks, tiles)
    gst = s[gemm]
    e, u, ob, p, c = gst.op.axis
    obo, obi = gst.split(ob, factor=tile.oc_tile)
    po, pi = gst.split(p, factor=tile.ow_tile)
    if loop_order == 1:
        gst.reorder(e, u, po, obo, obi, pi, c)
        gst.parallel(gst.fuse(e, u, po))
        inner = obo
    else:
        gst.reorder(e, u, obo, po, obi, pi, c)
        gst.parallel(gst.fuse(e, u, obo))
        inner = po
    lst = s[local]
    lst.compute_at(gst, inner)
    _, _, lob, lp, lc = lst.op.axis
    rcb, rci = lst.reduce_axis
    lst.reorder(rcb, rci, lp, lob, lc)
    if unroll_ic:
        lst.unroll(rci)
    lst.unroll(lp)
    lst.unroll(lob)
    lst.vectorize(lc)


__all__ = [
    "schedule_winograd",
    "winograd_gemm_compute",
    "winograd_input_compute",
    "winograd_output_compute",
]
