"""remove_no_op: drop statements that do nothing.

Needs: nothing. Guarantees: no ``Evaluate(constant)``, no ``A[i] = A[i]``, no
loop / guard / allocation whose body does nothing, and no allocation of a buffer
the body never touches. An entirely empty body becomes ``Evaluate(0)``.

    for i in range(0, 8):
      0                        ->   0
"""

from __future__ import annotations

import dataclasses

from ember.tir import expr as E
from ember.tir.functor import Mutator, post_order
from ember.tir.stmt import (
    Allocate,
    AttrStmt,
    BufferStore,
    Evaluate,
    For,
    IfThenElse,
    LetStmt,
    PrimFunc,
    SeqStmt,
    Stmt,
)

NO_OP = Evaluate(E.IntImm(0, "int32"))


def is_no_op(s: Stmt | None) -> bool:
    if s is None:
        return True
    if isinstance(s, Evaluate):
        return isinstance(s.value, E.IntImm | E.FloatImm)
    if isinstance(s, SeqStmt):
        return all(is_no_op(c) for c in s.seq)
    return False


def _uses_buffer(s: Stmt, data: E.Var) -> bool:
    found = False

    def check(n: object) -> None:
        nonlocal found
        if isinstance(n, E.BufferLoad | BufferStore) and n.buffer.data is data:
            found = True
        elif isinstance(n, E.Var) and n is data:
            found = True

    post_order(s, check)
    return found


class _RemoveNoOp(Mutator):
    def visit_SeqStmt(self, s: SeqStmt) -> Stmt:
        items = [c for c in (self.stmt(x) for x in s.seq) if not is_no_op(c)]
        if not items:
            return NO_OP
        if len(items) == 1:
            return items[0]
        if len(items) == len(s.seq) and all(a is b for a, b in zip(items, s.seq, strict=True)):
            return s
        return SeqStmt(tuple(items))

    def visit_For(self, s: For) -> Stmt:
        s2 = self.generic(s)
        return NO_OP if is_no_op(s2.body) else s2

    def visit_IfThenElse(self, s: IfThenElse) -> Stmt:
        s2 = self.generic(s)
        if is_no_op(s2.then_case) and is_no_op(s2.else_case):
            return NO_OP
        if s2.else_case is not None and is_no_op(s2.else_case):
            return IfThenElse(s2.condition, s2.then_case, None)
        return s2

    def visit_Allocate(self, s: Allocate) -> Stmt:
        s2 = self.generic(s)
        if is_no_op(s2.body):
            return NO_OP
        if not _uses_buffer(s2.body, s2.buffer.data):
            return s2.body
        return s2

    def visit_LetStmt(self, s: LetStmt) -> Stmt:
        s2 = self.generic(s)
        return NO_OP if is_no_op(s2.body) else s2

    def visit_AttrStmt(self, s: AttrStmt) -> Stmt:
        s2 = self.generic(s)
        return NO_OP if is_no_op(s2.body) else s2

    def visit_BufferStore(self, s: BufferStore) -> Stmt:
        v = s.value
        if (
            isinstance(v, E.BufferLoad)
            and v.buffer.data is s.buffer.data
            and v.indices == s.indices
        ):
            return NO_OP
        return s

    def visit_Evaluate(self, s: Evaluate) -> Stmt:
        return NO_OP if is_no_op(s) else s


def remove_no_op(func: PrimFunc) -> PrimFunc:
    """Remove statements without effect (see the module docstring).

    >>> remove_no_op(f).body
    """
    body = _RemoveNoOp().stmt(func.body)
    return func if body is func.body else dataclasses.replace(func, body=body)
