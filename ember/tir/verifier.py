"""verify: check that a loop IR function is well formed (the loop IR's verifier).

What lowering and every loop IR pass must keep true, and what the evaluator and
the C code generator rely on:

  * every variable is bound where it is used: by an enclosing loop, ``let`` or
    ``Let``, or it is a symbolic dimension of a parameter (a ``Var`` used outside
    its loop is the classic bug of a pass that moves code);
  * no variable is bound again inside its own scope (a loop inside a loop of the
    same variable; sibling scopes may reuse one);
  * every buffer accessed is a parameter or allocated around the access (by its
    ``data`` variable: a flattened buffer is the same memory as the N-D one);
  * a load or store has one index per dimension of its buffer, integer indices,
    and, for vectors, the same lane count in every vector index and the value;
  * a stored value has the buffer's element type;
  * both operands of a binary operation have the same dtype; conditions of
    guards, asserts and selects are booleans, scalar or as wide as the select;
  * loop bounds are scalar integers; no tensor-expression read (ProducerLoad)
    is left in loop IR.

    >>> verify(func)          # returns None, or raises VerifyError naming what is wrong
"""

from __future__ import annotations

from ember.errors import VerifyError
from ember.tir import expr as E
from ember.tir.buffer import Buffer
from ember.tir.functor import children
from ember.tir.printer import print_expr, print_stmt
from ember.tir.stmt import (
    Allocate,
    AssertStmt,
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

MAX_QUOTED_CHARS = 160
"""A statement quoted in an error is cut to this many characters (a loop body can be huge)."""


def _quote(s: Stmt | E.PrimExpr) -> str:
    if isinstance(s, E.PrimExpr):
        text = print_expr(s)
    else:
        text = print_stmt(s).splitlines()[0].strip()
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 3] + "..."


class _Verifier:
    def __init__(self, func: PrimFunc) -> None:
        self.func = func
        self.bound: set[E.Var] = set()
        self.memory: set[E.Var] = set()  # data variables of the buffers in scope
        self.loops: list[str] = []  # enclosing loops, outer first
        self.stmt_now: Stmt | None = None
        for buf in func.params:
            self.memory.add(buf.data)
            for dim in (*buf.shape, *buf.strides, buf.elem_offset):
                if dim is not None:
                    self._collect_vars(dim)

    def _collect_vars(self, e: E.PrimExpr) -> None:
        if isinstance(e, E.Var):
            self.bound.add(e)
        for c in children(e):
            self._collect_vars(c)

    # ------------------------------------------------------------------ errors
    def fail(self, what: str, hint: str | None = None) -> VerifyError:
        where = ""
        if self.stmt_now is not None:
            where = f" in `{_quote(self.stmt_now)}`"
        if self.loops:
            where += f" (inside loop {' > '.join(self.loops)})"
        return VerifyError(f"function {self.func.name!r}: {what}{where}", hint=hint)

    def bind(self, var: E.Var, what: str) -> None:
        if var in self.bound:
            raise self.fail(
                f"variable {var.name!r} is bound again by a {what} inside its own scope",
                hint="give the inner loop or let a fresh variable (E.Var(name)), as "
                "lowering's loop renaming does",
            )
        self.bound.add(var)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: E.PrimExpr) -> None:
        t = type(e)
        if isinstance(e, E.Var):
            if e not in self.bound:
                raise self.fail(
                    f"variable {e.name!r} is used outside the loop or let that binds it",
                    hint="every variable must be a loop variable, a let, or a symbolic "
                    "dimension of a parameter",
                )
            return
        if t is E.Let:
            self.expr(e.value)
            self.bind(e.var, "let expression")
            self.expr(e.body)
            self.bound.discard(e.var)
            return
        if t is E.ProducerLoad:
            raise self.fail(
                f"tensor {e.producer.name!r} is read as a tensor expression "
                f"(`{_quote(e)}`), not from a buffer",
                hint="lowering turns reads of tensors into buffer loads",
            )
        for c in children(e):
            self.expr(c)
        if isinstance(e, E.BinaryOp | E.CmpOp):
            if e.a.dtype != e.b.dtype:
                raise self.fail(
                    f"{t.__name__} `{_quote(e)}` has operands of dtypes {e.a.dtype} and "
                    f"{e.b.dtype}",
                    hint="cast one side, or broadcast the scalar side of a vector operation",
                )
            if isinstance(e, E.And | E.Or) and not E.is_bool(e.a.dtype):
                raise self.fail(f"{t.__name__} `{_quote(e)}` combines non-booleans ({e.a.dtype})")
        elif t is E.Select:
            self._condition(e.condition, "select", E.dtype_lanes(e.dtype))
            if e.true_value.dtype != e.false_value.dtype:
                raise self.fail(
                    f"select `{_quote(e)}` has branches of dtypes {e.true_value.dtype} and "
                    f"{e.false_value.dtype}"
                )
        elif t is E.Ramp:
            if e.base.dtype != e.stride.dtype or not E.is_int(e.base.dtype):
                raise self.fail(
                    f"ramp `{_quote(e)}` needs scalar integer base and stride of one dtype, "
                    f"got {e.base.dtype} and {e.stride.dtype}"
                )
        elif t is E.Broadcast:
            if E.dtype_lanes(e.value.dtype) != 1:
                raise self.fail(f"broadcast `{_quote(e)}` of a vector ({e.value.dtype})")
        elif t is E.BufferLoad:
            self._access(e.buffer, e.indices, None, f"load `{_quote(e)}`")

    def _condition(self, c: E.PrimExpr, what: str, lanes: int = 1) -> None:
        c_lanes = E.dtype_lanes(c.dtype)
        if not E.is_bool(c.dtype) or c_lanes not in (1, lanes):
            want = "a boolean" if lanes == 1 else f"a boolean, scalar or of {lanes} lanes"
            raise self.fail(f"the condition of a {what} is {c.dtype}, expected {want}")

    def _access(
        self,
        buf: Buffer,
        indices: tuple[E.PrimExpr, ...],
        value: E.PrimExpr | None,
        what: str,
    ) -> None:
        if buf.data not in self.memory:
            raise self.fail(
                f"{what} uses buffer {buf.name!r}, which is neither a parameter nor allocated "
                "around it",
                hint="an Allocate's buffer lives only inside the Allocate's body",
            )
        if len(indices) != len(buf.shape):
            raise self.fail(
                f"{what} indexes buffer {buf.name!r} of {len(buf.shape)} dimension(s) with "
                f"{len(indices)} index(es)"
            )
        lanes = {E.dtype_lanes(i.dtype) for i in indices} - {1}
        for i in indices:
            if not E.is_int(i.dtype):
                raise self.fail(f"{what} has a non-integer index `{_quote(i)}` ({i.dtype})")
        if len(lanes) > 1:
            raise self.fail(f"{what} mixes vector indices of {sorted(lanes)} lanes")
        if value is None:
            return
        index_lanes = lanes.pop() if lanes else 1
        value_lanes = E.dtype_lanes(value.dtype)
        if value_lanes != index_lanes:
            raise self.fail(
                f"{what} stores a value of {value_lanes} lane(s) at {index_lanes} location(s)",
                hint="broadcast the value, or index with a ramp of as many lanes",
            )
        if E.dtype_element(value.dtype) != E.dtype_element(buf.dtype):
            raise self.fail(
                f"{what} stores a {E.dtype_element(value.dtype)} value into a {buf.dtype} buffer",
                hint="cast the value to the buffer's dtype",
            )

    # ------------------------------------------------------------------ statements
    def stmt(self, s: Stmt) -> None:
        outer = self.stmt_now
        self.stmt_now = s
        t = type(s)
        if t is SeqStmt:
            self.stmt_now = outer
            for c in s.seq:
                self.stmt(c)
        elif t is For:
            for bound in (s.min, s.extent):
                self.expr(bound)
                if not E.is_int(bound.dtype) or E.dtype_lanes(bound.dtype) != 1:
                    raise self.fail(f"a loop bound `{_quote(bound)}` is {bound.dtype}")
            self.bind(s.loop_var, "loop")
            self.loops.append(s.loop_var.name)
            self.stmt(s.body)
            self.loops.pop()
            self.bound.discard(s.loop_var)
        elif t is LetStmt:
            self.expr(s.value)
            self.bind(s.var, "let")
            self.stmt(s.body)
            self.bound.discard(s.var)
        elif t is BufferStore:
            self.expr(s.value)
            for i in s.indices:
                self.expr(i)
            self._access(s.buffer, s.indices, s.value, f"the store to {s.buffer.name!r}")
        elif t is IfThenElse:
            self.expr(s.condition)
            self._condition(s.condition, "guard")
            self.stmt(s.then_case)
            if s.else_case is not None:
                self.stmt(s.else_case)
        elif t is Allocate:
            data = s.buffer.data
            if data in self.memory:
                raise self.fail(f"buffer {s.buffer.name!r} is allocated again inside its scope")
            for dim in s.buffer.shape:
                self.expr(dim)
            self.memory.add(data)
            self.stmt(s.body)
            self.memory.discard(data)
        elif t is AttrStmt:
            # The node is what the attribute annotates (a pragma names the loop inside it,
            # before that loop binds its variable): not a use.
            if isinstance(s.value, E.PrimExpr):
                self.expr(s.value)
            self.stmt(s.body)
        elif t is Evaluate:
            self.expr(s.value)
        elif t is AssertStmt:
            self.expr(s.condition)
            self._condition(s.condition, "assert")
            self.stmt(s.body)
        else:
            raise self.fail(f"{t.__name__} is not a loop IR statement")
        self.stmt_now = outer


def verify(func: PrimFunc) -> None:
    """Raise :class:`~ember.errors.VerifyError` when ``func`` breaks a rule of the module
    docstring; the message names the function, the statement, the loops around it and
    what is wrong.

    >>> verify(ember.lower(s, [A, B, C]))
    """
    if not isinstance(func, PrimFunc):
        raise VerifyError(f"verify: expected a PrimFunc, got {type(func).__name__}")
    _Verifier(func).stmt(func.body)


__all__ = ["verify"]
