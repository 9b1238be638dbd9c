"""partition_selects: split a loop where the conditions of its selects change value.

Needs: flattened loop IR with simplifiable select conditions. Guarantees: same
results; a SERIAL or PARALLEL loop of constant range whose body selects on a
condition that is decided over ranges of the loop variable (a concatenation's
``c < 64``, ``f // 14 < 4`` on a fused loop, a padding's ``y >= 1``) runs each
range with the body simplified for that range, so the selects -- and the bounds
clamps lowering put on the reads in their branches -- fold away::

    for c in range(0, 96):                      for c in range(0, 64):
      B[c] = select(c < 64, X[min(c, 63)],  ->    B[c] = X[c]
                    Y[max(c - 64, 0)])          for c in range(64, 96):
                                                  B[c] = Y[c - 64]

A SERIAL loop becomes consecutive loops. A PARALLEL loop keeps its one parallel
region (each region costs a barrier): its body becomes a balanced tree of
``if v < t`` branches, one simplified body per range. Split points are found by
binary search on where the analyzer decides each condition, which is exact for
conditions monotone in the loop variable; any split point keeps results (a loop
cut into consecutive pieces runs the same iterations in the same order), so a
non-monotone condition only costs a useless split, and a split that leaves more
than half of the iterations' tests on the loop variable is dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ember.tir import expr as E
from ember.tir.arith import Interval, is_linear_dtype
from ember.tir.functor import Mutator, children, post_order, uses_var
from ember.tir.simplify import Analyzer, simplify_stmt
from ember.tir.stmt import For, ForKind, IfThenElse, PrimFunc, Stmt, seq

MAX_PIECES = 64
"""At most this many ranges per loop: each range is a copy of the body."""

MAX_PARTITIONED_NODES = 40_000
"""Give up when the simplified copies together exceed this many IR nodes (code size)."""


def _count(node: object, kind: type) -> int:
    n = 0

    def visit(x: object) -> None:
        nonlocal n
        n += isinstance(x, kind)

    post_order(node, visit)
    return n


def _tests_on(node: object, var: E.Var) -> int:
    """Comparisons on ``var`` in the select conditions under ``node``."""
    n = 0

    def visit(x: object) -> None:
        nonlocal n
        if isinstance(x, E.Select):
            n += sum(1 for atom in _atoms(x.condition) if uses_var(atom, var))

    post_order(node, visit)
    return n


def _has_select(node: object) -> bool:
    """True when a Select is anywhere under ``node`` (stops at the first)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, E.Select):
            return True
        stack.extend(children(n))
    return False


def _atoms(cond: E.PrimExpr) -> list[E.PrimExpr]:
    """The comparisons a boolean condition is built from."""
    if isinstance(cond, E.And | E.Or):
        return _atoms(cond.a) + _atoms(cond.b)
    if isinstance(cond, E.Not):
        return _atoms(cond.a)
    if isinstance(cond, E.CmpOp) and is_linear_dtype(cond.a.dtype):
        return [cond]
    return []


def _conditions(body: Stmt, var: E.Var, bounds: dict[E.Var, Interval]) -> list[tuple]:
    """(comparison, bounds of the loops around it) for select conditions that use ``var``.

    The bounds include the loops *inside* ``var``'s body that enclose the select, so a
    condition on ``8*x.outer + x.inner`` is decided per ``x.outer`` given ``x.inner``'s range.
    """
    found: list[tuple] = []
    seen: set[E.PrimExpr] = set()

    class _Collect(Mutator):
        def __init__(self) -> None:
            self.bounds = dict(bounds)

        def visit_For(self, s: For) -> Stmt:
            old = self.bounds.get(s.loop_var)
            an = Analyzer(self.bounds)
            an.bind(s.loop_var, (s.min, s.extent))
            self.bounds[s.loop_var] = an.bounds[s.loop_var]
            self.stmt(s.body)
            if old is None:
                self.bounds.pop(s.loop_var, None)
            else:
                self.bounds[s.loop_var] = old
            return s

        def visit_Select(self, e: E.Select) -> E.PrimExpr:
            for atom in _atoms(e.condition):
                if atom not in seen and uses_var(atom, var):
                    seen.add(atom)
                    found.append((atom, dict(self.bounds)))
            self.expr(e.true_value)
            self.expr(e.false_value)
            return e

    _Collect().stmt(body)
    return found


def _state(cond: E.PrimExpr, var: E.Var, value: int, bounds: dict[E.Var, Interval]) -> int:
    """1 / 0 when ``cond`` is decided true / false at ``var == value``, else -1."""
    an = Analyzer({**bounds, var: (value, value)})
    c = an.simplify(cond)
    return int(bool(c.value)) if isinstance(c, E.IntImm) else -1


def _first(lo: int, hi: int, pred: Callable[[int], bool]) -> int | None:
    """The first x in [lo, hi] with pred(x), assuming pred is monotone (False...True)."""
    if not pred(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _split_points(loop: For, bounds: dict[E.Var, Interval]) -> list[int]:
    lo = loop.min.value  # type: ignore[union-attr]
    hi = lo + loop.extent.value - 1  # type: ignore[union-attr]
    v = loop.loop_var
    points: set[int] = set()
    for cond, cb in _conditions(loop.body, v, bounds):
        start, end = _state(cond, v, lo, cb), _state(cond, v, hi, cb)
        # Where the value at the start stops holding, and where the value at the end begins.
        t1 = _first(lo, hi, lambda x, s=start, c=cond, b=cb: _state(c, v, x, b) != s)
        t2 = _first(lo, hi, lambda x, s=end, c=cond, b=cb: _state(c, v, x, b) == s)
        points.update(t for t in (t1, t2) if t is not None and lo < t <= hi)
    return sorted(points)


def _size(node: object) -> int:
    return _count(node, object)


class _PartitionSelects(Mutator):
    def __init__(self) -> None:
        self.bounds: dict[E.Var, Interval] = {}

    def visit_For(self, s: For) -> Stmt:
        if not _has_select(s.body):
            return s  # nothing to split here or in any loop inside
        v = s.loop_var
        old = self.bounds.get(v)
        parts = self._partition(s)
        if parts is None:
            an = Analyzer(self.bounds)
            an.bind(v, (s.min, s.extent))
            self.bounds[v] = an.bounds[v]
            body = self.stmt(s.body)
            self._restore(v, old)
            return s if body is s.body else dataclasses.replace(s, body=body)
        ranges, bodies = parts
        done = []
        for (a, b), body in zip(ranges, bodies, strict=True):
            self.bounds[v] = (a, b - 1)  # inner loops see the piece's range
            done.append(self.stmt(body))
        self._restore(v, old)
        if s.kind is ForKind.SERIAL:
            dt = s.min.dtype
            return seq(
                *(
                    dataclasses.replace(
                        s, min=E.IntImm(a, dt), extent=E.IntImm(b - a, dt), body=body
                    )
                    for (a, b), body in zip(ranges, done, strict=True)
                )
            )
        return dataclasses.replace(s, body=_branch_tree(v, ranges, done))

    def _restore(self, var: E.Var, old: Interval | None) -> None:
        if old is None:
            self.bounds.pop(var, None)
        else:
            self.bounds[var] = old

    def _partition(self, loop: For) -> tuple[list[tuple[int, int]], list[Stmt]] | None:
        """(ranges, body simplified per range), or None when splitting removes no select."""
        if loop.kind not in (ForKind.SERIAL, ForKind.PARALLEL) or loop.annotations:
            return None
        if not (isinstance(loop.min, E.IntImm) and isinstance(loop.extent, E.IntImm)):
            return None
        if loop.extent.value < 2:
            return None
        points = _split_points(loop, self.bounds)
        if not points or len(points) + 1 > MAX_PIECES:
            return None
        lo, end = loop.min.value, loop.min.value + loop.extent.value
        edges = [lo, *points, end]
        ranges = list(zip(edges[:-1], edges[1:], strict=True))
        v = loop.loop_var
        bodies = [simplify_stmt(loop.body, {**self.bounds, v: (a, b - 1)}) for a, b in ranges]
        # Worth it when at most half of the iterations' tests on v remain (a peel that
        # decides a condition for one iteration only, like a parity test, grows the code).
        before = _tests_on(loop.body, v) * (end - lo)
        after = sum(_tests_on(b, v) * (hi - a) for (a, hi), b in zip(ranges, bodies, strict=True))
        if after * 2 > before:
            return None
        if sum(_size(b) for b in bodies) > MAX_PARTITIONED_NODES:
            return None
        return ranges, bodies


def _branch_tree(v: E.Var, ranges: list[tuple[int, int]], bodies: list[Stmt]) -> Stmt:
    """``if v < t: <left half> else: <right half>``, recursively (log2(pieces) tests)."""
    if len(bodies) == 1:
        return bodies[0]
    mid = len(bodies) // 2
    split = ranges[mid][0]
    left = _branch_tree(v, ranges[:mid], bodies[:mid])
    right = _branch_tree(v, ranges[mid:], bodies[mid:])
    return IfThenElse(E.LT(v, E.IntImm(split, v.dtype)), left, right)


def partition_selects(func: PrimFunc) -> PrimFunc:
    """Split loops where their select conditions change (see the module docstring).

    >>> print(partition_selects(f))
    """
    body = _PartitionSelects().stmt(func.body)
    return func if body is func.body else dataclasses.replace(func, body=body)
