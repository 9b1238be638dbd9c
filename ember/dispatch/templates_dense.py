"""Tunable CPU templates for matrix products: ``matmul`` (A[n,k] @ B[k,m]) and ``dense``
(X[batch,in] @ W[out,in]^T, the ``nn.dense`` layout).

Both use the same register-blocked schedule: the output is tiled into
``tile_y x tile_x`` blocks; each block accumulates in a local buffer (cache_write)
over the reduction split by ``tile_k``; the block's columns are vectorized and its
rows unrolled (knob ``unroll``); the outer block loops run in parallel (knob
``parallel``).

    task = create_task("matmul", (512, 512, 512))
    s, (A, B, C) = task.instantiate(FallbackConfig())
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.dispatch.space import _ConfigBase
from ember.dispatch.task import template

MAX_ROW_BLOCK = 16
"""Rows of one register block; more unrolled rows exceed the 16 (AVX2) vector registers."""
MAX_COL_BLOCK = 64
"""Columns of one register block (8 vectors of 8 float32)."""
VECTOR_LANES = 8
"""float32 lanes of a 256-bit vector register."""


def _lanes(extent: int) -> int:
    """Vector lanes for a block of ``extent`` columns: the largest power of two <= 16
    dividing it (so the vector split never needs a guard)."""
    lanes = 1
    while lanes < 16 and extent % (lanes * 2) == 0:
        lanes *= 2
    return lanes


def schedule_matmul_like(cfg: _ConfigBase, s: Any, C: Any, n: int, m: int, k: int) -> None:
    """Apply the blocked schedule to output ``C`` of shape (n, m) reducing over k."""
    if cfg.is_fallback:
        cfg.fallback_split("tile_y", [-1, 4 if n % 4 == 0 else 1])
        cfg.fallback_split("tile_x", [-1, 32 if m % 32 == 0 else _lanes(m)])
        cfg.fallback_split("tile_k", [-1, 4 if k % 4 == 0 else 1])
    cfg.define_split("tile_y", n, num_outputs=2, max_factor=MAX_ROW_BLOCK)
    cfg.define_split("tile_x", m, num_outputs=2, max_factor=MAX_COL_BLOCK)
    cfg.define_split("tile_k", k, num_outputs=2)
    cfg.define_knob("k_inner_outside", [True, False])
    cfg.define_knob("unroll", [True, False])
    cfg.define_knob("parallel", [True, False])

    CC = s.cache_write(C, "local")
    y, x = s[C].op.axis
    yo, yi = cfg["tile_y"].apply(s, C, y)
    xo, xi = cfg["tile_x"].apply(s, C, x)
    s[C].reorder(yo, xo, yi, xi)
    outer = s[C].fuse(yo, xo)
    if cfg["parallel"].val:
        s[C].parallel(outer)
    s[CC].compute_at(s[C], outer)

    cy, cx = s[CC].op.axis
    (r,) = s[CC].op.reduce_axis
    ko, ki = cfg["tile_k"].apply(s, CC, r)
    block_cols = cfg["tile_x"].size[-1]
    lanes = _lanes(block_cols)
    cxo, cxi = s[CC].split(cx, factor=lanes)
    if cfg["k_inner_outside"].val:
        s[CC].reorder(ko, ki, cy, cxo, cxi)
    else:
        s[CC].reorder(ko, cy, ki, cxo, cxi)
    if lanes > 1:
        s[CC].vectorize(cxi)
    if cfg["unroll"].val:
        s[CC].unroll(cy)
        s[CC].unroll(cxo)


@template("matmul")
def matmul(
    cfg: _ConfigBase, n: int, m: int, k: int, dtype: str = "float32"
) -> tuple[Any, list[Any]]:
    """C[n, m] = A[n, k] @ B[k, m]."""
    A = te.placeholder((n, k), dtype, name="A")
    B = te.placeholder((k, m), dtype, name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    cfg.add_flop(2.0 * n * m * k)
    s = te.create_schedule(C.op)
    schedule_matmul_like(cfg, s, C, n, m, k)
    return s, [A, B, C]


@template("dense")
def dense(
    cfg: _ConfigBase, batch: int, in_dim: int, out_dim: int, dtype: str = "float32"
) -> tuple[Any, list[Any]]:
    """Y[batch, out] = X[batch, in] @ W[out, in]^T (``nn.dense``)."""
    X = te.placeholder((batch, in_dim), dtype, name="X")
    W = te.placeholder((out_dim, in_dim), dtype, name="W")
    r = te.reduce_axis((0, in_dim), name="r")
    Y = te.compute((batch, out_dim), lambda i, j: te.sum(X[i, r] * W[j, r], axis=r), name="Y")
    cfg.add_flop(2.0 * batch * in_dim * out_dim)
    s = te.create_schedule(Y.op)
    schedule_matmul_like(cfg, s, Y, batch, out_dim, in_dim)
    return s, [X, W, Y]


__all__ = ["dense", "matmul", "schedule_matmul_like"]
