"""Reductions (sum, mean, max, min, prod, argmax, argmin) as TE computes.

    y = reduce_compute(x, (1,), keepdims=False, kind="sum", out_shape=(4,))

``argmax`` is two reductions: the maximum, then the first (or last) index that
holds it -- plain commutative reducers, so the schedules treat it like any sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember import te
from ember.te.tensor import IterVar, Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, int_shape, normalize_axis, register_compute, shape_of
from ember.topi.nn import accumulate_dtype

product = te.comm_reducer(lambda a, b: a * b, lambda dtype: E.const(1, dtype), name="product")


def _input_index(
    out_index: Sequence[E.PrimExpr],
    raxes: dict[int, IterVar],
    ndim: int,
    keepdims: bool,
) -> tuple[E.PrimExpr, ...]:
    index: list[E.PrimExpr] = []
    it = iter(out_index)
    for k in range(ndim):
        if k in raxes:
            index.append(raxes[k].var)
            if keepdims:
                next(it)
        else:
            index.append(next(it))
    return tuple(index)


def reduce_compute(
    x: Tensor, axes: Sequence[int], keepdims: bool, kind: str, out_shape: tuple[int, ...]
) -> Tensor:
    """``kind`` in sum / mean / max / min / prod over ``axes`` (normalized, sorted)."""
    shape = int_shape(x)
    raxes = {a: te.reduce_axis((0, shape[a]), name=f"r{a}") for a in axes}
    acc = x.dtype if kind in ("max", "min") else accumulate_dtype(x.dtype)
    reducer = {"sum": te.sum, "mean": te.sum, "max": te.max, "min": te.min, "prod": product}[kind]

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        value = x[_input_index(i, raxes, x.ndim, keepdims)]
        if value.dtype != acc:
            value = value.astype(acc)
        return reducer(value, axis=list(raxes.values()))

    total = te.compute(out_shape, fcompute, name=f"reduce_{kind}", tag="reduce")
    if kind == "mean":
        count = 1
        for a in axes:
            count *= shape[a]
        # Integer means truncate toward zero: C integer division does exactly that.
        total = te.compute(
            out_shape, lambda *i: total[i] / E.const(count, acc), name="mean", tag=TAG_ELEMWISE
        )
    if total.dtype != x.dtype:
        src = total
        total = te.compute(
            out_shape, lambda *i: src[i].astype(x.dtype), name="reduce_cast", tag=TAG_ELEMWISE
        )
    return total


def _make(kind: str) -> Any:
    def fcompute(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
        (x,) = inputs
        axes = (
            tuple(range(x.ndim))
            if attrs.axes is None
            else tuple(sorted({normalize_axis(a, x.ndim) for a in attrs.axes}))
        )
        return reduce_compute(x, axes, attrs.keepdims, kind, shape_of(out_type))

    return fcompute


for _kind in ("sum", "mean", "max", "min", "prod"):
    register_compute(f"reduce_{_kind}")(_make(_kind))


def arg_reduce_compute(
    x: Tensor, axis: int, keepdims: bool, select_last: bool, kind: str, out_shape: tuple[int, ...]
) -> Tensor:
    """Index (int64) of the max (``kind="max"``) or min along ``axis``."""
    shape = int_shape(x)
    r1 = {axis: te.reduce_axis((0, shape[axis]), name="r")}
    reducer = te.max if kind == "max" else te.min
    best = te.compute(
        out_shape,
        lambda *i: reducer(x[_input_index(i, r1, x.ndim, keepdims)], axis=r1[axis]),
        name=f"arg{kind}_value",
        tag="reduce",
    )
    r2 = {axis: te.reduce_axis((0, shape[axis]), name="k")}

    def index(*i: E.PrimExpr) -> E.PrimExpr:
        hit = x[_input_index(i, r2, x.ndim, keepdims)].equal(best[i])
        k = r2[axis].var.astype("int64")
        if select_last:
            return te.max(E.select(hit, k, E.const(-1, "int64")), axis=r2[axis])
        return te.min(E.select(hit, k, E.const(shape[axis], "int64")), axis=r2[axis])

    return te.compute(out_shape, index, name=f"arg{kind}", tag="reduce")


def _make_arg(kind: str) -> Any:
    def fcompute(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
        (x,) = inputs
        axis = normalize_axis(attrs.axis, x.ndim)
        return arg_reduce_compute(
            x, axis, attrs.keepdims, attrs.select_last_index, kind, shape_of(out_type)
        )

    return fcompute


register_compute("argmax")(_make_arg("max"))
register_compute("argmin")(_make_arg("min"))
