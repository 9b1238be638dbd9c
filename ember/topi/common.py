"""Shared pieces of the operator library: the compute registry and index helpers.

Every graph op gets its TE compute through ``get_op(name).extensions["compute"]``,
a function ``fcompute(inputs, attrs, out_type) -> te.Tensor | tuple[te.Tensor, ...]``
(``out_type`` is the graph type of the call, so shapes come from the op's type rule)::

    @register_compute("nn.relu", "nn.leaky_relu")
    def _unary(inputs, attrs, out_type): ...

An op may also carry a schedule rule, ``op.extensions["schedule"]``: a function
``fschedule(outputs, target) -> te.Schedule | None`` that the op strategy tries on every
kernel calling the op before the default schedules (None declines); user ops register
theirs through ``ember.custom.register_schedule``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ember.ops.registry import get_op
from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import Tensor
from ember.tir import expr as E

Compute = Callable[[list[Tensor], Any, Any], "Tensor | tuple[Tensor, ...]"]
ScheduleRule = Callable[[list[Tensor], Target], "Schedule | None"]

# Tags tell the default schedules what a stage is (TVM uses the same idea).
TAG_ELEMWISE = "elemwise"
TAG_INJECTIVE = "injective"
TAG_MATERIALIZE = "materialize"  # an injective stage worth storing (a conv's padded input)
# A reduction of its output's shape that takes an elementwise epilogue, as dense and matmul
# do: the default schedule hosts it in the output's loops and the fused_kernel tuning
# template tunes it (ember.custom.register_compute(..., tunable=True) tags user ops so).
TAG_ANCHOR = "anchor"


def register_compute(*names: str) -> Callable[[Compute], Compute]:
    """Attach ``fn`` as the TE compute of the graph ops ``names``."""

    def register(fn: Compute) -> Compute:
        for name in names:
            get_op(name).extensions["compute"] = fn
        return fn

    return register


def register_schedule(*names: str) -> Callable[[ScheduleRule], ScheduleRule]:
    """Attach ``fn`` as the schedule rule of the graph ops ``names`` (tried before the
    default schedules on every kernel that calls one of them; returning None declines)."""

    def register(fn: ScheduleRule) -> ScheduleRule:
        for name in names:
            get_op(name).extensions["schedule"] = fn
        return fn

    return register


def const_like(value: float | int | bool, dtype: str) -> E.PrimExpr:
    return E.const(value, E.dtype_element(dtype))


def shape_of(out_type: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in out_type.shape)


def int_shape(t: Tensor) -> tuple[int, ...]:
    return tuple(int(d.value) for d in t.shape)  # type: ignore[attr-defined]


def broadcast_index(
    t: Tensor, out_index: Sequence[E.PrimExpr], out_ndim: int
) -> tuple[E.PrimExpr, ...]:
    """Index of ``t`` read at output position ``out_index`` under numpy broadcasting."""
    shape = int_shape(t)
    offset = out_ndim - len(shape)
    return tuple(E.const(0) if d == 1 else out_index[offset + k] for k, d in enumerate(shape))


def normalize_axis(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def product(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def unravel(flat: E.PrimExpr, shape: Sequence[int]) -> list[E.PrimExpr]:
    """Row-major multi-index of the flat position ``flat`` in ``shape``."""
    index: list[E.PrimExpr] = []
    for k in range(len(shape) - 1, -1, -1):
        d = int(shape[k])
        if d == 1:
            index.append(E.const(0))
            continue
        stride = product(shape[k + 1 :])
        q = flat if stride == 1 else flat // stride
        index.append(q if k == 0 else q % d)
    return index[::-1]


def ravel(index: Sequence[E.PrimExpr], shape: Sequence[int]) -> E.PrimExpr:
    """Row-major flat position of ``index`` in ``shape``."""
    flat: E.PrimExpr = E.const(0)
    for i, d in zip(index, shape, strict=True):
        flat = flat * int(d) + i
    return flat
