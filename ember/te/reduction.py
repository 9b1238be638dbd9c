"""Reductions: ``reduce_axis``, the ``Reduce`` expression, and sum / max / min / comm_reducer.

>>> k = reduce_axis((0, 16), name="k")
>>> C = compute((8,), lambda i: sum(A[i, k], axis=k), name="C")

A reduction must be the whole body of a compute; lowering turns it into an init
statement (``C[i] = identity``) and an update (``C[i] = combine(C[i], source)``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ember.errors import LoweringError
from ember.te.iter_var import REDUCE, IterVar, Range, to_expr
from ember.tir import expr as E
from ember.tir.functor import Visitor


def reduce_axis(dom: Any, name: str = "rv") -> IterVar:
    """A reduction axis over ``dom`` = ``(lo, hi)`` (half-open) or an extent."""
    return IterVar(E.Var(name), Range.from_bounds(dom), REDUCE)


@dataclass(frozen=True, eq=False, slots=True)
class CommReducer:
    """A commutative reducer: ``combine(lhs, rhs)`` with ``identity(dtype)``."""

    name: str
    combine: Callable[[E.PrimExpr, E.PrimExpr], E.PrimExpr]
    identity: Callable[[str], E.PrimExpr]

    def __call__(self, expr: Any, axis: Any, where: Any = None) -> E.PrimExpr:
        source = to_expr(expr)
        axes = tuple(axis) if isinstance(axis, list | tuple) else (axis,)
        for a in axes:
            if not isinstance(a, IterVar) or a.kind != REDUCE:
                raise LoweringError(
                    f"{self.name}: axis {a!r} is not a reduction axis",
                    hint="create it with te.reduce_axis((lo, hi), name=...)",
                )
        cond = None if where is None else to_expr(where)
        if cond is not None and not E.is_bool(cond.dtype):
            raise LoweringError(f"{self.name}: `where` must be a boolean, got {cond.dtype}")
        return Reduce(self, source, axes, cond)


@dataclass(frozen=True, slots=True)
class Reduce(E.PrimExpr):
    """``combiner`` over ``axis`` of ``source`` where ``condition`` holds."""

    combiner: CommReducer
    source: E.PrimExpr
    axis: tuple[IterVar, ...]
    condition: E.PrimExpr | None = None

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.source.dtype

    def __repr__(self) -> str:
        return f"{self.combiner.name}({self.source!r}, axis={[a.name for a in self.axis]})"


def comm_reducer(
    combine: Callable[[E.PrimExpr, E.PrimExpr], E.PrimExpr],
    identity: Callable[[str], Any],
    name: str = "reduce",
) -> CommReducer:
    """A custom commutative reducer.

    >>> product = comm_reducer(lambda x, y: x * y, lambda t: const(1, t), name="product")
    >>> C = compute((n,), lambda i: product(A[i, k], axis=k))
    """

    def _identity(dtype: str) -> E.PrimExpr:
        value = identity(dtype)
        return value if isinstance(value, E.PrimExpr) else E.const(value, dtype)

    return CommReducer(name, combine, _identity)


def min_value(dtype: str) -> E.PrimExpr:
    """The smallest value of ``dtype`` (-inf for floats): the identity of ``max``."""
    if E.is_float(dtype):
        return E.const(float("-inf"), dtype)
    if E.is_unsigned(dtype):
        return E.const(0, dtype)
    if E.is_bool(dtype):
        return E.const(False, dtype)
    bits = int(dtype.lstrip("int"))
    return E.const(-(2 ** (bits - 1)), dtype)


def max_value(dtype: str) -> E.PrimExpr:
    """The largest value of ``dtype`` (inf for floats): the identity of ``min``."""
    if E.is_float(dtype):
        return E.const(float("inf"), dtype)
    if E.is_bool(dtype):
        return E.const(True, dtype)
    if E.is_unsigned(dtype):
        bits = int(dtype.lstrip("uint"))
        return E.const(2**bits - 1, dtype)
    bits = int(dtype.lstrip("int"))
    return E.const(2 ** (bits - 1) - 1, dtype)


sum = CommReducer("sum", lambda x, y: x + y, lambda t: E.const(0, t))  # noqa: A001
max = CommReducer("max", E.max_, min_value)  # noqa: A001
min = CommReducer("min", E.min_, max_value)  # noqa: A001


def check_reduce_placement(name: str, body: Sequence[E.PrimExpr]) -> None:
    """A Reduce may only be the whole body (TVM's rule): nested ones have no loop to live in."""

    class _Find(Visitor):
        count = 0

        def visit_Reduce(self, e: Reduce) -> None:
            self.count += 1
            self.generic(e)

    for k, b in enumerate(body):
        f = _Find()
        f.expr(b)
        top = isinstance(b, Reduce)
        if f.count > int(top) or (top and len(body) > 1):
            raise LoweringError(
                f"compute {name!r}: a reduction must be the whole body of the compute "
                f"(output {k} nests one inside another expression)",
                hint="compute the reduction in its own te.compute, then use it in a second one",
            )
        if top:
            seen = builtins.set()
            for a in b.axis:
                if a in seen:
                    raise LoweringError(f"compute {name!r}: reduction axis {a.name!r} listed twice")
                seen.add(a)
