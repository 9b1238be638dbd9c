"""vectorize_loops: a VECTORIZED loop of constant extent becomes vector (Ramp/Broadcast) code.

Needs: flattened (or N-D) loop IR. Guarantees: every VECTORIZED loop is gone:
either its body now runs once on ``lanes``-wide vectors, or -- when that could
change the result -- it is a SERIAL loop again, and the reason is recorded in
``func.attrs["vectorize_fallback"]`` as ``[(loop name, reason), ...]``.

    for j in vectorized(0, 8):            B[ramp(i*8, 1, 8)] =
      B[i*8 + j] = A[i*8 + j] + 1f   ->      A[ramp(i*8, 1, 8)] + broadcast(1f, 8)

Correctness comes first. The body is *not* vectorized when:
  * the extent is not a constant;
  * a guard, an inner loop bound or an assert depends on the loop variable
    (lanes would need different control flow) -- except the tail guard of a
    split that does not divide (``if j.outer*8 + j.inner < 100``): a condition
    monotone in the loop variable holds on every lane when it holds on the
    first and the last, so the loop becomes
    ``if (guard at both ends) <vector body> else <serial loop with the guard>``;
  * a store's location does not depend on the loop variable (a value carried
    across lanes, e.g. a reduction into one element), or its lanes are not a
    ramp with a non-zero stride (lanes could collide);
  * a stored buffer is also read at a different location in the body (a lane
    could read what another lane writes);
  * the body allocates, calls an extern function, or is already vector code.
"""

from __future__ import annotations

import dataclasses
import logging

from ember.tir import expr as E
from ember.tir.arith import Linear, is_linear_dtype, to_linear
from ember.tir.evaluator import INTRINSICS
from ember.tir.functor import Mutator, stores_and_loads, substitute, uses_var
from ember.tir.simplify import simplify, simplify_stmt
from ember.tir.stmt import (
    Allocate,
    AssertStmt,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    PrimFunc,
    Stmt,
)

_log = logging.getLogger("ember.tir")


class CannotVectorize(Exception):
    """Internal signal: the body must stay a serial loop (the message says why)."""


def _lanes(e: E.PrimExpr) -> int:
    return E.dtype_lanes(e.dtype)


def _broadcast(e: E.PrimExpr, lanes: int) -> E.PrimExpr:
    if _lanes(e) == lanes:
        return e
    if _lanes(e) != 1:
        raise CannotVectorize(f"lane count mismatch ({_lanes(e)} vs {lanes})")
    return E.Broadcast(e, lanes)


class _Vectorizer(Mutator):
    """Rewrites a loop body with ``var`` replaced by ``ramp(min, 1, lanes)``."""

    def __init__(self, var: E.Var, ramp: E.Ramp) -> None:
        self.var = var
        self.ramp = ramp
        self.lanes = ramp.lanes

    # expressions
    def visit_Var(self, e: E.Var) -> E.PrimExpr:
        return self.ramp if e is self.var else e

    visit_SizeVar = visit_Var

    def visit_Ramp(self, e: E.Ramp) -> E.PrimExpr:
        raise CannotVectorize("the body already holds vector code")

    visit_Broadcast = visit_Ramp

    def generic(self, node):  # type: ignore[no-untyped-def]
        node = super().generic(node)
        if isinstance(node, E.BinaryOp | E.CmpOp):
            n = max(_lanes(node.a), _lanes(node.b))
            if n > 1:
                return type(node)(_broadcast(node.a, n), _broadcast(node.b, n))
        return node

    def visit_Select(self, e: E.Select) -> E.PrimExpr:
        cond, *values = (self.expr(x) for x in (e.condition, e.true_value, e.false_value))
        n = max(_lanes(p) for p in values)
        if _lanes(cond) == 1:
            # A condition the same on every lane stays scalar: the C code picks one whole
            # vector (padding rows, concat inputs) instead of blending lane by lane.
            return E.Select(cond, *(_broadcast(p, n) for p in values))
        return E.Select(_broadcast(cond, n), *(_broadcast(p, n) for p in values))

    def visit_Cast(self, e: E.Cast) -> E.PrimExpr:
        v = self.expr(e.value)
        return E.Cast(E.with_lanes(e.dtype, _lanes(v)), v)

    def visit_Call(self, e: E.Call) -> E.PrimExpr:
        if e.name == "tir.address_of":
            if uses_var(e, self.var):
                raise CannotVectorize("an address_of depends on the loop variable")
            return e
        args = [self.expr(a) for a in e.args]
        n = max((_lanes(a) for a in args), default=1)
        if n == 1:
            return e
        if e.name not in INTRINSICS:  # math intrinsics apply lane by lane; externs do not
            raise CannotVectorize(f"the extern call {e.name!r} depends on the loop variable")
        return E.Call(E.with_lanes(e.dtype, n), e.name, tuple(_broadcast(a, n) for a in args))

    def visit_Let(self, e: E.Let) -> E.PrimExpr:
        return self.expr(substitute(e.body, {e.var: e.value}))

    def visit_BufferLoad(self, e: E.BufferLoad) -> E.PrimExpr:
        indices = tuple(self.expr(i) for i in e.indices)
        n = max((_lanes(i) for i in indices), default=1)
        if n > 1:
            indices = tuple(_broadcast(i, n) for i in indices)
        return E.BufferLoad(e.buffer, indices)

    # statements
    def visit_BufferStore(self, s: BufferStore) -> Stmt:
        indices = tuple(self.expr(i) for i in s.indices)
        value = self.expr(s.value)
        n = max((_lanes(i) for i in indices), default=1)
        if n == 1:
            raise CannotVectorize(
                f"the store to {s.buffer.name!r} writes one location for all lanes "
                "(a value carried across iterations)"
            )
        indices = tuple(_broadcast(i, n) for i in indices)
        return BufferStore(s.buffer, _broadcast(value, n), indices)

    def visit_IfThenElse(self, s: IfThenElse) -> Stmt:
        if uses_var(s.condition, self.var):
            raise CannotVectorize("a guard depends on the loop variable")
        return self.generic(s)

    def visit_For(self, s: For) -> Stmt:
        if uses_var(s.min, self.var) or uses_var(s.extent, self.var):
            raise CannotVectorize(
                f"the bounds of inner loop {s.loop_var.name!r} depend on the loop variable"
            )
        return self.generic(s)

    def visit_AssertStmt(self, s: AssertStmt) -> Stmt:
        if uses_var(s.condition, self.var):
            raise CannotVectorize("an assert depends on the loop variable")
        return self.generic(s)

    def visit_LetStmt(self, s: LetStmt) -> Stmt:
        return self.stmt(substitute(s.body, {s.var: s.value}))

    def visit_Allocate(self, s: Allocate) -> Stmt:
        raise CannotVectorize(f"the body allocates {s.buffer.name!r}")

    def visit_Evaluate(self, s: Evaluate) -> Stmt:
        if isinstance(s.value, E.IntImm):
            return s
        raise CannotVectorize("the body evaluates a call for its effect")


def _check_lane_independence(body: Stmt) -> None:
    """Raise unless lanes touch disjoint locations of every buffer the body writes."""
    stores, loads = stores_and_loads(body)
    written: dict[E.Var, tuple[E.PrimExpr, ...]] = {}
    for st in stores:
        for idx in st.indices:
            if isinstance(idx, E.Ramp) and not (
                isinstance(idx.stride, E.IntImm) and idx.stride.value != 0
            ):
                raise CannotVectorize(f"the lanes of the store to {st.buffer.name!r} may collide")
        if not any(isinstance(i, E.Ramp) for i in st.indices):
            raise CannotVectorize(f"the store to {st.buffer.name!r} is a scatter, not a ramp")
        prev = written.setdefault(st.buffer.data, st.indices)
        if prev != st.indices:
            raise CannotVectorize(f"{st.buffer.name!r} is written at two different locations")
    for ld in loads:
        if ld.buffer.data in written and ld.indices != written[ld.buffer.data]:
            raise CannotVectorize(
                f"{ld.buffer.name!r} is read at a location another lane may write"
            )


def vectorize_loop(loop: For) -> Stmt:
    """Vectorize one VECTORIZED loop; raises :class:`CannotVectorize` with the reason."""
    if not isinstance(loop.extent, E.IntImm):
        raise CannotVectorize("the extent is not a constant")
    lanes = loop.extent.value
    if lanes == 1:
        return substitute(loop.body, {loop.loop_var: loop.min})
    ramp = E.Ramp(loop.min, E.IntImm(1, loop.min.dtype), lanes)
    body = _Vectorizer(loop.loop_var, ramp).stmt(loop.body)
    # Fold ramp arithmetic (ramp(i*8,1,8)*broadcast(2) -> ramp(i*16,2,8)) before checking.
    body = simplify_stmt(body)
    _check_lane_independence(body)
    return body


def _monotone_in(cond: E.PrimExpr, var: E.Var) -> bool:
    """True when ``cond`` is a conjunction of comparisons whose sides differ linearly in ``var``."""
    if isinstance(cond, E.And):
        return _monotone_in(cond.a, var) and _monotone_in(cond.b, var)
    if not isinstance(cond, E.LT | E.LE | E.GT | E.GE):
        return False
    if not is_linear_dtype(cond.a.dtype):
        return False
    diff = to_linear(simplify(cond.a - cond.b))
    return all(term is var or not uses_var(term, var) for term in diff.terms)


def _vectorize_guarded(loop: For) -> Stmt:
    """Full-width lanes under a monotone guard run as vectors; the rest stays a guarded loop."""
    guard = loop.body
    if not (isinstance(guard, IfThenElse) and guard.else_case is None):
        raise CannotVectorize("a guard depends on the loop variable")
    if not _monotone_in(guard.condition, loop.loop_var):
        raise CannotVectorize("a guard depends on the loop variable")
    lanes = loop.extent.value  # type: ignore[union-attr]
    first = substitute(guard.condition, {loop.loop_var: loop.min})
    last = substitute(guard.condition, {loop.loop_var: loop.min + (lanes - 1)})
    # Inside the guard, clamps like min(j.outer*8 + j.inner, 13) (lowering's bounds clamp of
    # a select branch) are no-ops; dropping them keeps the lanes a ramp (one vector load).
    body = _AssumeBelow(_upper_facts(guard.condition)).stmt(guard.then_case)
    vector = vectorize_loop(dataclasses.replace(loop, body=body))
    serial = dataclasses.replace(loop, kind=ForKind.SERIAL)
    return IfThenElse(simplify(E.And(first, last)), vector, serial)


def _upper_facts(cond: E.PrimExpr) -> list[Linear]:
    """Linear forms ``d`` with ``d <= 0`` wherever ``cond`` (a conjunction) holds."""
    if isinstance(cond, E.And):
        return _upper_facts(cond.a) + _upper_facts(cond.b)
    if not isinstance(cond, E.LT | E.LE | E.GT | E.GE) or not is_linear_dtype(cond.a.dtype):
        return []
    a, b = (cond.a, cond.b) if isinstance(cond, E.LT | E.LE) else (cond.b, cond.a)
    d = to_linear(simplify(a)).plus(to_linear(simplify(b)), -1)  # a - b (<, <=) 0
    if isinstance(cond, E.LT | E.GT):
        d.const += 1  # integers: a < b  <=>  a - b + 1 <= 0
    return [d]


class _AssumeBelow(Mutator):
    """Rewrites ``min(x, y)`` to ``x`` (and ``max(y, x)`` to ``x``) where a fact ``d <= 0``
    proves ``x - y <= d + k`` for a constant ``k <= 0`` (same variable terms)."""

    def __init__(self, facts: list[Linear]) -> None:
        self.facts = facts

    def _below(self, x: E.PrimExpr, y: E.PrimExpr) -> bool:
        if not is_linear_dtype(x.dtype):
            return False
        diff = to_linear(simplify(x)).plus(to_linear(simplify(y)), -1)
        for d in self.facts:
            rest = diff.plus(d, -1)
            if not rest.terms and rest.const <= 0:
                return True
        return False

    def generic(self, node):  # type: ignore[no-untyped-def]
        node = super().generic(node)
        if isinstance(node, E.Min) and self._below(node.a, node.b):
            return node.a
        if isinstance(node, E.Max) and self._below(node.b, node.a):
            return node.a
        return node


class _VectorizeLoops(Mutator):
    def __init__(self) -> None:
        self.fallbacks: list[tuple[str, str]] = []

    def visit_For(self, s: For) -> Stmt:
        s2 = self.generic(s)
        if s2.kind is not ForKind.VECTORIZED:
            return s2
        try:
            try:
                return vectorize_loop(s2)
            except CannotVectorize as first_reason:
                if "guard" not in str(first_reason):
                    raise
                return _vectorize_guarded(s2)
        except CannotVectorize as reason:
            self.fallbacks.append((s2.loop_var.name, str(reason)))
            _log.info("loop %s stays serial: %s", s2.loop_var.name, reason)
            return dataclasses.replace(s2, kind=ForKind.SERIAL)


def vectorize_loops(func: PrimFunc) -> PrimFunc:
    """Vectorize every VECTORIZED loop of ``func`` (see the module docstring).

    >>> f2 = vectorize_loops(f); f2.attrs.get("vectorize_fallback", [])
    """
    m = _VectorizeLoops()
    body = m.stmt(func.body)
    if body is func.body:
        return func
    attrs = dict(func.attrs)
    if m.fallbacks:
        attrs["vectorize_fallback"] = list(attrs.get("vectorize_fallback", [])) + m.fallbacks
    return dataclasses.replace(func, body=body, attrs=attrs)
