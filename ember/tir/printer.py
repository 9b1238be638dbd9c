"""Readable text for loop IR, in the spirit of TVM's TVMScript (not meant to be parsed back)::

    @main(A: float32[1024, 1024], C: float32[1024, 1024])
      for i.outer in parallel(0, 32):
        for j in vectorized(0, 8):
          C[i*1024 + j] = A[i*1024 + j] + 1f

Expressions get the fewest parentheses that keep C-like precedence; ``//`` and
``%`` are floor division and floor modulo, ``/`` is C division.

``ember.tir.stmt`` imports this module (``str(prim_func)``), so the dependency
points stmt -> printer -> expr: statements are printed by class name.
"""

from __future__ import annotations

from typing import Any

from ember.tir import expr as E
from ember.tir.buffer import Buffer

# Higher binds tighter. Left-associative: the right operand of a same-precedence
# binary op gets parentheses (a - (b - c)), the left one does not.
_BINARY_OPS: dict[type, tuple[str, int]] = {
    E.Or: ("||", 1),
    E.And: ("&&", 2),
    E.BitOr: ("|", 3),
    E.BitXor: ("^", 4),
    E.BitAnd: ("&", 5),
    E.EQ: ("==", 6),
    E.NE: ("!=", 6),
    E.LT: ("<", 7),
    E.LE: ("<=", 7),
    E.GT: (">", 7),
    E.GE: (">=", 7),
    E.ShiftLeft: ("<<", 8),
    E.ShiftRight: (">>", 8),
    E.Add: ("+", 9),
    E.Sub: ("-", 9),
    E.Mul: ("*", 10),
    E.Div: ("/", 10),
    E.FloorDiv: ("//", 10),
    E.FloorMod: ("%", 10),
}
_UNARY = 11
_ATOM = 12

_FLOAT_SUFFIX = {"float32": "f", "float16": "h", "float64": ""}


def _float_text(e: E.FloatImm) -> str:
    text = repr(e.value)
    if text in ("inf", "-inf", "nan"):
        return f"{e.dtype}({text})"
    return text + _FLOAT_SUFFIX.get(e.dtype, "")


class _Printer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    # ------------------------------------------------------------------ expressions
    def expr(self, e: E.PrimExpr) -> str:
        return self._expr(e)[0]

    def _wrap(self, e: E.PrimExpr, min_prec: int) -> str:
        text, prec = self._expr(e)
        return f"({text})" if prec < min_prec else text

    def _expr(self, e: E.PrimExpr) -> tuple[str, int]:
        t = type(e)
        if t is E.IntImm:
            if e.dtype == "bool":
                return ("True" if e.value else "False"), _ATOM
            text = str(e.value)
            if e.dtype not in ("int32",):
                text = f"{e.dtype}({e.value})"
            return text, (_UNARY if e.value < 0 and e.dtype == "int32" else _ATOM)
        if t is E.FloatImm:
            text = _float_text(e)
            return text, (_UNARY if e.value < 0 else _ATOM)
        if isinstance(e, E.Var):
            return e.name, _ATOM
        if t in _BINARY_OPS:
            op, prec = _BINARY_OPS[t]
            sep = "" if prec == 10 else " "  # i*4 + j: products stay tight, sums spread
            return f"{self._wrap(e.a, prec)}{sep}{op}{sep}{self._wrap(e.b, prec + 1)}", prec
        if t is E.Min or t is E.Max:
            return f"{t.__name__.lower()}({self.expr(e.a)}, {self.expr(e.b)})", _ATOM
        if t is E.Not:
            return "!" + self._wrap(e.a, _UNARY), _UNARY
        if t is E.BitNot:
            return "~" + self._wrap(e.a, _UNARY), _UNARY
        if t is E.Cast:
            return f"{e.dtype}({self.expr(e.value)})", _ATOM
        if t is E.Select:
            c, a, b = (self.expr(x) for x in (e.condition, e.true_value, e.false_value))
            return f"select({c}, {a}, {b})", _ATOM
        if t is E.Call:
            return f"{e.name}({', '.join(self.expr(a) for a in e.args)})", _ATOM
        if t is E.Ramp:
            return f"ramp({self.expr(e.base)}, {self.expr(e.stride)}, {e.lanes})", _ATOM
        if t is E.Broadcast:
            return f"broadcast({self.expr(e.value)}, {e.lanes})", _ATOM
        if t is E.Let:
            return f"let {e.var.name} = {self.expr(e.value)} in {self.expr(e.body)}", 0
        if t is E.BufferLoad:
            return f"{e.buffer.name}[{self._indices(e.indices)}]", _ATOM
        if t is E.ProducerLoad:
            return f"{e.producer.name}[{self._indices(e.indices)}]", _ATOM
        return repr(e), _ATOM

    def _indices(self, indices: tuple[E.PrimExpr, ...]) -> str:
        return ", ".join(self.expr(i) for i in indices)

    # ------------------------------------------------------------------ statements
    def emit(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def stmt(self, s: Any, depth: int) -> None:
        # Statements are dispatched by class name (print_For, ...), as the Mutator's
        # visit_ methods are: ember.tir.stmt imports this module for PrimFunc.__str__,
        # so this module must not import the statement classes back.
        method = getattr(self, "print_" + type(s).__name__, None)
        if method is None:
            self.emit(depth, repr(s))
        else:
            method(s, depth)

    def print_SeqStmt(self, s: Any, depth: int) -> None:
        for c in s.seq:
            self.stmt(c, depth)

    def print_For(self, s: Any, depth: int) -> None:
        lo, n = self.expr(s.min), self.expr(s.extent)
        rng = f"0, {n}" if lo == "0" else f"{lo}, {self.expr(s.min + s.extent)}"
        kind = s.kind.value  # ForKind: serial, parallel, vectorized, unrolled, thread_binding
        if kind == "thread_binding":
            head = f'for {s.loop_var.name} in thread_binding("{s.thread_tag}", {rng}):'
        else:
            head = f"for {s.loop_var.name} in {'range' if kind == 'serial' else kind}({rng}):"
        if s.annotations:
            head += "  # " + ", ".join(f"{k}={v!r}" for k, v in s.annotations)
        self.emit(depth, head)
        self.stmt(s.body, depth + 1)

    def print_BufferStore(self, s: Any, depth: int) -> None:
        self.emit(depth, f"{s.buffer.name}[{self._indices(s.indices)}] = {self.expr(s.value)}")

    def print_IfThenElse(self, s: Any, depth: int) -> None:
        self.emit(depth, f"if {self.expr(s.condition)}:")
        self.stmt(s.then_case, depth + 1)
        if s.else_case is not None:
            self.emit(depth, "else:")
            self.stmt(s.else_case, depth + 1)

    def print_Allocate(self, s: Any, depth: int) -> None:
        b = s.buffer
        self.emit(depth, f"{b.name} = allocate({_buffer_type(b, self)}, {b.scope!r})")
        self.stmt(s.body, depth)

    def print_LetStmt(self, s: Any, depth: int) -> None:
        self.emit(depth, f"{s.var.name}: {s.var.dtype} = {self.expr(s.value)}")
        self.stmt(s.body, depth)

    def print_AttrStmt(self, s: Any, depth: int) -> None:
        self.emit(
            depth, f"attr [{_node_text(s.node, self)}] {s.key} = {_value_text(s.value, self)}"
        )
        self.stmt(s.body, depth + 1)

    def print_Evaluate(self, s: Any, depth: int) -> None:
        self.emit(depth, self.expr(s.value))

    def print_AssertStmt(self, s: Any, depth: int) -> None:
        self.emit(depth, f"assert {self.expr(s.condition)}, {s.message!r}")
        self.stmt(s.body, depth)


def _buffer_type(b: Buffer, p: _Printer) -> str:
    text = f"{b.dtype}[{', '.join(p.expr(d) for d in b.shape)}]"
    if b.strides:
        text += f", strides=[{', '.join(p.expr(d) for d in b.strides)}]"
    if b.elem_offset is not None:
        text += f", offset={p.expr(b.elem_offset)}"
    return text


def _node_text(node: Any, p: _Printer) -> str:
    if isinstance(node, E.PrimExpr):
        return p.expr(node)
    if isinstance(node, Buffer):
        return node.name
    return str(node)


def _value_text(value: Any, p: _Printer) -> str:
    return p.expr(value) if isinstance(value, E.PrimExpr) else repr(value)


def print_expr(e: E.PrimExpr) -> str:
    """One line of text for an expression: ``print_expr(i * 4 + j)`` -> ``'i*4 + j'``."""
    return _Printer().expr(e)


def print_stmt(s: Any) -> str:
    """Indented text of a statement."""
    p = _Printer()
    p.stmt(s, 0)
    return "\n".join(p.lines)


def print_func(func: Any) -> str:
    """The text of a PrimFunc; ``str(func)`` calls this.

    >>> print(print_func(f))
    @main(A: float32[16])
      for i in range(0, 16):
        A[i] = 0f
    """
    p = _Printer()
    params = ", ".join(f"{b.name}: {_buffer_type(b, p)}" for b in func.params)
    p.emit(0, f"@{func.name}({params})")
    for key, value in func.attrs.items():
        if key == "c_prelude":
            p.emit(1, f"# attr {key}: {len(value)} snippet(s)")
        else:
            p.emit(1, f"# attr {key} = {value!r}")
    p.stmt(func.body, 1)
    return "\n".join(p.lines) + "\n"
