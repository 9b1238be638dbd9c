"""partition_loops: peel the last iteration of a loop when that removes guards from the rest.

Needs: simplifiable guards (``IfThenElse``) such as the tail guard of a split whose
factor does not divide the extent. Guarantees: same results; a loop of constant
extent ``n`` whose body has fewer guards once the loop variable stops before its
last value becomes a loop over the first ``n - 1`` iterations (guards that
always hold there removed) followed by the last iteration on its own::

    for j.outer in range(0, 6):                for j.outer in range(0, 5):
      if j.outer*12 + 11 < 64:                   C[ramp(j.outer*12, 1, 12)] = ...
        C[ramp(j.outer*12, 1, 12)] = ...   ->  for j.inner in range(0, 12):
      else: <serial tail loop>                   if j.inner < 4: C[60 + j.inner] = ...

A non-dividing split leaves its partial tile in the last outer iteration only,
so one peel is enough; the main loop then runs without a branch per tile. A loop
whose whole body is a guard ``v + c < k`` on its own variable is shortened to
the iterations that pass it.
"""

from __future__ import annotations

import dataclasses

from ember.tir import expr as E
from ember.tir.arith import Interval, is_linear_dtype, to_linear
from ember.tir.functor import Mutator, children, substitute
from ember.tir.simplify import Analyzer, simplify_stmt
from ember.tir.stmt import For, ForKind, IfThenElse, PrimFunc, Stmt, seq

MAX_PEELED_STMTS = 2000
"""A body larger than this (IR nodes) is not duplicated: code size would grow too much."""


def _count(s: Stmt, limit: int | None = None) -> tuple[int, int]:
    """(guards, nodes) under ``s``; with ``limit``, counting stops once there are more
    nodes than that (every loop of a nest counts its body: unbounded, that is quadratic
    in the nest's size on the large unrolled bodies of Winograd's transforms)."""
    guards = nodes = 0
    stack: list[object] = [s]
    while stack:
        n = stack.pop()
        nodes += 1
        if isinstance(n, IfThenElse):
            guards += 1
        if limit is not None and nodes > limit:
            break
        stack.extend(children(n))
    return guards, nodes


def _has_guard(s: Stmt) -> bool:
    """Is there an ``IfThenElse`` under ``s``? (Statements only: a guard is never inside
    an expression, and the expressions are most of a big body's nodes.)"""
    stack: list[object] = [s]
    while stack:
        n = stack.pop()
        if isinstance(n, IfThenElse):
            return True
        stack.extend(c for c in children(n) if isinstance(c, Stmt))
    return False


def _tighten(loop: For) -> For:
    """``for v in (lo, n): if v + c < k: body`` -> ``for v in (lo, min(n, k - c - lo)): body``."""
    guard = loop.body
    if not (isinstance(guard, IfThenElse) and guard.else_case is None):
        return loop
    cond = guard.condition
    if not isinstance(cond, E.LT | E.LE) or not is_linear_dtype(cond.a.dtype):
        return loop
    if not isinstance(loop.min, E.IntImm) or not isinstance(loop.extent, E.IntImm):
        return loop
    diff = to_linear(cond.a).plus(to_linear(cond.b), -1)  # v + rest  (<, <=) 0
    if diff.terms != {loop.loop_var: 1}:
        return loop
    stop = -diff.const + (1 if isinstance(cond, E.LE) else 0)  # v < stop
    extent = max(0, min(loop.extent.value, stop - loop.min.value))
    return dataclasses.replace(
        loop, extent=E.IntImm(extent, loop.extent.dtype), body=guard.then_case
    )


class _Tighten(Mutator):
    def visit_For(self, s: For) -> Stmt:
        return _tighten(self.generic(s))


class _Partition(Mutator):
    def __init__(self) -> None:
        self.bounds: dict[E.Var, Interval] = {}

    def visit_For(self, s: For) -> Stmt:
        analyzer = Analyzer(self.bounds)
        old = self.bounds.get(s.loop_var)
        analyzer.bind(s.loop_var, (s.min, s.extent))
        self.bounds[s.loop_var] = analyzer.bounds[s.loop_var]
        body = self.stmt(s.body)
        if old is None:
            self.bounds.pop(s.loop_var, None)
        else:
            self.bounds[s.loop_var] = old
        loop = s if body is s.body else dataclasses.replace(s, body=body)
        if not isinstance(loop.extent, E.IntImm) or loop.extent.value < 2:
            return loop
        if loop.kind not in (ForKind.SERIAL, ForKind.PARALLEL):
            return loop
        if not _has_guard(loop.body):
            return loop  # the common case, found without counting expression nodes
        guards, nodes = _count(loop.body, MAX_PEELED_STMTS)
        if nodes > MAX_PEELED_STMTS:
            return loop
        n = loop.extent.value
        main = simplify_stmt(
            dataclasses.replace(loop, extent=E.IntImm(n - 1, loop.extent.dtype)), self.bounds
        )
        if _count(main)[0] >= guards:
            return loop
        last = E.Add(loop.min, E.IntImm(n - 1, loop.min.dtype))
        tail = simplify_stmt(substitute(loop.body, {loop.loop_var: last}), self.bounds)
        return seq(main, tail)


def partition_loops(func: PrimFunc) -> PrimFunc:
    """Peel last iterations that carry split tails (see the module docstring).

    >>> print(partition_loops(f))
    """
    body = _Tighten().stmt(_Partition().stmt(func.body))
    return func if body is func.body else dataclasses.replace(func, body=body)
