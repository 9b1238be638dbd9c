"""Softmax and log-softmax as TE computes, numerically stable (subtract the max first).

y = softmax_compute(x, axis=-1)   # stages: max, sum of exp(x - max), output
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, int_shape, normalize_axis, register_compute


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

    peak = te.compute(
        reduced, lambda *i: te.max(x[at(i, r1)], axis=r1), name="softmax_max", tag="reduce"
    )
    total = te.compute(
        reduced,
        lambda *i: te.sum(E.call_intrin(x.dtype, "exp", x[at(i, r2)] - peak[i]), axis=r2),
        name="softmax_sum",
        tag="reduce",
    )

    def out(*i: E.PrimExpr) -> E.PrimExpr:
        shifted = x[i] - peak[keep(i)]
        if log:
            return shifted - E.call_intrin(x.dtype, "log", total[keep(i)])
        return E.call_intrin(x.dtype, "exp", shifted) / total[keep(i)]

    return te.compute(shape, out, name="log_softmax" if log else "softmax", tag=TAG_ELEMWISE)


@register_compute("nn.softmax")
def _softmax(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return softmax_compute(inputs[0], attrs.axis)


@register_compute("nn.log_softmax")
def _log_softmax(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return softmax_compute(inputs[0], attrs.axis, log=True)
