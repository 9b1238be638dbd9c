"""Bound inference: the loop ranges of every stage, and the relations between its axes.

A stage computed at the root covers its whole domain. A stage attached with
``compute_at(consumer, axis)`` covers only the region the consumer reads during
one iteration of ``axis``: the consumer's loops outside (and at) ``axis`` stay
symbolic, the loops inside are relaxed over their ranges, and the consumer's
index expressions are bounded by interval arithmetic (as TVM's InferBound).

    C[i] reads P[i + 0..2]; split i by 4 and attach P at i.outer
      -> P covers [i.outer*4, i.outer*4 + 6), extent 6

Extents always come out constant (a symbolic width is bounded by its maximum), so
an attached stage's buffer has a static shape; its ``min`` may be symbolic.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.errors import LoweringError
from ember.te.schedule import Fuse, Split, Stage
from ember.te.tensor import IterVar
from ember.tir import expr as E
from ember.tir.arith import Interval, bound_of, to_linear
from ember.tir.functor import substitute, uses_var
from ember.tir.printer import print_expr
from ember.tir.simplify import simplify


@dataclass
class StageBounds:
    """Ranges of a stage's root axes (``mins`` symbolic, ``extents`` ints) and its leaves."""

    mins: dict[IterVar, E.PrimExpr]
    extents: dict[IterVar, int]  # every iter var of the stage (root, derived, leaf)
    covered: dict[IterVar, int]  # how many values the leaf loops really run per root axis
    values: dict[IterVar, E.PrimExpr]  # root (and derived) axis -> offset from its min

    def absolute(self, iv: IterVar) -> E.PrimExpr:
        """The value of root axis ``iv`` inside the loop nest."""
        m = self.mins[iv]
        v = self.values[iv]
        return v if isinstance(m, E.IntImm) and m.value == 0 else m + v


def const_int(e: E.PrimExpr, what: str) -> int:
    e = simplify(e)
    if not isinstance(e, E.IntImm):
        raise LoweringError(
            f"{what} is {print_expr(e)}, not a constant",
            hint="ember's tensor expressions need static shapes; bind symbolic sizes first",
        )
    return e.value


def leaf_extents(stage: Stage, root_extents: dict[IterVar, int]) -> dict[IterVar, int]:
    """Pass extents down the split/fuse relations to every axis of ``stage``."""
    ext = dict(root_extents)
    for rel in stage.relations:
        if isinstance(rel, Split):
            n = ext[rel.parent]
            if rel.factor is not None:
                ext[rel.outer], ext[rel.inner] = -(-n // rel.factor), rel.factor
            else:
                assert rel.nparts is not None
                ext[rel.inner] = -(-n // rel.nparts)
                ext[rel.outer] = rel.nparts
        else:
            ext[rel.fused] = ext[rel.outer] * ext[rel.inner]
    return ext


def pass_up(
    stage: Stage, ext: dict[IterVar, int]
) -> tuple[dict[IterVar, E.PrimExpr], dict[IterVar, int]]:
    """Values of every axis in terms of the leaf loop variables, and covered extents.

    A leaf of extent 1 has no loop: its value is 0.
    """
    values: dict[IterVar, E.PrimExpr] = {}
    covered: dict[IterVar, int] = {}
    for leaf in stage.leaf_iter_vars:
        values[leaf] = E.const(0) if ext[leaf] == 1 else leaf.var
        covered[leaf] = ext[leaf]
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            factor = ext[rel.inner]
            o, i = values[rel.outer], values[rel.inner]
            values[rel.parent] = simplify(o * factor + i)
            covered[rel.parent] = (covered[rel.outer] - 1) * factor + covered[rel.inner]
        else:
            assert isinstance(rel, Fuse)
            n_in = ext[rel.inner]
            f = values[rel.fused]
            values[rel.outer] = simplify(f // n_in)
            values[rel.inner] = simplify(f % n_in)
            cf = covered[rel.fused]
            # An empty axis (extent 0) makes the fused loop empty: nothing is covered.
            covered[rel.outer] = -(-cf // n_in) if n_in else 0
            covered[rel.inner] = n_in if cf >= n_in else cf
    return values, covered


def make_bounds(
    stage: Stage, mins: dict[IterVar, E.PrimExpr], root_ext: dict[IterVar, int]
) -> StageBounds:
    ext = leaf_extents(stage, root_ext)
    values, covered = pass_up(stage, ext)
    return StageBounds(dict(mins), ext, covered, values)


def _relaxed_interval(
    e: E.PrimExpr, relaxed: dict[E.Var, int], bounds: dict[E.Var, Interval]
) -> tuple[E.PrimExpr, E.PrimExpr]:
    """Symbolic ``(lo, hi)`` of ``e`` when each variable in ``relaxed`` ranges over
    ``[0, extent)`` and every other variable stays fixed."""
    e = simplify(e, bounds)
    if not uses_var(e, lambda v: v in relaxed):
        return e, e
    lin = to_linear(e) if E.is_int(e.dtype) else None
    if lin is None:
        lo, hi = bound_of(e, bounds)
        if lo is None or hi is None:
            raise LoweringError(f"cannot bound the index {e!r}")
        return E.const(lo), E.const(hi)
    lo_e: E.PrimExpr = E.const(lin.const)
    hi_e: E.PrimExpr = E.const(lin.const)
    for term, c in lin.terms.items():
        if not uses_var(term, lambda v: v in relaxed):
            lo_e, hi_e = lo_e + term * c, hi_e + term * c
            continue
        if isinstance(term, E.Var):
            t_lo, t_hi = E.const(0), E.const(relaxed[term] - 1)
        elif isinstance(term, E.FloorDiv) and _monotone(term.a, relaxed) and _pos_const(term.b):
            at_min = {v: E.const(0) for v in relaxed}
            at_max = {v: E.const(n - 1) for v, n in relaxed.items()}
            t_lo = simplify(substitute(term, at_min), bounds)
            t_hi = simplify(substitute(term, at_max), bounds)
        else:
            lo, hi = bound_of(term, bounds)
            if lo is None or hi is None:
                raise LoweringError(f"cannot bound the index term {term!r}")
            t_lo, t_hi = E.const(lo), E.const(hi)
        if c >= 0:
            lo_e, hi_e = lo_e + t_lo * c, hi_e + t_hi * c
        else:
            lo_e, hi_e = lo_e + t_hi * c, hi_e + t_lo * c
    return simplify(lo_e, bounds), simplify(hi_e, bounds)


def _pos_const(e: E.PrimExpr) -> bool:
    return isinstance(e, E.IntImm) and e.value > 0


def _monotone(e: E.PrimExpr, relaxed: dict[E.Var, int]) -> bool:
    """True when ``e`` is linear with non-negative coefficients on the relaxed variables."""
    lin = to_linear(e)
    for term, c in lin.terms.items():
        if uses_var(term, lambda v: v in relaxed) and (not isinstance(term, E.Var) or c < 0):
            return False
    return True


def union_min(a: E.PrimExpr | None, b: E.PrimExpr, bounds: dict[E.Var, Interval]) -> E.PrimExpr:
    if a is None:
        return b
    d = simplify(a - b, bounds)
    if isinstance(d, E.IntImm):
        return a if d.value <= 0 else b
    return simplify(E.min_(a, b), bounds)


def union_max(a: E.PrimExpr | None, b: E.PrimExpr, bounds: dict[E.Var, Interval]) -> E.PrimExpr:
    if a is None:
        return b
    d = simplify(a - b, bounds)
    if isinstance(d, E.IntImm):
        return a if d.value >= 0 else b
    return simplify(E.max_(a, b), bounds)


def region_of(
    index_lists: list[tuple[E.PrimExpr, ...]],
    full: list[int],
    relaxed: dict[E.Var, int],
    bounds: dict[E.Var, Interval],
    clamp: bool = True,
) -> list[tuple[E.PrimExpr, int]]:
    """The (min, constant extent) per dimension covering every index tuple; with ``clamp``
    the window is kept inside ``[0, full)``."""
    out = []
    for d, n in enumerate(full):
        lo: E.PrimExpr | None = None
        hi: E.PrimExpr | None = None
        for idx in index_lists:
            l_d, h_d = _relaxed_interval(idx[d], relaxed, bounds)
            lo, hi = union_min(lo, l_d, bounds), union_max(hi, h_d, bounds)
        assert lo is not None and hi is not None
        width = simplify(hi - lo + 1, bounds)
        if isinstance(width, E.IntImm):
            extent = width.value
        else:
            extent = bound_of(width, bounds)[1] or n
        if extent >= n:
            out.append((E.const(0), n))
            continue
        extent = max(extent, 1)
        lo_lo, lo_hi = bound_of(lo, bounds)
        if clamp and (lo_lo is None or lo_lo < 0 or lo_hi is None or lo_hi + extent > n):
            # Out-of-range consumer iterations (under a guard) may ask for more than exists:
            # slide the window back into the domain, keeping its constant extent.
            lo = simplify(E.max_(E.min_(lo, n - extent), 0), bounds)
        out.append((lo, extent))
    return out
