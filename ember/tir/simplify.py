"""The arithmetic simplifier: constant folding, linear forms, div/mod and min/max by ranges.

    i, j = Var("i"), Var("j")
    simplify((i * 4 + j) - i * 4)                          # j
    simplify((i * 8 + j) // 8, {j: (0, 7)})                # i
    simplify(j < 8, {j: (0, 7)})                           # True
    a = Analyzer(); a.bind(j, (0, 8)); a.can_prove(j < 9)  # True (bind takes min, extent)

Rules keep exact integer semantics: floordiv/floormod are split only by
multiples of the divisor, comparisons are decided only from proven ranges, and
a rewrite whose constants would leave the dtype's range is not made (the
original might wrap where the rewrite would not). Float expressions are only
constant-folded (reassociation would change rounding).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ember.tir import expr as E
from ember.tir.arith import Interval, Linear, bound_of, fits, is_linear_dtype, to_linear, wrap
from ember.tir.functor import Mutator, substitute
from ember.tir.stmt import Evaluate, For, IfThenElse, LetStmt, PrimFunc, SeqStmt, Stmt, seq

_TRUE = E.IntImm(1, "bool")
_FALSE = E.IntImm(0, "bool")


def _bool(v: bool, lanes: int = 1) -> E.PrimExpr:
    c = _TRUE if v else _FALSE
    return c if lanes == 1 else E.Broadcast(c, lanes)


def _const_val(e: E.PrimExpr) -> int | float | None:
    if isinstance(e, E.IntImm | E.FloatImm):
        return e.value
    if isinstance(e, int | float):  # a Ramp/Broadcast built with a bare Python number
        return e
    return None


def _make_const(v: int | float, dtype: str) -> E.PrimExpr:
    if E.is_float(dtype):
        return E.FloatImm(float(np.array(v).astype(E.dtype_element(dtype))), dtype)
    if E.is_bool(dtype):
        return E.IntImm(int(bool(v)), dtype)
    return E.IntImm(wrap(int(v), dtype), dtype)


def _fold_binary(t: type, a: int | float, b: int | float, dtype: str) -> int | float | None:
    is_int = not E.is_float(dtype)
    try:
        if t is E.Add:
            return a + b
        if t is E.Sub:
            return a - b
        if t is E.Mul:
            return a * b
        if t is E.Div:
            if b == 0:
                return None
            if is_int:
                q = abs(int(a)) // abs(int(b))
                return q if (a >= 0) == (b >= 0) else -q
            return float(np.array(a, E.dtype_element(dtype)) / np.array(b, E.dtype_element(dtype)))
        if t is E.FloorDiv:
            return None if b == 0 else (a // b if is_int else math.floor(a / b))
        if t is E.FloorMod:
            return None if b == 0 else (a % b if is_int else a - math.floor(a / b) * b)
        if t is E.Min:
            return min(a, b)
        if t is E.Max:
            return max(a, b)
        if is_int:
            if t is E.BitAnd:
                return int(a) & int(b)
            if t is E.BitOr:
                return int(a) | int(b)
            if t is E.BitXor:
                return int(a) ^ int(b)
            if t is E.ShiftLeft and 0 <= b < 64:
                return int(a) << int(b)
            if t is E.ShiftRight and 0 <= b < 64:
                return int(a) >> int(b)
    except (OverflowError, ZeroDivisionError):
        return None
    return None


_CMP = {
    E.EQ: lambda a, b: a == b,
    E.NE: lambda a, b: a != b,
    E.LT: lambda a, b: a < b,
    E.LE: lambda a, b: a <= b,
    E.GT: lambda a, b: a > b,
    E.GE: lambda a, b: a >= b,
}


class Analyzer(Mutator):
    """Variable ranges plus the rewriting simplifier that uses them.

    ``bind(var, (min, extent))`` or ``bind_range(var, lo, hi)`` (inclusive) records
    a range; ``can_prove(cond)`` is True only when ``cond`` holds for every value.
    """

    def __init__(self, bounds: dict[E.Var, Interval] | None = None) -> None:
        self.bounds: dict[E.Var, Interval] = dict(bounds or {})
        self._memo: dict[E.PrimExpr, E.PrimExpr] = {}

    # The result of simplifying an expression depends only on it and on ``bounds``, so
    # results are kept until ``bounds`` changes. Only scalar integer arithmetic and
    # comparisons are kept: that is where the work is (linear forms, div/mod by ranges),
    # their trees are small to hash, and big unrolled kernels repeat them (every term of
    # a Winograd transform computes the same tile index).
    def expr(self, e: E.PrimExpr) -> E.PrimExpr:
        if not isinstance(e, E.BinaryOp | E.CmpOp) or not is_linear_dtype(e.a.dtype):
            return super().expr(e)
        done = self._memo.get(e)
        if done is None:
            done = self._memo[e] = super().expr(e)
        return done

    def _set_bound(self, var: E.Var, interval: Interval | None) -> None:
        """Set (None: forget) the range of ``var``; results kept for the old ranges go."""
        self._memo.clear()
        if interval is None:
            self.bounds.pop(var, None)
        else:
            self.bounds[var] = interval

    # ------------------------------------------------------------------ facts
    def bind(self, var: E.Var, rng: tuple[E.PrimExpr | int, E.PrimExpr | int]) -> None:
        """Record ``min <= var < min + extent`` (the range of a loop)."""
        lo_e, ext_e = (E.convert(x) for x in rng)
        lo = self.bound(lo_e)
        ext = self.bound(ext_e)
        hi = None if lo[1] is None or ext[1] is None else lo[1] + ext[1] - 1
        self._set_bound(var, (lo[0], hi))

    def bind_range(self, var: E.Var, lo: int | None, hi: int | None) -> None:
        """Record ``lo <= var <= hi`` (inclusive; None for an open side)."""
        self._set_bound(var, (lo, hi))

    def bound(self, e: E.PrimExpr) -> Interval:
        """Inclusive range of an integer expression (after simplification)."""
        e = self.simplify(e)
        if is_linear_dtype(e.dtype):
            return to_linear(e).bound(self.bounds)
        return bound_of(e, self.bounds)

    def can_prove(self, cond: E.PrimExpr) -> bool:
        c = self.simplify(cond)
        return isinstance(c, E.IntImm) and c.value != 0

    def simplify(self, e: E.PrimExpr) -> E.PrimExpr:
        return self.expr(e)

    # ------------------------------------------------------------------ helpers
    def _lin_bound(self, lin: Linear) -> Interval:
        return lin.bound(self.bounds)

    def _diff_bound(self, a: E.PrimExpr, b: E.PrimExpr) -> Interval | None:
        """Range of ``a - b`` for scalar integers, from the linear form (so i+1 - i is exact)."""
        if not is_linear_dtype(a.dtype):
            return None
        if E.is_unsigned(a.dtype):
            # Unsigned a - b wraps: its clipped bound ([0, 255] for uint8) is not the sign of
            # the true difference (min(a, b) would fold to b). Bound each side instead.
            (alo, ahi), (blo, bhi) = self.bound(a), self.bound(b)
            if None in (alo, ahi, blo, bhi):
                return None
            return (alo - bhi, ahi - blo)  # type: ignore[operator]
        lin = to_linear(a).plus(to_linear(b), -1)
        return self._lin_bound(lin)

    def _linear(self, e: E.PrimExpr, original: E.PrimExpr) -> E.PrimExpr:
        lin = to_linear(e)
        if not lin.in_range():
            return original
        return lin.to_expr()

    # ------------------------------------------------------------------ visitors
    def generic(self, node):  # type: ignore[no-untyped-def]
        node = super().generic(node)
        if isinstance(node, E.BinaryOp):
            return self._binary(node)
        if isinstance(node, E.CmpOp):
            return self._compare(node)
        return node

    def _binary(self, e: E.BinaryOp) -> E.PrimExpr:
        t, a, b, dtype = type(e), e.a, e.b, e.dtype
        ca, cb = _const_val(a), _const_val(b)
        if ca is not None and cb is not None:
            v = _fold_binary(t, ca, cb, dtype)
            if v is not None:
                return _make_const(v, dtype)
        vec = self._vector_binary(e)
        if vec is not None:
            return vec
        if not is_linear_dtype(dtype):
            return self._float_identities(e, ca, cb)
        if t in (E.Add, E.Sub, E.Mul):
            return self._linear(e, e)
        if t is E.FloorDiv or t is E.FloorMod:
            return self._divmod(e)
        if t is E.Div:
            if self.bound(a)[0] is not None and self.bound(a)[0] >= 0 and cb is not None and cb > 0:
                return self._divmod(E.FloorDiv(a, b))
            return e
        if t is E.Min or t is E.Max:
            return self._minmax(e)
        return e

    def _float_identities(self, e: E.BinaryOp, ca, cb) -> E.PrimExpr:  # type: ignore[no-untyped-def]
        t = type(e)
        if E.is_float(e.dtype):
            # x*1, x+0 and x-0 are exact in IEEE arithmetic (x+0 is not for x=-0, but -0 == 0).
            if t is E.Mul and cb == 1:
                return e.a
            if t is E.Mul and ca == 1:
                return e.b
            if t in (E.Add, E.Sub) and cb == 0:
                return e.a
            if t is E.Add and ca == 0:
                return e.b
            if t is E.Div and cb == 1:
                return e.a
        return e

    def _divmod(self, e: E.BinaryOp) -> E.PrimExpr:
        a, c = e.a, _const_val(e.b)
        is_div = isinstance(e, E.FloorDiv)
        if c is None or c <= 0:
            return e
        c = int(c)
        if c == 1:
            return a if is_div else E.IntImm(0, e.dtype)
        # (x // a) // b -> x // (a*b) for positive constants
        if is_div and isinstance(a, E.FloorDiv) and isinstance(a.b, E.IntImm) and a.b.value > 0:
            if fits(a.b.value * c, e.dtype):
                return self._divmod(E.FloorDiv(a.a, E.IntImm(a.b.value * c, e.dtype)))
        # (x % (c*k)) % c -> x % c
        if not is_div and isinstance(a, E.FloorMod) and isinstance(a.b, E.IntImm):
            if a.b.value > 0 and a.b.value % c == 0:
                return self._divmod(E.FloorMod(a.a, e.b))
        lin = to_linear(a)
        quotient = Linear(e.dtype)
        rest = Linear(e.dtype, lin.const)
        for term, coeff in lin.terms.items():
            q, r = divmod(coeff, c)
            if q:
                quotient.add_term(term, q)
            if r:
                rest.add_term(term, r)
        lo, hi = self._lin_bound(rest)
        if lo is not None and hi is not None and lo // c == hi // c:
            # The remainder part stays inside one block of c: the division is decided.
            if is_div:
                quotient.const += lo // c
                return quotient.to_expr() if quotient.in_range() else e
            rest.const -= (lo // c) * c
            return rest.to_expr() if rest.in_range() else e
        if not quotient.terms:
            return e
        inner = rest.to_expr()
        if is_div:
            out = quotient.plus(to_linear(E.FloorDiv(inner, e.b)))
            return out.to_expr() if out.in_range() else e
        return E.FloorMod(inner, e.b)

    def _minmax(self, e: E.BinaryOp) -> E.PrimExpr:
        a, b = e.a, e.b
        if a == b:
            return a
        d = self._diff_bound(a, b)
        if d is None:
            return e
        lo, hi = d
        is_min = isinstance(e, E.Min)
        if hi is not None and hi <= 0:
            return a if is_min else b
        if lo is not None and lo >= 0:
            return b if is_min else a
        return e

    def _compare(self, e: E.CmpOp) -> E.PrimExpr:
        t, a, b = type(e), e.a, e.b
        lanes = E.dtype_lanes(e.dtype)
        if t is E.And or t is E.Or:
            for x, y in ((a, b), (b, a)):
                cx = _const_val(x.value) if isinstance(x, E.Broadcast) else _const_val(x)
                if cx is not None:
                    if t is E.And:
                        return y if cx else _bool(False, lanes)
                    return _bool(True, lanes) if cx else y
            return e
        ca, cb = _const_val(a), _const_val(b)
        if ca is not None and cb is not None:
            return _bool(_CMP[t](ca, cb))
        if isinstance(a, E.Broadcast) and isinstance(b, E.Broadcast):
            inner = self._compare(t(a.value, b.value))
            return (
                E.Broadcast(inner, lanes)
                if not isinstance(inner, E.IntImm)
                else _bool(bool(inner.value), lanes)
            )
        d = self._diff_bound(a, b)
        if d is None:
            return e
        lo, hi = d
        decided: bool | None = None
        if t is E.LT:
            decided = (
                True if hi is not None and hi < 0 else False if lo is not None and lo >= 0 else None
            )
        elif t is E.LE:
            decided = (
                True if hi is not None and hi <= 0 else False if lo is not None and lo > 0 else None
            )
        elif t is E.GT:
            decided = (
                True if lo is not None and lo > 0 else False if hi is not None and hi <= 0 else None
            )
        elif t is E.GE:
            decided = (
                True if lo is not None and lo >= 0 else False if hi is not None and hi < 0 else None
            )
        elif t is E.EQ or t is E.NE:
            if lo is not None and lo == hi:
                decided = (lo == 0) == (t is E.EQ)
            elif (lo is not None and lo > 0) or (hi is not None and hi < 0):
                decided = t is E.NE
        return e if decided is None else _bool(decided)

    def _vector_binary(self, e: E.BinaryOp) -> E.PrimExpr | None:
        """Ramp/Broadcast algebra: ramp(b, s, n) + broadcast(x, n) -> ramp(b + x, s, n), ..."""
        t, a, b = type(e), e.a, e.b
        if not (isinstance(a, E.Ramp | E.Broadcast) and isinstance(b, E.Ramp | E.Broadcast)):
            return None
        n = a.lanes
        if isinstance(a, E.Broadcast) and isinstance(b, E.Broadcast):
            return E.Broadcast(self.expr(t(a.value, b.value)), n)
        if t in (E.Add, E.Sub):
            if isinstance(a, E.Ramp) and isinstance(b, E.Ramp):
                return self._ramp(self.expr(t(a.base, b.base)), self.expr(t(a.stride, b.stride)), n)
            if isinstance(a, E.Ramp):
                return self._ramp(self.expr(t(a.base, b.value)), a.stride, n)
            if t is E.Add:
                return self._ramp(self.expr(E.Add(a.value, b.base)), b.stride, n)
            return None
        if t is E.Mul:
            if isinstance(a, E.Ramp) and isinstance(b, E.Broadcast):
                return self._ramp(
                    self.expr(E.Mul(a.base, b.value)), self.expr(E.Mul(a.stride, b.value)), n
                )
            if isinstance(a, E.Broadcast) and isinstance(b, E.Ramp):
                return self._ramp(
                    self.expr(E.Mul(b.base, a.value)), self.expr(E.Mul(b.stride, a.value)), n
                )
            return None
        if t in (E.FloorDiv, E.FloorMod) and isinstance(a, E.Ramp) and isinstance(b, E.Broadcast):
            c, s = _const_val(b.value), _const_val(a.stride)
            if c is None or s is None or c <= 0 or s < 0 or not is_linear_dtype(a.base.dtype):
                return None
            # All lanes fall into one block of c: the quotient is one scalar.
            first, last = a.base, self.expr(E.Add(a.base, E.IntImm(s * (n - 1), a.base.dtype)))
            q0 = self.expr(E.FloorDiv(first, b.value))
            q1 = self.expr(E.FloorDiv(last, b.value))
            d = self._diff_bound(q1, q0)
            if d is not None and d == (0, 0):
                if t is E.FloorDiv:
                    return E.Broadcast(q0, n)
                return self._ramp(self.expr(E.FloorMod(first, b.value)), a.stride, n)
        return None

    def _ramp(self, base: E.PrimExpr, stride: E.PrimExpr, lanes: int) -> E.PrimExpr:
        if isinstance(stride, E.IntImm) and stride.value == 0:
            return E.Broadcast(base, lanes)
        return E.Ramp(base, stride, lanes)

    def visit_Cast(self, e: E.Cast) -> E.PrimExpr:
        v = self.expr(e.value)
        if v.dtype == e.dtype:
            return v
        cv = _const_val(v)
        if cv is not None and E.dtype_lanes(e.dtype) == 1:
            if E.is_float(e.dtype):
                return _make_const(float(cv), e.dtype)
            if isinstance(cv, float) and not math.isfinite(cv):
                return e if v is e.value else E.Cast(e.dtype, v)
            return _make_const(int(cv), e.dtype)  # int(float) truncates toward zero, as C
        if isinstance(v, E.Broadcast):
            return E.Broadcast(self.expr(E.Cast(E.dtype_element(e.dtype), v.value)), v.lanes)
        return e if v is e.value else E.Cast(e.dtype, v)

    def visit_Not(self, e: E.Not) -> E.PrimExpr:
        a = self.expr(e.a)
        if isinstance(a, E.IntImm):
            return _bool(not a.value)
        if isinstance(a, E.Not):
            return a.a
        return e if a is e.a else E.Not(a)

    def visit_Select(self, e: E.Select) -> E.PrimExpr:
        c = self.expr(e.condition)
        cc = _const_val(c.value) if isinstance(c, E.Broadcast) else _const_val(c)
        if cc is not None:
            return self.expr(e.true_value if cc else e.false_value)
        tv, fv = self.expr(e.true_value), self.expr(e.false_value)
        if tv == fv:
            return tv
        if c is e.condition and tv is e.true_value and fv is e.false_value:
            return e
        return E.Select(c, tv, fv)

    def visit_Ramp(self, e: E.Ramp) -> E.PrimExpr:
        base, stride = self.expr(e.base), self.expr(e.stride)
        if (
            base is e.base
            and stride is e.stride
            and not (isinstance(stride, E.IntImm) and stride.value == 0)
        ):
            return e
        return self._ramp(base, stride, e.lanes)

    def visit_Let(self, e: E.Let) -> E.PrimExpr:
        value = self.expr(e.value)
        if isinstance(value, E.IntImm | E.FloatImm | E.Var):
            return self.expr(substitute(e.body, {e.var: value}))
        old = self.bounds.get(e.var)
        if is_linear_dtype(value.dtype):
            self._set_bound(e.var, self.bound(value))
        body = self.expr(e.body)
        self._restore(e.var, old)
        if value is e.value and body is e.body:
            return e
        return E.Let(e.var, value, body)

    def _restore(self, var: E.Var, old: Interval | None) -> None:
        self._set_bound(var, old)

    # ------------------------------------------------------------------ statements
    def visit_For(self, s: For) -> Stmt:
        lo, ext = self.expr(s.min), self.expr(s.extent)
        if isinstance(ext, E.IntImm) and ext.value <= 0:
            return Evaluate(E.IntImm(0, "int32"))
        if isinstance(ext, E.IntImm) and ext.value == 1 and not s.annotations:
            return self.stmt(substitute(s.body, {s.loop_var: lo}))
        old = self.bounds.get(s.loop_var)
        self.bind(s.loop_var, (lo, ext))
        body = self.stmt(s.body)
        self._restore(s.loop_var, old)
        if lo is s.min and ext is s.extent and body is s.body:
            return s
        return dataclasses.replace(s, min=lo, extent=ext, body=body)

    def visit_IfThenElse(self, s: IfThenElse) -> Stmt:
        c = self.expr(s.condition)
        if isinstance(c, E.IntImm):
            if c.value:
                return self.stmt(s.then_case)
            return (
                self.stmt(s.else_case)
                if s.else_case is not None
                else Evaluate(E.IntImm(0, "int32"))
            )
        then_case = self.stmt(s.then_case)
        else_case = None if s.else_case is None else self.stmt(s.else_case)
        if c is s.condition and then_case is s.then_case and else_case is s.else_case:
            return s
        return IfThenElse(c, then_case, else_case)

    def visit_LetStmt(self, s: LetStmt) -> Stmt:
        value = self.expr(s.value)
        if isinstance(value, E.IntImm | E.FloatImm | E.Var):
            return self.stmt(substitute(s.body, {s.var: value}))
        old = self.bounds.get(s.var)
        if is_linear_dtype(value.dtype):
            self._set_bound(s.var, self.bound(value))
        body = self.stmt(s.body)
        self._restore(s.var, old)
        if value is s.value and body is s.body:
            return s
        return LetStmt(s.var, value, body)

    def visit_SeqStmt(self, s: SeqStmt) -> Stmt:
        items = [self.stmt(c) for c in s.seq]
        if all(a is b for a, b in zip(items, s.seq, strict=True)):
            return s
        return seq(*items)


def simplify(e: E.PrimExpr, bounds: dict[E.Var, Interval] | None = None) -> E.PrimExpr:
    """Simplify an expression; ``bounds`` maps variables to inclusive ``(lo, hi)`` ranges.

    >>> simplify((i * 8 + j) // 8, {j: (0, 7)})   # i
    """
    return Analyzer(bounds).simplify(E.convert(e))


def simplify_stmt(s: Stmt, bounds: dict[E.Var, Interval] | None = None) -> Stmt:
    """Simplify every expression of a statement, using the ranges of enclosing loops;
    drops guards that always hold, loops of extent 0, and binds extent-1 loops."""
    return Analyzer(bounds).stmt(s)


def simplify_func(func: PrimFunc) -> PrimFunc:
    """The ``simplify`` pass over a PrimFunc (symbolic shape variables are >= 0)."""
    body = simplify_stmt(func.body)
    return func if body is func.body else dataclasses.replace(func, body=body)
