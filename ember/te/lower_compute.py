"""The loop nest of one compute stage: leaf loops, reduction init/update, guards, attachments.

For a reduction with leaf order ``[i, k, j]`` the init goes just before the first
reduction loop, with its own copies of the data-parallel loops inside it::

    for i:
      for j: C[i, j] = 0
      for k:
        for j: C[i, j] = C[i, j] + A[i, k] * B[k, j]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.errors import ScheduleError
from ember.te.reduction import Reduce
from ember.te.schedule import IterAttr, Split, Stage
from ember.te.tensor import REDUCE, IterVar
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.functor import substitute, uses_var
from ember.tir.simplify import simplify

if TYPE_CHECKING:
    from ember.te.lower import _Lowering

Guard = tuple[E.PrimExpr, set[E.Var]]


def _guard_depth(vars_used: set[E.Var], levels: list[IterVar]) -> int:
    depth = -1
    for k, iv in enumerate(levels):
        if iv.var in vars_used:
            depth = k
    return depth


def _vars_in(e: E.PrimExpr, candidates: list[IterVar]) -> set[E.Var]:
    return {iv.var for iv in candidates if uses_var(e, iv.var)}


def build_nest(
    lw: _Lowering,
    st: Stage,
    levels: list[IterVar],
    inner: S.Stmt,
    guards: list[Guard],
    pre: dict[int, list[S.Stmt]] | None = None,
    attach: bool = True,
) -> S.Stmt:
    """Loops over ``levels`` (outer first) around ``inner``; each guard sits just inside the
    deepest loop it depends on; ``pre[d]`` goes before loop ``d``; attached stages first."""
    pre = pre or {}
    b = lw.bounds[st]
    by_depth: dict[int, list[E.PrimExpr]] = {}
    for cond, used in guards:
        by_depth.setdefault(_guard_depth(used, levels), []).append(cond)

    def guard(d: int, s: S.Stmt) -> S.Stmt:
        conds = by_depth.get(d, [])
        if not conds:
            return s
        c = conds[0]
        for more in conds[1:]:
            c = E.And(c, more)
        return S.IfThenElse(c, s)

    s = inner
    for d in reversed(range(len(levels))):
        iv = levels[d]
        s = S.seq(*pre.get(d + 1, []), s)
        s = guard(d, s)
        if attach:
            s = lw.attach_wrap(st, iv, s)
        s = _loop(iv, b.extents[iv], st.iter_attrs.get(iv), s)
    s = S.seq(*pre.get(0, []), s)
    return guard(-1, s)


def _loop(iv: IterVar, extent: int, attr: IterAttr | None, body: S.Stmt) -> S.Stmt:
    if extent == 1:
        return body  # no loop: the axis' value is 0 (see bound.pass_up)
    kind = attr.kind if attr is not None else S.ForKind.SERIAL
    tag = attr.thread_tag if attr is not None else ""
    loop: S.Stmt = S.For(iv.var, E.const(0), E.const(extent), kind, body, thread_tag=tag)
    if attr is not None:
        for name, value in reversed(attr.pragmas):
            loop = S.AttrStmt(iv.var, f"pragma_{name}", value, loop)
    return loop


def compute_stmt(lw: _Lowering, st: Stage) -> S.Stmt:
    b = lw.bounds[st]
    body = lw.body[st]
    leaves = list(st.leaf_iter_vars)
    t_pos = next(
        (
            k
            for k, iv in enumerate(leaves)
            if iv in st.iter_attrs and st.iter_attrs[iv].tensor_intrin
        ),
        None,
    )
    loop_leaves = leaves if t_pos is None else leaves[:t_pos]
    vmap = {r.var: b.absolute(r) for r in st.axis + st.reduce_axis}
    # An attached stage stores into a buffer of its region (offset by the region's min);
    # an attached stage that is also a function argument stores into the full array.
    out_min = lw.buffer_min[st.outputs[0]]
    store_idx = tuple(
        simplify(b.absolute(r) - m, lw.var_bounds) for r, m in zip(st.axis, out_min, strict=True)
    )
    bufs = [lw.buffers[t] for t in st.outputs]

    guards: list[Guard] = []
    for r in st.axis + st.reduce_axis:
        for x in _guard_targets(st, b, r):
            cond = simplify(b.values[x] < b.extents[x], lw.var_bounds)
            if isinstance(cond, E.IntImm) and cond.value:
                continue
            guards.append((cond, _vars_in(cond, leaves)))
    spatial_guards = [g for g in guards if not any(v in g[1] for v in _reduce_vars(st, leaves))]

    red = body[0] if isinstance(body[0], Reduce) else None
    p = next((k for k, iv in enumerate(leaves) if iv.kind == REDUCE), None)

    if t_pos is not None:
        from ember.te.tensorize import tensorize_stmts

        if any(_guard_depth(used, leaves) >= t_pos for _, used in guards):
            raise ScheduleError(
                f"stage {st.name!r}: tensorize at {leaves[t_pos].name!r} covers a loop with a "
                "non-dividing split (its iterations need a guard)",
                hint="choose split factors that divide the extents inside the tensorized region",
            )
        whole, reset, update = tensorize_stmts(lw, st, t_pos, vmap, store_idx)
        if red is not None and p is not None and p < t_pos:
            if update is None:
                raise ScheduleError(
                    f"stage {st.name!r}: the reduction starts outside the tensorized loops, so "
                    f"intrinsic {st.iter_attrs[leaves[t_pos]].tensor_intrin.name!r} needs an "
                    "update part",
                    hint="return (body, reset, update) from the intrinsic's implementation",
                )
            init = S.BufferStore(bufs[0], red.combiner.identity(red.dtype), store_idx)
            return _reduction_nest(
                lw, st, leaves, loop_leaves, p, init, update, guards, spatial_guards
            )
        inner = whole if whole is not None else S.seq(reset, update)
        return build_nest(lw, st, loop_leaves, inner, guards)

    if red is None:
        stores = [
            S.BufferStore(buf, lw.load(substitute(e, vmap)), store_idx)
            for buf, e in zip(bufs, body, strict=True)
        ]
        return build_nest(lw, st, loop_leaves, S.seq(*stores), guards)

    buf = bufs[0]
    cur = E.BufferLoad(buf, store_idx)
    src = lw.load(substitute(red.source, vmap))
    update: S.Stmt = S.BufferStore(buf, red.combiner.combine(cur, src), store_idx)
    if red.condition is not None:
        update = S.IfThenElse(lw.load(substitute(red.condition, vmap)), update)
    init = S.BufferStore(buf, red.combiner.identity(red.dtype), store_idx)
    if p is None:  # no reduction loop left (all reduction axes have extent 1)
        return build_nest(lw, st, loop_leaves, S.seq(init, update), guards)
    return _reduction_nest(lw, st, leaves, loop_leaves, p, init, update, guards, spatial_guards)


def _guard_targets(st: Stage, b: Any, x: IterVar) -> list[IterVar]:
    """The axes whose range to check so that axis ``x`` stays in its extent.

    When ``x`` is split by a factor that divides it and only its outer part overshoots,
    checking the outer part is equivalent and sits further out of the loop nest (so an
    inner tensorized or vectorized region stays guard-free)."""
    if b.covered[x] <= b.extents[x]:
        return []
    for rel in st.relations:
        if isinstance(rel, Split) and rel.parent is x:
            factor = b.extents[rel.inner]
            exact_inner = b.covered[rel.inner] == factor
            if b.extents[rel.outer] * factor == b.extents[x] and exact_inner:
                return _guard_targets(st, b, rel.outer)
            return [x]
    return [x]


def _reduce_vars(st: Stage, leaves: list[IterVar]) -> set[E.Var]:
    return {iv.var for iv in leaves if iv.kind == REDUCE}


def _reduction_nest(
    lw: _Lowering,
    st: Stage,
    leaves: list[IterVar],
    loop_leaves: list[IterVar],
    p: int,
    init: S.Stmt,
    update: S.Stmt,
    guards: list[Guard],
    spatial_guards: list[Guard],
) -> S.Stmt:
    init_levels = [iv for iv in leaves[p:] if iv.kind != REDUCE]
    init_guards = [g for g in spatial_guards if _guard_depth(g[1], leaves) >= p]
    init_nest = build_nest(lw, st, init_levels, init, init_guards, attach=False)
    return build_nest(lw, st, loop_leaves, update, guards, pre={p: [init_nest]})
