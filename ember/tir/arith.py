"""Integer arithmetic facts for the simplifier: value ranges and linear forms.

``bound_of(e, bounds)`` gives an inclusive interval ``(lo, hi)`` (``None`` for an
unknown side) by interval arithmetic over known variable ranges. ``Linear`` is a
sum ``c0 + c1*t1 + c2*t2 + ...`` over non-linear *terms* (variables, floordivs,
loads, products of variables, ...), the canonical form that makes
``(i*4 + j) - i*4`` collapse to ``j``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ember.tir import expr as E

Interval = tuple[int | None, int | None]
UNKNOWN: Interval = (None, None)


@functools.cache  # pure in the dtype string; the simplifier asks for every rewrite
def dtype_range(dtype: str) -> Interval:
    """The values an integer dtype can hold; ``(None, None)`` for non-integers."""
    base = E.dtype_element(dtype)
    if base == "bool":
        return (0, 1)
    if not E.is_int(base):
        return UNKNOWN
    bits = int(base.lstrip("uint"))
    if base.startswith("uint"):
        return (0, 2**bits - 1)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def fits(value: int, dtype: str) -> bool:
    lo, hi = dtype_range(dtype)
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def wrap(value: int, dtype: str) -> int:
    """``value`` wrapped to the dtype's bit width (two's complement), as C hardware does."""
    lo, hi = dtype_range(dtype)
    if lo is None or hi is None:
        return value
    span = hi - lo + 1
    return (value - lo) % span + lo


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _clip(iv: Interval, dtype: str) -> Interval:
    """An interval that may leave the dtype's range is unknown: the value could wrap."""
    lo, hi = iv
    dlo, dhi = dtype_range(dtype)
    if dlo is None:
        return iv
    if lo is None or hi is None or lo < dlo or hi > dhi:
        return (dlo, dhi) if E.is_unsigned(dtype) or E.is_bool(dtype) else UNKNOWN
    return iv


def _mul_iv(a: Interval, b: Interval) -> Interval:
    if None in a or None in b:
        # Exact when one side is a non-negative constant and the other half-known.
        if b[0] is not None and b[0] == b[1]:
            c = b[0]
            if c == 0:
                return (0, 0)
            lo = None if a[0] is None else a[0] * c
            hi = None if a[1] is None else a[1] * c
            return (lo, hi) if c > 0 else (hi, lo)
        if a[0] is not None and a[0] == a[1]:
            return _mul_iv(b, a)
        return UNKNOWN
    prods = [x * y for x in a for y in b]  # type: ignore[operator]
    return (min(prods), max(prods))


def _floordiv_iv(a: Interval, c: int) -> Interval:
    lo = None if a[0] is None else a[0] // c
    hi = None if a[1] is None else a[1] // c
    return (lo, hi) if c > 0 else (hi, lo)


def bound_of(e: E.PrimExpr, bounds: dict[E.Var, Interval]) -> Interval:
    """Inclusive value range of an integer expression given variable ranges."""
    t = type(e)
    if t is E.IntImm:
        return (e.value, e.value)
    if isinstance(e, E.Var):
        if e in bounds:
            return bounds[e]
        if isinstance(e, E.SizeVar):
            return (0, dtype_range(e.dtype)[1])
        return dtype_range(e.dtype) if E.is_unsigned(e.dtype) else UNKNOWN
    if not (E.is_int(e.dtype) or E.is_bool(e.dtype)):
        return UNKNOWN
    dtype = e.dtype
    if t is E.Add:
        a, b = bound_of(e.a, bounds), bound_of(e.b, bounds)
        return _clip((_add(a[0], b[0]), _add(a[1], b[1])), dtype)
    if t is E.Sub:
        a, b = bound_of(e.a, bounds), bound_of(e.b, bounds)
        neg_b = (None if b[1] is None else -b[1], None if b[0] is None else -b[0])
        return _clip((_add(a[0], neg_b[0]), _add(a[1], neg_b[1])), dtype)
    if t is E.Mul:
        return _clip(_mul_iv(bound_of(e.a, bounds), bound_of(e.b, bounds)), dtype)
    if t is E.FloorDiv or (t is E.Div and _nonneg(e.a, bounds)):
        b = bound_of(e.b, bounds)
        if b[0] is not None and b[0] == b[1] and b[0] != 0:
            return _floordiv_iv(bound_of(e.a, bounds), b[0])
        if b[0] is not None and b[0] > 0:
            a = bound_of(e.a, bounds)
            if a[0] is not None and a[0] >= 0:
                return (0, a[1])
        return UNKNOWN
    if t is E.FloorMod:
        b = bound_of(e.b, bounds)
        if b[0] is not None and b[0] > 0:
            a = bound_of(e.a, bounds)
            if b[0] == b[1] and a[0] is not None and a[1] is not None:
                if a[0] // b[0] == a[1] // b[0]:
                    return (a[0] % b[0], a[1] % b[0])
            hi = None if b[1] is None else b[1] - 1
            if a[0] is not None and a[0] >= 0 and a[1] is not None:
                hi = a[1] if hi is None else min(hi, a[1])
            return (0, hi)
        return UNKNOWN
    if t is E.Min or t is E.Max:
        a, b = bound_of(e.a, bounds), bound_of(e.b, bounds)
        if t is E.Min:
            lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
            hi = b[1] if a[1] is None else a[1] if b[1] is None else min(a[1], b[1])
        else:
            lo = b[0] if a[0] is None else a[0] if b[0] is None else max(a[0], b[0])
            hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
        return (lo, hi)
    if t is E.Select:
        a, b = bound_of(e.true_value, bounds), bound_of(e.false_value, bounds)
        lo = None if a[0] is None or b[0] is None else min(a[0], b[0])
        hi = None if a[1] is None or b[1] is None else max(a[1], b[1])
        return (lo, hi)
    if t is E.Cast:
        inner = bound_of(e.value, bounds) if E.is_int(e.value.dtype) else UNKNOWN
        if (
            inner[0] is not None
            and inner[1] is not None
            and fits(inner[0], dtype)
            and fits(inner[1], dtype)
        ):
            return inner
        return dtype_range(dtype)
    if isinstance(e, E.CmpOp) or t is E.Not:
        return (0, 1)
    if t is E.Let:
        inner = dict(bounds)
        inner[e.var] = bound_of(e.value, bounds)
        return bound_of(e.body, inner)
    return (
        dtype_range(dtype)
        if E.is_unsigned(dtype) or E.dtype_element(dtype) in ("int8", "int16")
        else UNKNOWN
    )


def _nonneg(e: E.PrimExpr, bounds: dict[E.Var, Interval]) -> bool:
    lo = bound_of(e, bounds)[0]
    return lo is not None and lo >= 0


# ----------------------------------------------------------------------------- linear forms


@dataclass
class Linear:
    """``const + sum(coeff * term)``; terms keyed structurally, in order of first appearance."""

    dtype: str
    const: int = 0
    terms: dict[E.PrimExpr, int] = field(default_factory=dict)

    def add_term(self, term: E.PrimExpr, coeff: int) -> None:
        c = self.terms.get(term, 0) + coeff
        if c == 0:
            self.terms.pop(term, None)
        else:
            self.terms[term] = c

    def scaled(self, k: int) -> Linear:
        return Linear(
            self.dtype, self.const * k, {t: c * k for t, c in self.terms.items() if c * k}
        )

    def plus(self, other: Linear, sign: int = 1) -> Linear:
        out = Linear(self.dtype, self.const + sign * other.const, dict(self.terms))
        for t, c in other.terms.items():
            out.add_term(t, sign * c)
        return out

    def in_range(self) -> bool:
        """False when a coefficient no longer fits the dtype (the rewrite could change wrapping)."""
        return fits(self.const, self.dtype) and all(
            fits(c, self.dtype) for c in self.terms.values()
        )

    def bound(self, bounds: dict[E.Var, Interval]) -> Interval:
        lo: int | None = self.const
        hi: int | None = self.const
        for t, c in self.terms.items():
            tlo, thi = _mul_iv(bound_of(t, bounds), (c, c))
            lo, hi = _add(lo, tlo), _add(hi, thi)
        return _clip((lo, hi), self.dtype)

    def to_expr(self) -> E.PrimExpr:
        """Rebuild: positive terms first (``i*4 + j - k*2 + 3``)."""
        items = list(self.terms.items())
        items.sort(key=lambda tc: tc[1] < 0)  # stable: keeps first-appearance order otherwise
        out: E.PrimExpr | None = None
        for term, c in items:
            if out is None:
                out = term if c == 1 else E.Mul(term, E.IntImm(c, self.dtype))
            elif c > 0:
                out = E.Add(out, term if c == 1 else E.Mul(term, E.IntImm(c, self.dtype)))
            else:
                out = E.Sub(out, term if c == -1 else E.Mul(term, E.IntImm(-c, self.dtype)))
        if out is None:
            return E.IntImm(self.const, self.dtype)
        if self.const > 0:
            out = E.Add(out, E.IntImm(self.const, self.dtype))
        elif self.const < 0:
            out = E.Sub(out, E.IntImm(-self.const, self.dtype))
        return out


@functools.cache
def is_linear_dtype(dtype: str) -> bool:
    return E.is_int(dtype) and E.dtype_lanes(dtype) == 1


def to_linear(e: E.PrimExpr) -> Linear:
    """Linear form of an (already simplified) scalar integer expression."""
    t = type(e)
    if t is E.IntImm:
        return Linear(e.dtype, e.value)
    if t is E.Add or t is E.Sub:
        a, b = to_linear(e.a), to_linear(e.b)
        return a.plus(b, 1 if t is E.Add else -1)
    if t is E.Mul:
        if isinstance(e.b, E.IntImm):
            return to_linear(e.a).scaled(e.b.value)
        if isinstance(e.a, E.IntImm):
            return to_linear(e.b).scaled(e.a.value)
    out = Linear(e.dtype)
    out.add_term(e, 1)
    return out
