"""Compute bfloat16 in float32: arithmetic on bfloat16 values becomes float32 arithmetic
between conversions (TVM's BF16Legalize).

Needs: any loop IR. Guarantees: no arithmetic, comparison or intrinsic call has a
bfloat16 operand or result; bfloat16 values are only loaded, stored, selected,
broadcast, converted (``Cast``) and written as constants. Every bfloat16 result is
still rounded where the program says so (round-to-nearest-even, by the code
generator's conversion), so a chain of bfloat16 ops rounds after each op, like the
numpy reference (ml_dtypes computes each op in float32 and rounds)::

    c[i] = a[i] * b[i]                          # all bfloat16
    # becomes
    c[i] = bfloat16(float32(a[i]) * float32(b[i]))

C has no bfloat16 arithmetic (GCC 12 has no ``__bf16``), and the hardware that has
some rounds differently; float32 arithmetic with one rounding per op is exact to
what the reference computes.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np

from ember.tir import expr as E
from ember.tir.functor import Mutator
from ember.tir.stmt import PrimFunc

BFLOAT16 = "bfloat16"
COMPUTE = "float32"


def _is_bf16(dtype: str) -> bool:
    return E.dtype_element(dtype) == BFLOAT16


def _compute_dtype(dtype: str) -> str:
    return E.with_lanes(COMPUTE, E.dtype_lanes(dtype))


def _widen(e: E.PrimExpr) -> E.PrimExpr:
    """``e`` (bfloat16) as float32: a constant directly, anything else converted."""
    if not _is_bf16(e.dtype):
        return e
    if isinstance(e, E.FloatImm):
        return E.FloatImm(round_to_bfloat16(e.value), COMPUTE)
    return E.Cast(_compute_dtype(e.dtype), e)


def round_to_bfloat16(value: float) -> float:
    """The bfloat16 nearest to ``value`` (ties to even), as a Python float.

    >>> round_to_bfloat16(1.00390625)   # halfway between 1 and 1.0078125: to even
    1.0
    """
    return float(np.asarray(value, np.float64).astype(ml_dtypes.bfloat16))


class _Legalize(Mutator):
    def visit_Cast(self, e: E.Cast) -> E.PrimExpr:
        # A conversion is what the code generator renders; only its operand is rewritten.
        return self.generic(e)

    def _binary(self, e: E.PrimExpr) -> E.PrimExpr:
        e = self.generic(e)
        a, b = e.a, e.b  # type: ignore[attr-defined]
        if not (_is_bf16(a.dtype) or _is_bf16(b.dtype)):
            return e
        wide = type(e)(_widen(a), _widen(b))
        return E.Cast(e.dtype, wide) if _is_bf16(e.dtype) else wide

    visit_Add = visit_Sub = visit_Mul = visit_Div = _binary
    visit_FloorDiv = visit_FloorMod = visit_Min = visit_Max = _binary
    visit_EQ = visit_NE = visit_LT = visit_LE = visit_GT = visit_GE = _binary

    def visit_Call(self, e: E.Call) -> E.PrimExpr:
        e = self.generic(e)
        if not (_is_bf16(e.dtype) or any(_is_bf16(a.dtype) for a in e.args)):
            return e
        dtype = _compute_dtype(e.dtype) if _is_bf16(e.dtype) else e.dtype
        wide = E.Call(dtype, e.name, tuple(_widen(a) for a in e.args))
        return E.Cast(e.dtype, wide) if _is_bf16(e.dtype) else wide


def legalize_bfloat16(func: PrimFunc) -> PrimFunc:
    """``func`` with its bfloat16 arithmetic done in float32 (see the module docstring)."""
    body = _Legalize().stmt(func.body)
    return func if body is func.body else dataclasses.replace(func, body=body)


__all__ = ["legalize_bfloat16", "round_to_bfloat16"]
