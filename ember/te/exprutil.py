"""Expression helpers for lowering: substitution, inlining, fresh reduce axes, read collection."""

from __future__ import annotations

from typing import Any

from ember.te.reduction import Reduce
from ember.te.tensor import IterVar, Tensor
from ember.tir import expr as E
from ember.tir.functor import Mutator, Visitor, substitute


def fresh_reduce_body(body: E.PrimExpr, vmap: dict[E.Var, E.PrimExpr]) -> E.PrimExpr:
    """``body`` with ``vmap`` applied and every reduction axis replaced by a new IterVar
    (a cache_write stage owns its own reduction loops)."""
    if isinstance(body, Reduce):
        new_axes = tuple(IterVar(E.Var(a.name), a.dom, a.kind) for a in body.axis)
        full = dict(vmap)
        full.update({a.var: n.var for a, n in zip(body.axis, new_axes, strict=True)})
        return Reduce(
            body.combiner,
            substitute(body.source, full),
            new_axes,
            None if body.condition is None else substitute(body.condition, full),
        )
    return substitute(body, vmap)


class _Inline(Mutator):
    """Replace reads of inlined tensors by their (recursively inlined) expressions."""

    def __init__(self, inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]]) -> None:
        self.inlined = inlined

    def visit_ProducerLoad(self, e: E.ProducerLoad) -> E.PrimExpr:
        e = self.generic(e)
        hit = self.inlined.get(e.producer)
        if hit is None:
            return e
        params, body = hit
        return self.expr(substitute(body, dict(zip(params, e.indices, strict=True))))


def inline_tensors(
    exprs: tuple[E.PrimExpr, ...], inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]]
) -> tuple[E.PrimExpr, ...]:
    if not inlined:
        return exprs
    m = _Inline(inlined)
    return tuple(m.expr(e) for e in exprs)


def producer_loads(exprs: Any) -> list[E.ProducerLoad]:
    """Every ProducerLoad under ``exprs`` (with repeats, in visit order)."""
    out: list[E.ProducerLoad] = []

    class _Collect(Visitor):
        def visit_ProducerLoad(self, e: E.ProducerLoad) -> None:
            out.append(e)
            self.generic(e)

    v = _Collect()
    for e in exprs if isinstance(exprs, tuple | list) else (exprs,):
        v.expr(e)
    return out
