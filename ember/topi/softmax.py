"""Softmax and log-softmax as TE computes, numerically stable (subtract the max first).

y = softmax_compute(x, axis=-1)   # stages: max, sum of exp(x - max), output

Along the last (contiguous) axis the sum runs as PARTIAL_SUMS interleaved partial sums
(element k goes to partial sum k % PARTIAL_SUMS), then those are added: the partial-sum
stage's inner axis is a vector, so exp runs as vector math (a single running sum is a
serial chain the C compiler may not reorder, and its exp stays scalar).

float16 data is computed in float32 (exp, the sum, the division) and rounded once
at the end, like the reference and onnxruntime: a float16 running sum of a long
row would lose the small terms.
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.te.intrin import if_then_else
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, int_shape, normalize_axis, register_compute
from ember.topi.nn import accumulate_dtype

PARTIAL_SUMS = 8
"""Partial sums of a softmax row along its last axis: one AVX2 vector of float32 (the
schedule splits it for narrower vectors; AVX-512 runs it as an 8-lane vector)."""


def softmax_compute(x: Tensor, axis: int, log: bool = False) -> Tensor:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (or its log)."""
    shape = int_shape(x)
    axis = normalize_axis(axis, x.ndim)
    reduced = tuple(1 if k == axis else d for k, d in enumerate(shape))
    r1 = te.reduce_axis((0, shape[axis]), name="k")
    r2 = te.reduce_axis((0, shape[axis]), name="k2")

    def at(i: tuple[E.PrimExpr, ...], r: Any) -> tuple[E.PrimExpr, ...]:
        return tuple(r if k == axis else v for k, v in enumerate(i))

    def keep(i: tuple[E.PrimExpr, ...]) -> tuple[E.PrimExpr, ...]:
        return tuple(E.const(0) if k == axis else v for k, v in enumerate(i))

    acc = accumulate_dtype(x.dtype)

    def wide(value: E.PrimExpr) -> E.PrimExpr:
        return value if value.dtype == acc else value.astype(acc)

    peak = te.compute(
        reduced, lambda *i: te.max(x[at(i, r1)], axis=r1), name="softmax_max", tag="reduce"
    )

    def exp_shifted(i: tuple[E.PrimExpr, ...], k: E.PrimExpr) -> E.PrimExpr:
        return E.call_intrin(acc, "exp", wide(x[at(i, k)]) - wide(peak[i]))

    n = shape[axis]
    if axis == x.ndim - 1 and n >= 2 * PARTIAL_SUMS:
        lanes = PARTIAL_SUMS
        chunk = te.reduce_axis((0, -(-n // lanes)), name="k2")

        def partial_sum(*il: E.PrimExpr) -> E.PrimExpr:
            i, lane = il[:-1], il[-1]
            k = chunk * lanes + lane
            term = exp_shifted(i, k)
            if n % lanes:  # the last chunk is short: its missing elements add 0
                term = if_then_else(k < n, term, E.const(0.0, acc))
            return te.sum(term, axis=chunk)

        partial = te.compute(
            (*reduced, lanes), partial_sum, name="softmax_partial_sum", tag="reduce"
        )
        rl = te.reduce_axis((0, lanes), name="lane")
        total = te.compute(
            reduced,
            lambda *i: te.sum(partial[(*i, rl)], axis=rl),
            name="softmax_sum",
            tag="reduce",
        )
    else:
        total = te.compute(
            reduced,
            lambda *i: te.sum(exp_shifted(i, r2), axis=r2),
            name="softmax_sum",
            tag="reduce",
        )

    def out(*i: E.PrimExpr) -> E.PrimExpr:
        shifted = wide(x[i]) - wide(peak[keep(i)])
        if log:
            value = shifted - E.call_intrin(acc, "log", total[keep(i)])
        else:
            value = E.call_intrin(acc, "exp", shifted) / total[keep(i)]
        return value if value.dtype == x.dtype else value.astype(x.dtype)

    return te.compute(shape, out, name="log_softmax" if log else "softmax", tag=TAG_ELEMWISE)


@register_compute("nn.softmax")
def _softmax(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return softmax_compute(inputs[0], attrs.axis)


@register_compute("nn.log_softmax")
def _log_softmax(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return softmax_compute(inputs[0], attrs.axis, log=True)
