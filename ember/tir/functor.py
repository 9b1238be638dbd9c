"""Visitors and mutators over loop IR expressions and statements.

A :class:`Mutator` walks every child of a node and rebuilds the node only when a
child changed, so an unchanged tree comes back as the very same object. A
subclass overrides ``visit_<NodeClass>`` for the nodes it cares about and calls
``self.generic(node)`` to recurse into the children::

    class Double(Mutator):
        def visit_IntImm(self, e):
            return IntImm(e.value * 2, e.dtype)

    Double().expr(i + 3)       # i + 6

Binding positions (``For.loop_var``, ``Let.var``, ``LetStmt.var``) are not
visited: a substitution never turns a loop variable into an expression.
Buffers are visited through :meth:`Mutator.buffer` (identity by default), the
hook storage flattening uses to swap N-D buffers for 1-D ones.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any

from ember.tir.buffer import Buffer
from ember.tir.expr import BufferLoad, PrimExpr, Var
from ember.tir.stmt import Allocate, BufferStore, Stmt

_BINDING_FIELDS = frozenset({"loop_var", "var"})

_SCALAR_FIELD_TYPES = frozenset({"str", "int", "float", "bool", "ForKind", str, int, float, bool})
"""Field annotations that never hold a child (a dtype, a name, a constant's value):
skipped by the walks, which otherwise test each of them against every node kind."""


@functools.cache
def _child_fields(cls: type) -> tuple[str, ...]:
    """The fields of IR node class ``cls`` that may hold children (binding variables,
    scalar fields and non-init fields excluded); () for a Var or a non-dataclass. Cached
    per class: the walks below run millions of times per model and ``dataclasses.fields``
    is slow."""
    if not dataclasses.is_dataclass(cls) or issubclass(cls, Var):
        return ()
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.name not in _BINDING_FIELDS and f.type not in _SCALAR_FIELD_TYPES
    )


@functools.cache
def _visit_method(walker: type, node: type) -> Callable[..., Any] | None:
    """``walker``'s ``visit_<NodeClass>`` function for ``node``'s class, or None; cached per
    pair of classes (a string concat and getattr per visited node add up on big kernels)."""
    return getattr(walker, "visit_" + node.__name__, None)


class Mutator:
    """Rebuild-on-change mutator over expressions and statements (see the module docstring)."""

    def expr(self, e: PrimExpr) -> PrimExpr:
        method = _visit_method(type(self), type(e))
        if method is not None:
            return method(self, e)
        return self.generic(e)

    def stmt(self, s: Stmt) -> Stmt:
        method = _visit_method(type(self), type(s))
        if method is not None:
            return method(self, s)
        return self.generic(s)

    def buffer(self, b: Buffer) -> Buffer:
        """Hook for buffers referenced by loads, stores and allocations."""
        return b

    def _child(self, value: Any) -> Any:
        if isinstance(value, PrimExpr):
            return self.expr(value)
        if isinstance(value, Stmt):
            return self.stmt(value)
        if isinstance(value, Buffer):
            return self.buffer(value)
        if isinstance(value, tuple) and value and isinstance(value[0], PrimExpr | Stmt):
            items = tuple(self._child(v) for v in value)
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return items
        return value

    def generic(self, node: Any) -> Any:
        """Visit the children of ``node``; rebuild it only when one of them changed."""
        changes: dict[str, Any] | None = None
        for name in _child_fields(type(node)):
            old = getattr(node, name)
            new = self._child(old)
            if new is not old:
                if changes is None:
                    changes = {}
                changes[name] = new
        if changes is None:
            return node
        return dataclasses.replace(node, **changes)


class Visitor:
    """Read-only walk; override ``visit_<NodeClass>`` and call ``self.generic(node)`` to recurse."""

    def expr(self, e: PrimExpr) -> None:
        method = _visit_method(type(self), type(e))
        if method is not None:
            method(self, e)
        else:
            self.generic(e)

    def stmt(self, s: Stmt) -> None:
        method = _visit_method(type(self), type(s))
        if method is not None:
            method(self, s)
        else:
            self.generic(s)

    def generic(self, node: Any) -> None:
        for name in _child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, PrimExpr):
                self.expr(value)
            elif isinstance(value, Stmt):
                self.stmt(value)
            elif isinstance(value, tuple):
                for v in value:
                    if isinstance(v, PrimExpr):
                        self.expr(v)
                    elif isinstance(v, Stmt):
                        self.stmt(v)


def children(node: Any) -> Iterator[Any]:
    """The expression/statement children of ``node`` (binding variables excluded)."""
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, PrimExpr | Stmt):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, PrimExpr | Stmt))


def post_order(node: Any, fn: Callable[[Any], None]) -> None:
    """Call ``fn`` on every expression and statement under ``node``, children first."""
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            fn(n)
            continue
        stack.append((n, True))
        for c in reversed(list(children(n))):
            stack.append((c, False))


def uses_var(node: Any, var_pred: Callable[[Var], bool] | Var) -> bool:
    """True when ``node`` mentions a variable (given one, or a predicate on variables)."""
    pred = (lambda v: v is var_pred) if isinstance(var_pred, Var) else var_pred
    found = False

    def check(n: Any) -> None:
        nonlocal found
        if isinstance(n, Var) and pred(n):
            found = True

    post_order(node, check)
    return found


class _Substitute(Mutator):
    def __init__(self, vmap: dict[Var, PrimExpr]) -> None:
        self.vmap = vmap

    def visit_Var(self, e: Var) -> PrimExpr:
        return self.vmap.get(e, e)

    def visit_SizeVar(self, e: Var) -> PrimExpr:
        return self.vmap.get(e, e)


def substitute(node: Any, vmap: dict[Var, PrimExpr]) -> Any:
    """Replace variables by expressions in an expression or statement.

    >>> substitute(i + 1, {i: j * 2})   # j*2 + 1
    """
    if not vmap:
        return node
    m = _Substitute(vmap)
    return m.expr(node) if isinstance(node, PrimExpr) else m.stmt(node)


def stores_and_loads(node: Any) -> tuple[list[BufferStore], list[BufferLoad]]:
    """All BufferStores and BufferLoads under ``node``."""
    stores: list[BufferStore] = []
    loads: list[BufferLoad] = []

    def collect(n: Any) -> None:
        if isinstance(n, BufferStore):
            stores.append(n)
        elif isinstance(n, BufferLoad):
            loads.append(n)

    post_order(node, collect)
    return stores, loads


def allocated_buffers(node: Any) -> list[Buffer]:
    """Buffers allocated by Allocate statements under ``node``."""
    out: list[Buffer] = []
    post_order(node, lambda n: out.append(n.buffer) if isinstance(n, Allocate) else None)
    return out
