"""Elementwise and broadcast ops as TE computes, built from their scalar rules.

A scalar rule (:mod:`ember.topi.scalar`) says what one element is; this module
wraps it in a ``te.compute`` over the output shape that reads each operand with
numpy broadcasting (a size-1 axis is read at index 0)::

    A = te.placeholder((4, 1), "float32"); B = te.placeholder((3,), "float32")
    C = broadcast_compute("add", [A, B], attrs, (4, 3), "float32")   # C[i, j] = A[i, 0] + B[j]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember import te
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import TAG_ELEMWISE, broadcast_index, register_compute, shape_of
from ember.topi.scalar import SCALAR_RULES, scalar_rule


def broadcast_compute(
    op_name: str,
    inputs: Sequence[Tensor],
    attrs: Any,
    out_shape: Sequence[int],
    out_dtype: str,
) -> Tensor:
    """``out[idx] = rule(in_0[bcast(idx)], in_1[bcast(idx)], ...)`` for op ``op_name``."""
    rule = scalar_rule(op_name)
    ndim = len(out_shape)

    def fcompute(*idx: E.PrimExpr) -> E.PrimExpr:
        operands = [t[broadcast_index(t, idx, ndim)] for t in inputs]
        value = rule(operands, attrs, out_dtype)
        return value if value.dtype == out_dtype else value.astype(out_dtype)

    return te.compute(tuple(out_shape), fcompute, name=op_name.replace(".", "_"), tag=TAG_ELEMWISE)


def _batch_norm(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    # The per-channel vectors (C,) broadcast along ``attrs.axis``, not the last axis.
    data, *per_channel = inputs
    ndim = data.ndim
    axis = attrs.axis + ndim if attrs.axis < 0 else attrs.axis
    rule = SCALAR_RULES["nn.batch_norm"]

    def fcompute(*idx: E.PrimExpr) -> E.PrimExpr:
        operands = [data[idx]] + [v[idx[axis]] for v in per_channel]
        return rule(operands, attrs, data.dtype)

    return te.compute(data.shape, fcompute, name="batch_norm", tag=TAG_ELEMWISE)


register_compute("nn.batch_norm")(_batch_norm)


def _make(op_name: str) -> Any:
    def fcompute(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
        return broadcast_compute(op_name, inputs, attrs, shape_of(out_type), out_type.dtype)

    return fcompute


for _name in SCALAR_RULES:
    if _name != "nn.batch_norm":
        register_compute(_name)(_make(_name))
