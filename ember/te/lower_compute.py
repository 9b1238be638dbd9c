"""The loop nest of one compute stage: leaf loops, reduction init/update, guards,
attachments, and the tensorized region a tensor intrinsic replaces.

For a reduction with leaf order ``[i, k, j]`` the init goes just before the first
reduction loop, with its own copies of the data-parallel loops inside it::

    for i:
      for j: C[i, j] = 0
      for k:
        for j: C[i, j] = C[i, j] + A[i, k] * B[k, j]

The schedule-wide lowering (:mod:`ember.te.lower`) calls :func:`compute_stmt` per
stage and hands itself over as a :class:`LoweringState`; this module knows it only
through that protocol, so the import points one way (lower -> lower_compute).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from ember.errors import ScheduleError
from ember.te.bound import StageBounds
from ember.te.reduction import Reduce
from ember.te.schedule import IterAttr, Split, Stage
from ember.te.tensor import REDUCE, IterVar, Tensor
from ember.te.tensorize import RegionView, TensorIntrin
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.arith import Interval, to_linear
from ember.tir.buffer import Buffer
from ember.tir.functor import substitute, uses_var
from ember.tir.simplify import simplify


class LoweringState(Protocol):
    """What lowering one stage reads from the lowering of the whole schedule."""

    bounds: dict[Stage, StageBounds]  # loop extents and root-axis values per stage
    body: dict[Stage, tuple[E.PrimExpr, ...]]  # compute bodies, inlined stages substituted
    buffers: dict[Tensor, Buffer]  # the buffer each tensor lives in
    buffer_min: dict[Tensor, tuple[E.PrimExpr, ...]]  # where a region buffer starts
    var_bounds: dict[E.Var, Interval]  # ranges of the loop variables
    prelude: list[str]  # C snippets (tensor intrinsics) the function needs

    def load(self, e: E.PrimExpr) -> E.PrimExpr:
        """``e`` with tensor reads turned into buffer loads."""
        ...

    def attach_wrap(self, st: Stage, iv: IterVar, body: S.Stmt) -> S.Stmt:
        """``body`` preceded by the stages attached at loop ``iv`` of ``st``."""
        ...


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
    lw: LoweringState,
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


def compute_stmt(lw: LoweringState, st: Stage) -> S.Stmt:
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
    lw: LoweringState,
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


# ----------------------------------------------------------------------------- tensorize


def _strides(buf: Buffer) -> tuple[int, ...]:
    if buf.strides:
        return tuple(s.value for s in buf.strides)  # type: ignore[attr-defined]
    shape = [d.value for d in buf.shape]  # type: ignore[attr-defined]
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * shape[d + 1]
    return tuple(out)


def _region_extent(value: E.PrimExpr, region: dict[E.Var, int], stage: Stage, axis: IterVar) -> int:
    """How many consecutive values ``value`` takes over the region loops (mixed radix)."""
    if not uses_var(value, lambda v: v in region):
        return 1
    lin = to_linear(simplify(value))
    parts = []
    for term, c in lin.terms.items():
        if not uses_var(term, lambda v: v in region):
            continue
        if not isinstance(term, E.Var):
            raise ScheduleError(
                f"stage {stage.name!r}: tensorize cannot cover axis {axis.name!r}: it is "
                f"derived non-linearly ({term!r}) inside the tensorized loops",
                hint="do not fuse axes inside the tensorized region",
            )
        parts.append((c, region[term]))
    parts.sort(key=lambda p: p[0])
    span = 1
    for c, n in parts:
        if c != span:
            raise ScheduleError(
                f"stage {stage.name!r}: tensorize: axis {axis.name!r} is not covered as one "
                "contiguous range by the tensorized loops",
                hint="split so the tensorized loops are the inner parts of the axes",
            )
        span *= n
    return span


class _Mismatch(Exception):
    pass


def tensorize_stmts(
    lw: LoweringState,
    st: Stage,
    t_pos: int,
    vmap: dict[E.Var, E.PrimExpr],
    store_idx: tuple[E.PrimExpr, ...],
) -> tuple[S.Stmt | None, S.Stmt | None, S.Stmt | None]:
    b = lw.bounds[st]
    leaves = st.leaf_iter_vars
    intrin: TensorIntrin = st.iter_attrs[leaves[t_pos]].tensor_intrin
    iop = intrin.op
    where = f"stage {st.name!r}: tensorize at {leaves[t_pos].name!r} with {intrin.name!r}"
    region = {iv.var: b.extents[iv] for iv in leaves[t_pos:] if b.extents[iv] > 1}
    zero_region = {v: E.const(0) for v in region}

    def match_axes(stage_axes: list[IterVar], intrin_axes: tuple[IterVar, ...], what: str) -> dict:
        ext = [(r, _region_extent(b.values[r], region, st, r)) for r in stage_axes]
        covered = [(r, n) for r, n in ext if n > 1]
        wanted = [iv for iv in intrin_axes if iv.extent > 1]
        if [n for _, n in covered] != [iv.extent for iv in wanted]:
            raise ScheduleError(
                f"{where}: the tensorized loops cover {what} extents "
                f"{[(r.name, n) for r, n in covered]} but the intrinsic expects "
                f"{[(iv.name, iv.extent) for iv in wanted]}",
                hint="split the axes so the inner loops have exactly the intrinsic's extents",
            )
        return {r: iv for (r, _), iv in zip(covered, wanted, strict=True)}

    spatial = match_axes(st.axis, iop.axis, "data-parallel")
    reduce = match_axes(st.reduce_axis, iop.reduce_axis, "reduction")
    mapping = {**spatial, **reduce}
    # stage root value = base (outer loops only) + intrinsic axis variable
    sub: dict[E.Var, E.PrimExpr] = {}
    for r in st.axis + st.reduce_axis:
        base = simplify(substitute(b.absolute(r), zero_region))
        sub[r.var] = base + mapping[r].var if r in mapping else base
    intrin_vars = {iv.var for iv in iop.axis + iop.reduce_axis}
    for iv in iop.axis + iop.reduce_axis:
        if iv.extent == 1:
            intrin_vars.discard(iv.var)
    ibody = substitute(
        iop.body[0], {iv.var: E.const(0) for iv in iop.axis + iop.reduce_axis if iv.extent == 1}
    )

    # Index arithmetic like (base + i) // 8 folds only knowing the intrinsic axes' ranges.
    ibounds = dict(lw.var_bounds)
    ibounds.update({iv.var: (0, iv.extent - 1) for iv in iop.axis + iop.reduce_axis})
    tensor_map: dict[Tensor, Tensor] = {}
    offsets: dict[Tensor, tuple[E.PrimExpr, ...]] = {}

    def same(a: Any, c: Any) -> None:
        if isinstance(a, E.ProducerLoad) and isinstance(c, E.ProducerLoad):
            prev = tensor_map.setdefault(c.producer, a.producer)
            if prev is not a.producer or len(a.indices) != len(c.indices):
                raise _Mismatch(f"{a.producer.name} vs {c.producer.name}")
            offs = []
            for x, y in zip(a.indices, c.indices, strict=True):
                d = simplify(simplify(substitute(x, sub), ibounds) - simplify(y, ibounds), ibounds)
                if uses_var(d, lambda v: v in intrin_vars):
                    raise _Mismatch(f"index {x!r} of {a.producer.name} vs {y!r}")
                offs.append(d)
            offsets.setdefault(c.producer, tuple(offs))
            return
        if type(a) is not type(c):
            raise _Mismatch(f"{type(a).__name__} vs {type(c).__name__}")
        if isinstance(a, Reduce):
            if a.combiner.name != c.combiner.name or (a.condition is None) != (c.condition is None):
                raise _Mismatch(f"reduction {a.combiner.name} vs {c.combiner.name}")
            same(a.source, c.source)
            return
        if isinstance(a, E.Var):
            if substitute(a, sub) is not c:
                raise _Mismatch(f"variable {a.name} vs {c.name}")
            return
        if not dataclasses.is_dataclass(a):
            if a != c:
                raise _Mismatch(f"{a!r} vs {c!r}")
            return
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(c, f.name))

    try:
        same(lw.body[st][0], ibody)
    except _Mismatch as err:
        raise ScheduleError(
            f"{where}: the loop nest does not compute what the intrinsic does ({err})",
            hint="the stage's expression must equal the intrinsic's compute, axis for axis",
        ) from None

    def view(real: Tensor, decl: Tensor, start: tuple[E.PrimExpr, ...]) -> RegionView:
        buf = lw.buffers[real]
        mins = lw.buffer_min[real]
        idx = tuple(simplify(s - m, lw.var_bounds) for s, m in zip(start, mins, strict=True))
        shape = tuple(int(d.value) for d in decl.shape)  # type: ignore[attr-defined]
        return RegionView(buf, idx, shape, _strides(buf), buf.dtype, buf.name)

    ins = []
    for decl in iop.input_tensors:
        if decl not in tensor_map:
            raise ScheduleError(f"{where}: the intrinsic's input {decl.name!r} is never read")
        ins.append(view(tensor_map[decl], decl, offsets[decl]))
    out_t = st.outputs[0]
    out_start = tuple(
        simplify(substitute(i, zero_region)) + lw.buffer_min[out_t][k]
        for k, i in enumerate(store_idx)
    )
    outs = [view(out_t, iop.outputs[0], out_start)]
    if intrin.c_prelude:
        lw.prelude.append(intrin.c_prelude)
    result = intrin.impl(ins, outs)
    parts = result if isinstance(result, tuple) else (result, None, None)
    if len(parts) != 3:
        raise ScheduleError(
            f"{where}: the implementation returned {len(parts)} values; expected a call or "
            "(body, reset, update)"
        )
    return tuple(  # type: ignore[return-value]
        None if p is None else S.Evaluate(p) if isinstance(p, E.PrimExpr) else p for p in parts
    )
