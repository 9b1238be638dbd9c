"""Math intrinsics and helpers for compute bodies: exp, log, sqrt, ..., if_then_else, all, any.

Each returns a loop IR :class:`~ember.tir.expr.Call` (or plain expression) whose
name the C code generator and the TIR evaluator both know::

    B = compute((n,), lambda i: te.exp(A[i]) / (1 + te.exp(A[i])))
"""

from __future__ import annotations

import functools
from typing import Any

from ember.errors import LoweringError
from ember.te.iter_var import to_expr
from ember.te.reduction import max_value, min_value
from ember.tir import expr as E

const = E.const


def _float_unary(name: str, doc: str) -> Any:
    def fn(x: Any) -> E.PrimExpr:
        x = to_expr(x)
        if not E.is_float(x.dtype):
            raise LoweringError(
                f"te.{name} needs a floating-point argument, got {x.dtype}",
                hint=f"cast first: te.{name}(x.astype('float32'))",
            )
        return E.Call(x.dtype, name, (x,))

    fn.__name__ = name
    fn.__doc__ = doc
    return fn


exp = _float_unary("exp", "e ** x")
log = _float_unary("log", "natural logarithm")
sqrt = _float_unary("sqrt", "square root")
rsqrt = _float_unary("rsqrt", "1 / sqrt(x)")
tanh = _float_unary("tanh", "hyperbolic tangent")
sigmoid = _float_unary("sigmoid", "1 / (1 + exp(-x))")
erf = _float_unary("erf", "the error function")
floor = _float_unary("floor", "round toward -inf")
ceil = _float_unary("ceil", "round toward +inf")
round = _float_unary("round", "round half to even")  # noqa: A001
trunc = _float_unary("trunc", "round toward zero")


def pow(x: Any, y: Any) -> E.PrimExpr:  # noqa: A001
    """``x ** y`` for floats."""
    x = to_expr(x)
    y = E.convert(y, x)
    if not E.is_float(x.dtype) or x.dtype != y.dtype:
        raise LoweringError(f"te.pow needs two floats of one dtype, got {x.dtype} and {y.dtype}")
    return E.Call(x.dtype, "pow", (x, y))


def abs(x: Any) -> E.PrimExpr:  # noqa: A001
    """Absolute value (floats and signed integers)."""
    x = to_expr(x)
    if E.is_float(x.dtype):
        return E.Call(x.dtype, "fabs", (x,))
    if E.is_unsigned(x.dtype) or E.is_bool(x.dtype):
        return x
    return E.select(x < 0, -x, x)


def popcount(x: Any) -> E.PrimExpr:
    """Number of set bits of an integer."""
    x = to_expr(x)
    if not E.is_int(x.dtype):
        raise LoweringError(f"te.popcount needs an integer, got {x.dtype}")
    return E.Call(x.dtype, "popcount", (x,))


def if_then_else(cond: Any, then_value: Any, else_value: Any) -> E.PrimExpr:
    """``then_value`` where ``cond`` holds, else ``else_value`` (a loop IR Select).

    Vector code may evaluate both branches, so lowering clamps every tensor read inside
    a branch into the tensor's bounds unless it can prove the read in bounds: padding
    like ``if_then_else(i >= 1, A[i - 1], 0.0)`` never reads outside ``A``.
    """
    c = to_expr(cond)
    if not E.is_bool(c.dtype):
        raise LoweringError(f"if_then_else: the condition must be boolean, got {c.dtype}")
    # Python numbers stay numbers so they adopt the other branch's dtype (0.0 -> float16).
    t = then_value if isinstance(then_value, int | float) else to_expr(then_value)
    f = else_value if isinstance(else_value, int | float) else to_expr(else_value)
    return E.select(c, t, f)


def all(*conds: Any) -> E.PrimExpr:  # noqa: A001
    """Logical and of boolean expressions: ``te.all(i >= 1, i < n + 1)``."""
    if not conds:
        return E.const(True)
    return functools.reduce(lambda a, b: E.And(a, b), [to_expr(c) for c in conds])


def any(*conds: Any) -> E.PrimExpr:  # noqa: A001
    """Logical or of boolean expressions."""
    if not conds:
        return E.const(False)
    return functools.reduce(lambda a, b: E.Or(a, b), [to_expr(c) for c in conds])


__all__ = [
    "abs",
    "all",
    "any",
    "ceil",
    "const",
    "erf",
    "exp",
    "floor",
    "if_then_else",
    "log",
    "max_value",
    "min_value",
    "popcount",
    "pow",
    "round",
    "rsqrt",
    "sigmoid",
    "sqrt",
    "tanh",
    "trunc",
]
