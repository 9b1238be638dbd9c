"""Loop axes of tensor expressions: ``Range``, ``IterVar`` and their kinds.

An :class:`IterVar` is a variable with a range and a kind (data-parallel, reduction,
thread). Computes get one per output dimension, ``reduce_axis`` makes reduction
axes, and schedules derive new ones by split and fuse::

    i = IterVar(Var("i"), Range.from_bounds(16))
    i * 4 + 1          # an expression: IterVars stand for their variable

This module sits below :mod:`ember.te.tensor` and :mod:`ember.te.reduction`, which
both build axes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.errors import LoweringError
from ember.tir import expr as E


@dataclass(frozen=True, slots=True)
class Range:
    """The half-open integer range ``[min, min + extent)``."""

    min: E.PrimExpr
    extent: E.PrimExpr

    @staticmethod
    def from_bounds(bounds: Any) -> Range:
        """``(lo, hi)`` -> ``[lo, hi)``; a single int ``n`` -> ``[0, n)``."""
        if isinstance(bounds, Range):
            return bounds
        if isinstance(bounds, int | E.PrimExpr):
            return Range(E.const(0), E.convert(bounds))
        lo, hi = bounds
        lo, hi = E.convert(lo), E.convert(hi)
        if isinstance(lo, E.IntImm) and isinstance(hi, E.IntImm):
            return Range(lo, E.const(hi.value - lo.value))
        return Range(lo, hi - lo)


DATA_PAR = "data_par"
REDUCE = "reduce"
THREAD = "thread"


@dataclass(frozen=True, eq=False, slots=True)
class IterVar:
    """A loop axis: a variable, its range, and its kind (data-parallel, reduce, thread).

    IterVars are compared by identity and usable as expressions (``A[i, r]``, ``r * 2``).
    """

    var: E.Var
    dom: Range | None
    kind: str = DATA_PAR
    thread_tag: str = ""

    @property
    def name(self) -> str:
        return self.var.name

    def __prim_expr__(self) -> E.PrimExpr:
        return self.var

    def __repr__(self) -> str:
        if self.dom is None:
            return f"IterVar({self.var.name})"
        return f"IterVar({self.var.name}, [{self.dom.min}, {self.dom.min}+{self.dom.extent}))"

    @property
    def extent(self) -> int:
        if self.dom is None or not isinstance(self.dom.extent, E.IntImm):
            raise LoweringError(f"axis {self.name!r} has no constant extent")
        return self.dom.extent.value


def _forward(name: str) -> Callable[..., Any]:
    def method(self: IterVar, *args: Any) -> Any:
        return getattr(self.var, name)(*args)

    method.__name__ = name
    return method


for _op in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __floordiv__ "
    "__rfloordiv__ __mod__ __rmod__ __neg__ __lt__ __le__ __gt__ __ge__ __and__ __rand__ __or__ "
    "__ror__ __xor__ __lshift__ __rshift__ equal not_equal astype"
).split():
    setattr(IterVar, _op, _forward(_op))


def thread_axis(tag: str, extent: int | None = None) -> IterVar:
    """A GPU thread/block axis to ``bind`` a loop to: ``thread_axis("threadIdx.x")``."""
    dom = None if extent is None else Range.from_bounds(extent)
    return IterVar(E.Var(tag), dom, THREAD, tag)


def to_expr(value: Any) -> E.PrimExpr:
    """Convert an index or value (int, float, IterVar, PrimExpr) to an expression."""
    if isinstance(value, IterVar):
        return value.var
    if not isinstance(value, E.PrimExpr | bool | int | float) and hasattr(value, "__index__"):
        value = int(value)  # numpy integers
    return E.convert(value)
