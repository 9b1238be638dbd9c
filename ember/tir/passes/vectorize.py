"""vectorize_loops: a VECTORIZED loop of constant extent becomes vector (Ramp/Broadcast) code.

Needs: flattened (or N-D) loop IR; UNROLLED loops already unrolled. Guarantees:
every VECTORIZED loop is gone: either its body now runs once on ``lanes``-wide
vectors, or -- when that could change the result -- it is a SERIAL loop again,
and the reason is recorded in ``func.attrs["vectorize_fallback"]`` as
``[(loop name, reason), ...]``.

    for j in vectorized(0, 8):            B[ramp(i*8, 1, 8)] =
      B[i*8 + j] = A[i*8 + j] + 1f   ->      A[ramp(i*8, 1, 8)] + broadcast(1f, 8)

As in TVM, the *body* of the loop is vectorized, loops inside it included: an
inner serial loop keeps running, on vectors (a reduction over ``k`` inside the
vectorized ``j`` accumulates a vector of ``C``)::

    for j in vectorized(0, 8):              for k in range(0, 64):
      for k in range(0, 64):          ->      C[ramp(i*8, 1, 8)] = C[ramp(i*8, 1, 8)]
        C[i*8 + j] = C[i*8 + j]                 + broadcast(A[i*64 + k], 8) * B[ramp(k*8, 1, 8)]
                     + A[i*64 + k] * B[k*8 + j]

Lane-invariant values are broadcast, lane-dependent indices become ramps (or
gathers), selects whose condition depends on the lane blend lane by lane (the
loads in their branches are clamped in bounds by lowering). A guard of the form
``if <monotone in the lane>`` (the tail of a split that does not divide) becomes
``if <holds on the first and the last lane> <vector code> else <lane by lane>``.
Inside an inner loop, a statement that lanes cannot run together -- a guard that
is not monotone in the lane, an inner loop whose bounds depend on it, an assert
on it -- is *scalarized*: it runs once per lane in a serial loop over the lanes,
the rest stays vector code. A scratch buffer allocated inside the loop gets one
copy per lane (TVM's rule).

Running the lanes together reorders the loop's iterations, which is valid when
no lane touches a location another lane writes; this is checked over all inner
iterations (the loop stays serial otherwise). Correctness comes first. The body
is *not* vectorized when:
  * the extent is not a constant;
  * a loop without loops inside it has a guard, an assert or a statement the
    lanes cannot run together (scalarizing a part of such a loop would only cut
    the serial loop in pieces), except the monotone tail guard above;
  * a store's location does not depend on the loop variable (a value carried
    across lanes, e.g. a reduction into one element), or its lanes are not a
    ramp with a non-zero stride (lanes could collide);
  * a stored buffer is read or written where another lane may write it;
  * a loop inside is parallel, bound to a thread, or already vector code;
  * the body calls an extern function on the lane (or for its effect), or
    allocates in a loop without loops inside.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

from ember.tir import expr as E
from ember.tir.arith import Interval, Linear, bound_of, is_linear_dtype, to_linear
from ember.tir.buffer import Buffer
from ember.tir.evaluator import INTRINSICS
from ember.tir.functor import Mutator, children, post_order, substitute, uses_var
from ember.tir.passes.flatten_storage import is_flat
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
    """Rewrites a loop body with ``var`` replaced by ``ramp(min, 1, lanes)``.

    ``nested`` (the loop has loops inside) allows scalarizing a statement; the
    serial loops over lanes it creates are recorded in ``lane_vars`` for the
    lane-independence check. ``top`` is the loop's body: scalarizing all of it is
    the serial loop, reported as a fallback instead.
    """

    def __init__(self, var: E.Var, ramp: E.Ramp, nested: bool, top: Stmt) -> None:
        self.var = var
        self.ramp = ramp
        self.lanes = ramp.lanes
        self.nested = nested
        self.top = top
        self.lane_vars: list[E.Var] = []

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
        n = max(_lanes(p) for p in (cond, *values))
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
        if not uses_var(s.condition, self.var):
            return self.generic(s)
        if self.nested and s is not self.top and _monotone_guard(s, self.var):
            # Lanes that all pass run as vectors; a partial vector runs lane by lane.
            vector = self.stmt(_assume_guard(s))
            return IfThenElse(_all_lanes(s.condition, self.var, self.ramp), vector, self._scalar(s))
        return self._scalarize(s, "a guard depends on the loop variable")

    def visit_For(self, s: For) -> Stmt:
        if s.kind not in (ForKind.SERIAL, ForKind.UNROLLED):
            raise CannotVectorize(
                f"the inner loop {s.loop_var.name!r} is {s.kind.value}, which vector lanes "
                "cannot run"
            )
        if uses_var(s.min, self.var) or uses_var(s.extent, self.var):
            return self._scalarize(
                s, f"the bounds of inner loop {s.loop_var.name!r} depend on the loop variable"
            )
        return self.generic(s)

    def visit_AssertStmt(self, s: AssertStmt) -> Stmt:
        if uses_var(s.condition, self.var):
            return self._scalarize(s, "an assert depends on the loop variable")
        return self.generic(s)

    def visit_LetStmt(self, s: LetStmt) -> Stmt:
        return self.stmt(substitute(s.body, {s.var: s.value}))

    def visit_Allocate(self, s: Allocate) -> Stmt:
        if not self.nested or not is_flat(s.buffer):
            raise CannotVectorize(f"the body allocates {s.buffer.name!r}")
        # Each iteration had its own scratch: give every lane a copy, element k of
        # lane l at k*lanes + l, so a lane-invariant access becomes one contiguous vector.
        old = s.buffer
        wide = dataclasses.replace(old, shape=(simplify(old.shape[0] * self.lanes),))
        lane = self.var - self.ramp.base
        body = _PerLaneScratch(old.data, wide, lane, self.lanes).stmt(s.body)
        return Allocate(wide, self.stmt(body))

    def visit_Evaluate(self, s: Evaluate) -> Stmt:
        if isinstance(s.value, E.IntImm):
            return s
        raise CannotVectorize("the body evaluates a call for its effect")

    # scalarization
    def _scalarize(self, s: Stmt, reason: str) -> Stmt:
        if not self.nested or s is self.top:
            raise CannotVectorize(reason)
        return self._scalar(s)

    def _scalar(self, s: Stmt) -> Stmt:
        """``s`` once per lane, in a serial loop over the lanes (TVM's Scalarize)."""
        if _calls_for_effect(s):
            # Its memory effects are unknown: lanes running in another order might clash.
            raise CannotVectorize("the body evaluates a call for its effect")
        lane = E.Var(f"{self.var.name}.s", self.var.dtype)
        self.lane_vars.append(lane)
        body = substitute(s, {self.var: self.ramp.base + lane})
        zero, lanes = E.IntImm(0, lane.dtype), E.IntImm(self.lanes, lane.dtype)
        return For(lane, zero, lanes, ForKind.SERIAL, body)


def _calls_for_effect(s: Stmt) -> bool:
    found = False

    def visit(n: object) -> None:
        nonlocal found
        found = found or (isinstance(n, Evaluate) and not isinstance(n.value, E.IntImm))

    post_order(s, visit)
    return found


class _PerLaneScratch(Mutator):
    """Accesses of the scratch buffer ``data`` go to ``wide``, at ``index*lanes + lane``."""

    def __init__(self, data: E.Var, wide: Buffer, lane: E.PrimExpr, lanes: int) -> None:
        self.data = data
        self.wide = wide
        self.lane = lane
        self.lanes = lanes

    def _index(self, index: E.PrimExpr) -> E.PrimExpr:
        return index * self.lanes + self.lane

    def visit_BufferLoad(self, e: E.BufferLoad) -> E.PrimExpr:
        e = self.generic(e)
        if e.buffer.data is not self.data:
            return e
        return E.BufferLoad(self.wide, (self._index(e.indices[0]),))

    def visit_BufferStore(self, s: BufferStore) -> Stmt:
        s = self.generic(s)
        if s.buffer.data is not self.data:
            return s
        return BufferStore(self.wide, s.value, (self._index(s.indices[0]),))

    def visit_Call(self, e: E.Call) -> E.PrimExpr:
        if e.name == "tir.address_of" and uses_var(e, self.data):
            raise CannotVectorize(f"a pointer into scratch buffer {self.wide.name!r} escapes")
        return self.generic(e)


# ----------------------------------------------------------------------------- lane independence


@dataclass
class _Access:
    """One load or store under the vectorized body, with the loops around it."""

    buffer: Buffer
    is_store: bool
    indices: tuple[E.PrimExpr, ...]
    lane_var: E.Var | None  # the serial loop over lanes around it (a scalarized statement)
    ranges: dict[E.Var, Interval]  # the inner loops around it


def _accesses(body: Stmt, lane_vars: list[E.Var], lanes: int) -> list[_Access]:
    """Loads and stores under ``body``, except those of scratch buffers allocated inside a
    serial loop over the lanes (each lane has its own)."""
    out: list[_Access] = []
    lane_set = set(lane_vars)
    private: set[E.Var] = set()

    def walk(node: object, lane: E.Var | None, ranges: dict[E.Var, Interval]) -> None:
        if isinstance(node, Allocate) and lane is not None:
            private.add(node.buffer.data)
        if isinstance(node, For):
            inner = dict(ranges)
            if node.loop_var in lane_set:
                lane = node.loop_var
                inner[node.loop_var] = (0, lanes - 1)
            else:
                lo = bound_of(node.min, ranges)[0]
                hi = bound_of(node.min + node.extent, ranges)[1]
                inner[node.loop_var] = (lo, None if hi is None else hi - 1)
            walk(node.body, lane, inner)
            return
        if isinstance(node, BufferStore | E.BufferLoad):
            is_store = isinstance(node, BufferStore)
            out.append(_Access(node.buffer, is_store, node.indices, lane, ranges))
        for c in children(node):
            walk(c, lane, ranges)

    walk(body, None, {})
    return [a for a in out if a.buffer.data not in private]


def _lane_form(index: E.PrimExpr, access: _Access) -> tuple[E.PrimExpr, int] | None:
    """``(base, stride)`` with ``index`` = ``base + stride * lane``, or None (unknown)."""
    if _lanes(index) > 1:
        if isinstance(index, E.Ramp) and isinstance(index.stride, E.IntImm):
            return index.base, index.stride.value
        if isinstance(index, E.Broadcast):
            return index.value, 0
        return None
    lane = access.lane_var
    if lane is None or not uses_var(index, lane):
        return index, 0
    if not is_linear_dtype(index.dtype):
        return None
    lin = to_linear(simplify(index))
    stride = lin.terms.pop(lane, 0)
    if any(uses_var(t, lane) for t in lin.terms):
        return None
    return lin.to_expr(), stride


def _never_other_lane(diff: Linear, ranges: dict[E.Var, Interval], stride: int, lanes: int) -> bool:
    """True when ``diff`` (base of one access minus base of the other) never equals
    ``d * stride`` for ``0 < |d| < lanes``: the two accesses cannot meet on two lanes."""
    gcd = 0
    lo: int | None = diff.const
    hi: int | None = diff.const
    for term, c in diff.terms.items():
        gcd = math.gcd(gcd, abs(c))
        tlo, thi = bound_of(term, ranges)
        if c < 0:
            tlo, thi = (None if thi is None else -thi), (None if tlo is None else -tlo)
            c = -c
        lo = None if lo is None or tlo is None else lo + c * tlo
        hi = None if hi is None or thi is None else hi + c * thi
    for d in range(1, lanes):
        for target in (d * stride, -d * stride):
            if lo is not None and target < lo or hi is not None and target > hi:
                continue
            if gcd == 0 and target != diff.const:
                continue
            if gcd and (target - diff.const) % gcd:
                continue
            return False
    return True


def _disjoint_lanes(p: _Access, q: _Access, lanes: int) -> bool:
    """True when no lane of access ``p`` meets a *different* lane of access ``q``, in any
    iterations of the inner loops: some dimension keeps their lanes apart."""
    if p.indices == q.indices and p.lane_var is q.lane_var and not p.ranges and not q.ranges:
        # The same location outside inner loops (a read-modify-write): lanes stay apart when
        # the lanes move at all. The common case, decided without the arithmetic below.
        return any((f := _lane_form(i, p)) is not None and f[1] != 0 for i in p.indices)
    # q's inner loops run independently of p's: rename them.
    fresh = {v: E.Var(v.name + "'", v.dtype) for v in q.ranges}
    ranges = {**p.ranges, **{fresh[v]: r for v, r in q.ranges.items()}}
    for a, b in zip(p.indices, q.indices, strict=True):
        fa, fb = _lane_form(a, p), _lane_form(b, q)
        if fa is None or fb is None or fa[1] != fb[1] or fa[1] == 0:
            continue
        base_a, base_b = fa[0], substitute(fb[0], fresh)
        if not (is_linear_dtype(base_a.dtype) and is_linear_dtype(base_b.dtype)):
            continue
        diff = to_linear(simplify(base_a)).plus(to_linear(simplify(base_b)), -1)
        if _never_other_lane(diff, ranges, fa[1], lanes):
            return True
    return False


def _check_lane_independence(body: Stmt, lane_vars: list[E.Var], lanes: int) -> None:
    """Raise unless no lane touches a location another lane writes (over all inner loops)."""
    accesses = _accesses(body, lane_vars, lanes)
    stores = [a for a in accesses if a.is_store]
    written: dict[E.Var, list[_Access]] = {}
    for st in stores:
        name = st.buffer.name
        forms = [_lane_form(i, st) for i in st.indices]
        if not any(f is not None and f[1] != 0 for f in forms):
            if any(_lanes(i) > 1 and not isinstance(i, E.Ramp) for i in st.indices):
                raise CannotVectorize(f"the store to {name!r} is a scatter, not a ramp")
            if any(isinstance(i, E.Ramp) for i in st.indices):
                raise CannotVectorize(f"the lanes of the store to {name!r} may collide")
            raise CannotVectorize(
                f"the store to {name!r} writes one location for all lanes "
                "(a value carried across iterations)"
            )
        written.setdefault(st.buffer.data, []).append(st)
    for data, writes in written.items():
        for q in (a for a in accesses if a.buffer.data is data):
            for p in writes:
                if not _disjoint_lanes(p, q, lanes):
                    what = "written" if q.is_store else "read"
                    raise CannotVectorize(
                        f"{q.buffer.name!r} is {what} at a location another lane may write"
                    )


# ----------------------------------------------------------------------------- guards


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


def _monotone_guard(s: Stmt, var: E.Var) -> bool:
    """Is ``s`` an ``if`` without ``else`` whose condition depends on ``var`` monotonically?
    Then it holds on every lane when it holds on the first and the last."""
    return (
        isinstance(s, IfThenElse)
        and s.else_case is None
        and uses_var(s.condition, var)
        and _monotone_in(s.condition, var)
    )


def _all_lanes(cond: E.PrimExpr, var: E.Var, ramp: E.Ramp) -> E.PrimExpr:
    first = substitute(cond, {var: ramp.base})
    last = substitute(cond, {var: ramp.base + (ramp.lanes - 1)})
    return simplify(E.And(first, last))


def _assume_guard(guard: IfThenElse) -> Stmt:
    """The guard's body, where clamps like ``min(j.outer*8 + j.inner, 13)`` (lowering's
    bounds clamp of a select branch) that the guard proves are no-ops are dropped: that
    keeps the lanes a ramp (one vector load)."""
    return _AssumeBelow(_upper_facts(guard.condition)).stmt(guard.then_case)


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


# ----------------------------------------------------------------------------- the pass


def _has_loop(s: Stmt) -> bool:
    found = False

    def visit(n: object) -> None:
        nonlocal found
        found = found or isinstance(n, For)

    post_order(s, visit)
    return found


def _vectorize_body(loop: For, body: Stmt) -> Stmt:
    """``body`` of ``loop`` on vectors: rewritten, simplified and checked."""
    lanes = loop.extent.value  # type: ignore[union-attr]
    ramp = E.Ramp(loop.min, E.IntImm(1, loop.min.dtype), lanes)
    v = _Vectorizer(loop.loop_var, ramp, nested=_has_loop(body), top=body)
    out = v.stmt(body)
    if v.lane_vars and not _has_vector(out):
        # Everything was scalarized: the loops would only be interchanged.
        raise CannotVectorize("no statement of the body can run on vectors")
    # Fold ramp arithmetic (ramp(i*8,1,8)*broadcast(2) -> ramp(i*16,2,8)) before checking.
    out = simplify_stmt(out)
    _check_lane_independence(out, v.lane_vars, lanes)
    return out


def _has_vector(s: Stmt) -> bool:
    found = False

    def visit(n: object) -> None:
        nonlocal found
        found = found or (isinstance(n, E.PrimExpr) and _lanes(n) > 1)

    post_order(s, visit)
    return found


def vectorize_loop(loop: For) -> Stmt:
    """Vectorize one VECTORIZED loop; raises :class:`CannotVectorize` with the reason."""
    if not isinstance(loop.extent, E.IntImm):
        raise CannotVectorize("the extent is not a constant")
    lanes = loop.extent.value
    if lanes == 1:
        return substitute(loop.body, {loop.loop_var: loop.min})
    guard = loop.body
    if isinstance(guard, IfThenElse) and _monotone_guard(guard, loop.loop_var):
        # The tail of a split that does not divide: full-width lanes run as vectors, the
        # rest stays the guarded serial loop.
        ramp = E.Ramp(loop.min, E.IntImm(1, loop.min.dtype), lanes)
        vector = _vectorize_body(loop, _assume_guard(guard))
        serial = dataclasses.replace(loop, kind=ForKind.SERIAL)
        return IfThenElse(_all_lanes(guard.condition, loop.loop_var, ramp), vector, serial)
    return _vectorize_body(loop, loop.body)


class _VectorizeLoops(Mutator):
    def __init__(self) -> None:
        self.fallbacks: list[tuple[str, str]] = []

    def visit_For(self, s: For) -> Stmt:
        s2 = self.generic(s)
        if s2.kind is not ForKind.VECTORIZED:
            return s2
        try:
            return vectorize_loop(s2)
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
