"""unroll_loops: an UNROLLED loop of constant extent becomes that many copies of its body.

Needs: nothing. Guarantees: no UNROLLED loop with a constant extent remains; each
copy has the loop variable replaced by its value (later simplification folds the
index arithmetic). An UNROLLED loop whose extent is not a constant stays a loop,
marked SERIAL with the ``pragma_unroll`` annotation so the C compiler unrolls it.
A select whose condition the loop's value decides is replaced by the branch it picks
while the copy is made (what simplification would fold anyway): Winograd's transforms
pick one sum out of 36 or 64 per unrolled (e, u), and copying all of them for every
value, to drop them later, made these kernels take seconds to lower.

    for k in unrolled(0, 2):         B[0] = A[0]
      B[k] = A[k]               ->   B[1] = A[1]
"""

from __future__ import annotations

import dataclasses

from ember.tir import expr as E
from ember.tir.functor import Mutator
from ember.tir.simplify import simplify
from ember.tir.stmt import Evaluate, For, ForKind, PrimFunc, Stmt, seq


class _SubstituteValue(Mutator):
    """Substitute one value for the unrolled loop variable; a select whose condition
    becomes a constant becomes its taken branch (the other is never copied)."""

    def __init__(self, var: E.Var, value: E.PrimExpr) -> None:
        self.var, self.value = var, value

    def visit_Var(self, e: E.Var) -> E.PrimExpr:
        return self.value if e is self.var else e

    visit_SizeVar = visit_Var

    def visit_Select(self, e: E.Select) -> E.PrimExpr:
        cond = self.expr(e.condition)
        if cond is not e.condition:  # the condition mentions the loop variable
            decided = simplify(cond)
            if isinstance(decided, E.IntImm):
                return self.expr(e.true_value if decided.value else e.false_value)
        t, f = self.expr(e.true_value), self.expr(e.false_value)
        if cond is e.condition and t is e.true_value and f is e.false_value:
            return e
        return E.Select(cond, t, f)


MAX_UNROLL_EXTENT = 4096
"""Beyond this many copies code grows more than loop overhead shrinks: keep a loop, hint cc."""


class _Unroll(Mutator):
    def visit_For(self, s: For) -> Stmt:
        s2 = self.generic(s)
        if s2.kind is not ForKind.UNROLLED:
            return s2
        if isinstance(s2.extent, E.IntImm) and s2.extent.value <= MAX_UNROLL_EXTENT:
            copies = [
                _SubstituteValue(s2.loop_var, s2.min + k if k else s2.min).stmt(s2.body)
                for k in range(s2.extent.value)
            ]
            return seq(*copies) if copies else Evaluate(E.IntImm(0, "int32"))
        annotations = tuple(a for a in s2.annotations if a[0] != "pragma_unroll")
        return dataclasses.replace(
            s2, kind=ForKind.SERIAL, annotations=annotations + (("pragma_unroll", 0),)
        )


def unroll_loops(func: PrimFunc) -> PrimFunc:
    """Unroll every UNROLLED loop of ``func`` (see the module docstring).

    >>> print(unroll_loops(f))
    """
    body = _Unroll().stmt(func.body)
    return func if body is func.body else dataclasses.replace(func, body=body)
