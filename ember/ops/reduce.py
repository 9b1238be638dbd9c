"""Reductions (pattern COMM_REDUCE): sum, mean, max, min, prod, argmax, argmin.

>>> from ember.graph.ir import Var, TensorType

>>> from ember.ops import call
>>> call("reduce_mean", Var("x", TensorType((2, 3, 4))), axes=(-1,), keepdims=True).type.shape
(2, 3, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import TensorType
from ember.ops._shape import (
    NUMBER_DTYPES,
    accumulate_dtype,
    bool_attr,
    check_dtype,
    normalize_axes,
    normalize_axis,
    optional_axes,
    set_attr,
    tensor,
)
from ember.ops.registry import Op, OpPattern, register_op


@dataclass(frozen=True)
class ReduceAttrs:
    """Reduce over ``axes`` (``None``: all axes); ``keepdims`` keeps them with size 1."""

    axes: tuple[int, ...] | None = None
    keepdims: bool = False

    def __post_init__(self) -> None:
        set_attr(self, "axes", optional_axes("axes", self.axes))
        bool_attr(self, "keepdims")


def _reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_op(
    name: str, fn: Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray], empty_ok: bool
) -> Op:
    op = register_op(name, ReduceAttrs, OpPattern.COMM_REDUCE, num_inputs=1)

    @op.type_rule
    def _type(types: list, attrs: ReduceAttrs) -> TensorType:
        data = tensor(types, 0, "data")
        check_dtype(data, "data", NUMBER_DTYPES)
        axes = normalize_axes(attrs.axes, data.ndim)
        if not empty_ok and any(data.shape[a] == 0 for a in axes):
            raise ShapeError(f"{name}: cannot reduce the empty axis of shape {data.shape}")
        return TensorType(_reduced_shape(data.shape, axes, attrs.keepdims), data.dtype)

    @op.reference
    def _ref(inputs: list[np.ndarray], attrs: ReduceAttrs) -> np.ndarray:
        x = np.asarray(inputs[0])
        axes = normalize_axes(attrs.axes, x.ndim)
        return np.asarray(fn(x, axes, attrs.keepdims)).astype(x.dtype)

    return op


def _sum(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    return x.sum(axis=axes, keepdims=keep, dtype=accumulate_dtype(x.dtype))


def _mean(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    acc = np.float64 if np.issubdtype(x.dtype, np.integer) else accumulate_dtype(x.dtype)
    out = x.mean(axis=axes, keepdims=keep, dtype=acc)
    # Integer means truncate toward zero, like integer division (onnxruntime ReduceMean).
    return np.trunc(out) if np.issubdtype(x.dtype, np.integer) else out


def _prod(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    return x.prod(axis=axes, keepdims=keep, dtype=accumulate_dtype(x.dtype))


reduce_sum = _reduce_op("reduce_sum", _sum, empty_ok=True)
reduce_mean = _reduce_op("reduce_mean", _mean, empty_ok=False)
reduce_max = _reduce_op("reduce_max", lambda x, a, k: x.max(axis=a, keepdims=k), empty_ok=False)
reduce_min = _reduce_op("reduce_min", lambda x, a, k: x.min(axis=a, keepdims=k), empty_ok=False)
reduce_prod = _reduce_op("reduce_prod", _prod, empty_ok=True)


@dataclass(frozen=True)
class ArgReduceAttrs:
    """ONNX ArgMax/ArgMin: one ``axis``; ties pick the first index unless ``select_last_index``."""

    axis: int = 0
    keepdims: bool = True
    select_last_index: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise AttrError(f"attribute axis must be an int, got {self.axis!r}")
        set_attr(self, "axis", int(self.axis))
        bool_attr(self, "keepdims")
        bool_attr(self, "select_last_index")


def _arg_op(name: str, fn: Callable[..., np.ndarray]) -> Op:
    op = register_op(name, ArgReduceAttrs, OpPattern.COMM_REDUCE, num_inputs=1)

    @op.type_rule
    def _type(types: list, attrs: ArgReduceAttrs) -> TensorType:
        data = tensor(types, 0, "data")
        check_dtype(data, "data", NUMBER_DTYPES)
        axis = normalize_axis(attrs.axis, data.ndim)
        if data.shape[axis] == 0:
            raise ShapeError(f"{name}: axis {axis} of shape {data.shape} is empty")
        return TensorType(_reduced_shape(data.shape, (axis,), attrs.keepdims), "int64")

    @op.reference
    def _ref(inputs: list[np.ndarray], attrs: ArgReduceAttrs) -> np.ndarray:
        x = np.asarray(inputs[0])
        axis = normalize_axis(attrs.axis, x.ndim)
        if attrs.select_last_index:
            flipped = np.flip(x, axis=axis)
            out = x.shape[axis] - 1 - fn(flipped, axis=axis, keepdims=attrs.keepdims)
        else:
            out = fn(x, axis=axis, keepdims=attrs.keepdims)
        return np.asarray(out).astype(np.int64)

    return op


argmax = _arg_op("argmax", np.argmax)
argmin = _arg_op("argmin", np.argmin)
