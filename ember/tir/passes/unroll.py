"""unroll_loops: an UNROLLED loop of constant extent becomes that many copies of its body.

Needs: nothing. Guarantees: no UNROLLED loop with a constant extent remains; each
copy has the loop variable replaced by its value (later simplification folds the
index arithmetic). An UNROLLED loop whose extent is not a constant stays a loop,
marked SERIAL with the ``pragma_unroll`` annotation so the C compiler unrolls it.

    for k in unrolled(0, 2):         B[0] = A[0]
      B[k] = A[k]               ->   B[1] = A[1]
"""

from __future__ import annotations

import dataclasses

from ember.tir import expr as E
from ember.tir.functor import Mutator, substitute
from ember.tir.stmt import Evaluate, For, ForKind, PrimFunc, Stmt, seq

MAX_UNROLL_EXTENT = 4096
"""Beyond this many copies code grows more than loop overhead shrinks: keep a loop, hint cc."""


class _Unroll(Mutator):
    def visit_For(self, s: For) -> Stmt:
        s2 = self.generic(s)
        if s2.kind is not ForKind.UNROLLED:
            return s2
        if isinstance(s2.extent, E.IntImm) and s2.extent.value <= MAX_UNROLL_EXTENT:
            copies = [
                substitute(s2.body, {s2.loop_var: s2.min + k if k else s2.min})
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
