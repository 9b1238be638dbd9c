"""Tensor intrinsics: replace a loop nest by a hand-written micro-kernel call.

>>> intrin = decl_tensor_intrin(Cm.op, impl, name="gemm_6x16", c_prelude=C_SOURCE)
>>> s[C].tensorize(ii, intrin)

``Cm`` is a small te.compute over placeholders describing what the kernel does.
At lowering, the loops from the tensorized axis inward must compute the same
expression over the same extents; then ``impl(ins, outs)`` is called with one
:class:`RegionView` per input and output (the part of the real buffer the nest
touches) and returns the call, or ``(body, reset, update)`` for a reduction whose
outer reduction loops stay outside (``reset`` zeroes, ``update`` accumulates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ember.errors import ScheduleError
from ember.te.reduction import Reduce
from ember.te.schedule import Stage
from ember.te.tensor import REDUCE, ComputeOp, IterVar, Operation, Tensor
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.arith import to_linear
from ember.tir.buffer import Buffer
from ember.tir.functor import substitute, uses_var
from ember.tir.simplify import simplify

if TYPE_CHECKING:
    from ember.te.lower import _Lowering


@dataclass(frozen=True, eq=False)
class TensorIntrin:
    """A micro-kernel: what it computes (``op``) and how to call it (``impl``)."""

    name: str
    op: ComputeOp
    impl: Callable[[list[RegionView], list[RegionView]], Any]
    c_prelude: str | None = None


def decl_tensor_intrin(
    op: Operation | Tensor,
    impl: Callable[[list[RegionView], list[RegionView]], Any],
    name: str = "tensor_intrin",
    c_prelude: str | None = None,
) -> TensorIntrin:
    """Declare a tensor intrinsic computing ``op`` (a te.compute over placeholders)."""
    op = op.op if isinstance(op, Tensor) else op
    if not isinstance(op, ComputeOp) or op.num_outputs != 1:
        raise ScheduleError(
            f"decl_tensor_intrin {name!r}: expected a single-output te.compute, got {op!r}"
        )
    for t in op.input_tensors:
        if type(t.op).__name__ != "PlaceholderOp":
            raise ScheduleError(
                f"decl_tensor_intrin {name!r}: input {t.name!r} must be a te.placeholder"
            )
    return TensorIntrin(name, op, impl, c_prelude)


@dataclass(frozen=True)
class RegionView:
    """The part of a real buffer an intrinsic reads or writes.

    ``shape`` is the intrinsic's; ``strides`` are the real buffer's (in elements) for
    those dimensions; ``access_ptr()`` points at the region's first element.
    """

    buffer: Buffer
    start: tuple[E.PrimExpr, ...]
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str
    name: str

    def access_ptr(self, offset: Any = None) -> E.PrimExpr:
        idx = self.start
        if offset is not None:
            extra = offset if isinstance(offset, tuple | list) else (offset,)
            pad = (0,) * (len(idx) - len(extra))
            idx = tuple(simplify(a + b) for a, b in zip(idx, (*pad, *extra), strict=True))
        return E.Call("handle", "tir.address_of", (E.BufferLoad(self.buffer, idx),))


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
    lw: _Lowering,
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


__all__ = ["RegionView", "TensorIntrin", "decl_tensor_intrin", "REDUCE"]
