"""Schedules: how each operation's loops are split, ordered, placed and annotated.

>>> s = create_schedule(C.op)
>>> io, ii = s[C].split(C.op.axis[0], factor=32)
>>> s[C].reorder(io, C.op.axis[1], ii)
>>> s[C].vectorize(ii)

A :class:`Stage` per operation keeps its root axes, the relations that derive
new axes from them (split, fuse), the current loop order (the *leaf* axes), and
where the stage is computed (at the root, inlined, or inside a consumer's loop).
Every primitive checks its preconditions and raises :class:`ScheduleError`
naming the stage and axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.errors import ScheduleError
from ember.te.exprutil import fresh_reduce_body
from ember.te.tensor import (
    DATA_PAR,
    REDUCE,
    THREAD,
    ComputeOp,
    ExternOp,
    IterVar,
    Operation,
    PlaceholderOp,
    Range,
    Tensor,
    make_compute,
    read_tensors,
)
from ember.te.tensorize import TensorIntrin
from ember.tir import expr as E
from ember.tir.functor import Mutator
from ember.tir.stmt import ForKind

# ----------------------------------------------------------------------------- relations


@dataclass(frozen=True, eq=False)
class Split:
    """``parent = outer * factor + inner`` (``factor`` given, or derived from ``nparts``)."""

    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int | None
    nparts: int | None


@dataclass(frozen=True, eq=False)
class Fuse:
    """``fused = outer * extent(inner) + inner``."""

    outer: IterVar
    inner: IterVar
    fused: IterVar


@dataclass
class IterAttr:
    """Per-leaf annotations: loop kind, thread tag, pragmas, tensorize intrinsic."""

    kind: ForKind = ForKind.SERIAL
    thread_tag: str = ""
    pragmas: list[tuple[str, Any]] = field(default_factory=list)
    tensor_intrin: Any = None


def _axis_name(iv: Any) -> str:
    return iv.name if isinstance(iv, IterVar) else repr(iv)


@dataclass(eq=False)
class Stage:
    """The schedule of one operation (``s[C]``)."""

    op: Operation
    schedule: Schedule
    axis: list[IterVar]
    reduce_axis: list[IterVar]
    body: tuple[E.PrimExpr, ...] = ()
    all_iter_vars: list[IterVar] = field(default_factory=list)
    leaf_iter_vars: list[IterVar] = field(default_factory=list)
    relations: list[Split | Fuse] = field(default_factory=list)
    iter_attrs: dict[IterVar, IterAttr] = field(default_factory=dict)
    attach_type: str = "root"  # "root" | "inline" | "scope"
    attach_stage: Stage | None = None
    attach_ivar: IterVar | None = None
    scope: str = "global"
    is_output: bool = False
    storage_aligns: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return self.op.outputs  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Stage({self.name})"

    # ------------------------------------------------------------------ checks
    def _error(self, what: str, hint: str | None = None) -> ScheduleError:
        return ScheduleError(f"stage {self.name!r}: {what}", hint=hint)

    def _schedulable(self, primitive: str) -> None:
        if isinstance(self.op, PlaceholderOp):
            raise self._error(
                f"{primitive} on a placeholder: inputs have no loops to schedule",
                hint="schedule the stages that compute tensors",
            )

    def _leaf(self, iv: Any, primitive: str) -> IterVar:
        self._schedulable(primitive)
        if not isinstance(iv, IterVar):
            raise self._error(
                f"{primitive} expects an IterVar (an axis), got {type(iv).__name__} {iv!r}",
                hint="use stage.op.axis[k], stage.op.reduce_axis[k] or an axis split/fuse returned",
            )
        if iv not in self.leaf_iter_vars:
            if iv in self.all_iter_vars:
                raise self._error(
                    f"{primitive}: axis {iv.name!r} was already split or fused (it is not a leaf "
                    "loop any more)",
                    hint="use the axes that split/fuse returned",
                )
            raise self._error(
                f"{primitive}: axis {iv.name!r} does not belong to this stage",
                hint=f"its axes are {[a.name for a in self.leaf_iter_vars]}",
            )
        return iv

    def _attr(self, iv: IterVar) -> IterAttr:
        return self.iter_attrs.setdefault(iv, IterAttr())

    # ------------------------------------------------------------------ loop structure
    def split(
        self, parent: IterVar, factor: int | None = None, nparts: int | None = None
    ) -> tuple[IterVar, IterVar]:
        """Split ``parent`` into ``(outer, inner)`` loops: ``inner`` has ``factor`` iterations
        (or ``outer`` has ``nparts``). A factor that does not divide the extent adds a guard.
        """
        self._leaf(parent, "split")
        if (factor is None) == (nparts is None):
            raise self._error(f"split of {parent.name!r}: give exactly one of factor= or nparts=")
        value = factor if factor is not None else nparts
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self._error(
                f"split of {parent.name!r}: {'factor' if factor is not None else 'nparts'} must be "
                f"a positive int, got {value!r}"
            )
        outer = IterVar(E.Var(parent.name + ".outer"), None, parent.kind)
        inner = IterVar(E.Var(parent.name + ".inner"), None, parent.kind)
        self.relations.append(Split(parent, outer, inner, factor, nparts))
        pos = self.leaf_iter_vars.index(parent)
        self.leaf_iter_vars[pos : pos + 1] = [outer, inner]
        self.all_iter_vars += [outer, inner]
        return outer, inner

    def tile(
        self, x: IterVar, y: IterVar, x_factor: int, y_factor: int
    ) -> tuple[IterVar, IterVar, IterVar, IterVar]:
        """Split ``x`` and ``y`` and order the loops ``x.outer, y.outer, x.inner, y.inner``."""
        xo, xi = self.split(x, factor=x_factor)
        yo, yi = self.split(y, factor=y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def fuse(self, *axes: IterVar) -> IterVar:
        """Fuse adjacent leaf loops (outer first) into one loop."""
        if len(axes) == 1 and isinstance(axes[0], list | tuple):
            axes = tuple(axes[0])
        if not axes:
            raise self._error("fuse needs at least one axis")
        for a in axes:
            self._leaf(a, "fuse")
        if len(axes) == 1:
            return axes[0]
        positions = [self.leaf_iter_vars.index(a) for a in axes]
        if positions != list(range(positions[0], positions[0] + len(axes))):
            raise self._error(
                f"fuse: axes {[a.name for a in axes]} are not adjacent loops in outer-to-inner "
                f"order (the loop order is {[a.name for a in self.leaf_iter_vars]})",
                hint="reorder them next to each other first",
            )
        kinds = {a.kind for a in axes}
        if len(kinds) > 1:
            raise self._error(
                f"fuse: cannot fuse a reduction axis with a data-parallel axis "
                f"({[a.name for a in axes]})"
            )
        fused = axes[0]
        for a in axes[1:]:
            new = IterVar(E.Var(f"{fused.name}.{a.name}.fused"), None, fused.kind)
            self.relations.append(Fuse(fused, a, new))
            self.all_iter_vars.append(new)
            fused = new
        start = positions[0]
        self.leaf_iter_vars[start : start + len(axes)] = [fused]
        return fused

    def reorder(self, *axes: IterVar) -> None:
        """Put the given leaf loops in this order (the other loops keep their places)."""
        if len(axes) == 1 and isinstance(axes[0], list | tuple):
            axes = tuple(axes[0])
        for a in axes:
            self._leaf(a, "reorder")
        if len(set(axes)) != len(axes):
            raise self._error(f"reorder: an axis is listed twice in {[a.name for a in axes]}")
        positions = sorted(self.leaf_iter_vars.index(a) for a in axes)
        for pos, a in zip(positions, axes, strict=True):
            self.leaf_iter_vars[pos] = a

    # ------------------------------------------------------------------ loop kinds
    def _set_kind(self, iv: IterVar, kind: ForKind, primitive: str, tag: str = "") -> None:
        self._leaf(iv, primitive)
        if iv.kind == REDUCE and kind in (
            ForKind.PARALLEL,
            ForKind.VECTORIZED,
            ForKind.THREAD_BINDING,
        ):
            raise self._error(
                f"{primitive}: axis {iv.name!r} is a reduction axis; its iterations depend on "
                "each other",
                hint="split or reorder so a data-parallel axis takes this role, or use "
                "cache_write / rfactor-style two-stage reductions",
            )
        attr = self._attr(iv)
        if attr.kind not in (ForKind.SERIAL, kind):
            raise self._error(f"{primitive}: axis {iv.name!r} is already marked {attr.kind.value}")
        attr.kind = kind
        attr.thread_tag = tag

    def vectorize(self, iv: IterVar) -> None:
        """Turn loop ``iv`` into vector lanes. Loops inside it keep running, on vectors (a
        reduction over ``k`` inside a vectorized ``j`` accumulates a vector), as in TVM;
        they must not be parallel, bound or vectorized themselves."""
        self._set_kind(iv, ForKind.VECTORIZED, "vectorize")

    def unroll(self, iv: IterVar) -> None:
        """Fully unroll the loop ``iv``."""
        self._set_kind(iv, ForKind.UNROLLED, "unroll")

    def parallel(self, iv: IterVar) -> None:
        """Share the iterations of ``iv`` among threads."""
        self._set_kind(iv, ForKind.PARALLEL, "parallel")

    def bind(self, iv: IterVar, thread: IterVar) -> None:
        """Bind loop ``iv`` to a GPU thread/block axis (``te.thread_axis("threadIdx.x")``)."""
        if not isinstance(thread, IterVar) or thread.kind != THREAD:
            raise self._error(f"bind: the second argument must be a te.thread_axis, got {thread!r}")
        self._set_kind(iv, ForKind.THREAD_BINDING, "bind", thread.thread_tag)

    def pragma(self, iv: IterVar, name: str, value: Any = True) -> None:
        """Annotate loop ``iv`` with ``pragma_<name>`` (an AttrStmt around the loop)."""
        self._leaf(iv, "pragma")
        self._attr(iv).pragmas.append((name, value))

    def tensorize(self, iv: IterVar, intrin: Any) -> None:
        """Replace the loop nest from ``iv`` inward with the tensor intrinsic ``intrin``
        (checked against the nest when lowering)."""
        self._leaf(iv, "tensorize")
        if not isinstance(intrin, TensorIntrin):
            raise self._error(
                f"tensorize: expected a TensorIntrin from te.decl_tensor_intrin, got {intrin!r}"
            )
        self._attr(iv).tensor_intrin = intrin

    # ------------------------------------------------------------------ placement
    def compute_at(self, parent: Stage, iv: IterVar) -> None:
        """Compute this stage inside loop ``iv`` of ``parent``, only the part that one
        iteration of ``iv`` needs (bound inference finds it).

        ``parent`` is a consumer, or a stage inside whose loops a consumer is itself
        attached (as in TVM): with ``CC = s.cache_write(C, "local")`` attached in ``C``,
        ``s[packed].compute_at(s[C], outer)`` packs, per iteration of ``outer``, what all
        the ``CC`` blocks inside it read. Attach that consumer first.

        >>> s[CC].compute_at(s[C], jo)
        >>> s[packedB].compute_at(s[C], joo)   # CC reads packedB; CC sits inside C's joo
        """
        self._schedulable("compute_at")
        if not isinstance(parent, Stage):
            raise self._error(f"compute_at: expected a Stage (s[T]), got {parent!r}")
        if parent is self:
            raise self._error("compute_at: a stage cannot be computed inside itself")
        if self.is_output:
            raise self._error(
                "compute_at: this is an output of the schedule; it must be computed at the root"
            )
        if iv not in parent.all_iter_vars:
            raise self._error(
                f"compute_at: axis {_axis_name(iv)!r} is not an axis of stage {parent.name!r}",
                hint=f"its loops are {[a.name for a in parent.leaf_iter_vars]}",
            )
        if not self._read_by(parent) and not any(
            self._read_by(st) and st.attached_inside(parent) for st in self.schedule.stages
        ):
            raise self._error(
                f"compute_at: stage {parent.name!r} does not read {self.name!r}, and no stage "
                "that reads it is attached inside its loops, so there is no place in its loops "
                "where this stage's values are needed",
                hint="compute a stage at one of its consumers, or at the stage a consumer was "
                "compute_at first",
            )
        self.attach_type, self.attach_stage, self.attach_ivar = "scope", parent, iv

    def attached_inside(self, ancestor: Stage) -> bool:
        """Is this stage computed (through a chain of compute_at) inside ``ancestor``'s loops?"""
        st: Stage | None = self
        seen: set[Stage] = set()
        while st is not None and st.attach_type == "scope" and st not in seen:
            seen.add(st)
            st = st.attach_stage
            if st is ancestor:
                return True
        return False

    def _read_by(self, consumer: Stage) -> bool:
        """Does ``consumer`` read this stage, directly or through stages it may inline?"""
        seen: set[Stage] = set()
        todo = [consumer]
        while todo:
            st = todo.pop()
            for t in read_tensors(st.body_or_inputs()):
                if t in self.outputs:
                    return True
                producer = self.schedule.stage_map.get(t.op)
                if producer is not None and producer not in seen and not producer.reduce_axis:
                    seen.add(producer)
                    todo.append(producer)
        return False

    def compute_inline(self) -> None:
        """Substitute this stage's expression into every consumer (no loops of its own)."""
        self._schedulable("compute_inline")
        if not isinstance(self.op, ComputeOp):
            raise self._error("compute_inline: only a te.compute stage can be inlined")
        if self.reduce_axis:
            raise self._error(
                "compute_inline: a reduction cannot be inlined (each element needs its own loop)",
                hint="use compute_at to place it inside its consumer's loops",
            )
        if self.is_output:
            raise self._error(
                "compute_inline: this is an output of the schedule and must be stored",
            )
        if len(self.body) > 1:
            raise self._error("compute_inline: a multi-output compute cannot be inlined")
        self.attach_type, self.attach_stage, self.attach_ivar = "inline", None, None

    def compute_root(self) -> None:
        """Compute the whole stage at the top level (undoes compute_at / compute_inline)."""
        self._schedulable("compute_root")
        self.attach_type, self.attach_stage, self.attach_ivar = "root", None, None

    def storage_align(self, iv: IterVar, factor: int, offset: int) -> None:
        """Pad the stride of the dimension of root axis ``iv`` to ``k * factor + offset``."""
        self._schedulable("storage_align")
        if iv not in self.axis:
            raise self._error(
                f"storage_align: axis {_axis_name(iv)!r} is not a root data axis of this stage",
                hint="pass stage.op.axis[k]",
            )
        if factor < 1 or not 0 <= offset < factor:
            raise self._error(
                f"storage_align: need factor >= 1 and 0 <= offset < factor, got {factor}, {offset}"
            )
        self.storage_aligns[self.axis.index(iv)] = (factor, offset)

    def set_scope(self, scope: str) -> None:
        self.scope = scope

    def body_or_inputs(self) -> Any:
        if isinstance(self.op, ExternOp):
            return [E.ProducerLoad(t, ()) for t in self.op.inputs]
        return self.body


def _make_stage(op: Operation, sch: Schedule) -> Stage:
    if isinstance(op, ComputeOp):
        axis, raxis, body = list(op.axis), list(op.reduce_axis), op.body
    else:
        axis, raxis, body = [], [], ()
    st = Stage(op, sch, axis, raxis, body)
    st.all_iter_vars = axis + raxis
    st.leaf_iter_vars = axis + raxis
    return st


class Schedule:
    """All stages of the computation that produces ``outputs`` (``s[T]`` gets a stage)."""

    def __init__(self, outputs: Sequence[Operation]) -> None:
        self.outputs = list(outputs)
        self.stages: list[Stage] = []
        self.stage_map: dict[Operation, Stage] = {}
        seen: set[Operation] = set()

        def visit(op: Operation) -> None:
            if op in seen:
                return
            seen.add(op)
            for t in op.input_tensors:
                visit(t.op)
            st = _make_stage(op, self)
            self.stages.append(st)
            self.stage_map[op] = st

        for op in self.outputs:
            visit(op)
        for op in self.outputs:
            self.stage_map[op].is_output = True

    def __getitem__(self, key: Tensor | Operation) -> Stage:
        op = key.op if isinstance(key, Tensor) else key
        try:
            return self.stage_map[op]
        except (KeyError, TypeError):
            raise ScheduleError(
                f"{key!r} is not part of this schedule",
                hint="create_schedule(outputs) covers the outputs and everything they read",
            ) from None

    def _insert_before(self, new: Stage, before: Stage) -> None:
        self.stages.insert(self.stages.index(before), new)
        self.stage_map[new.op] = new

    def cache_read(self, tensor: Tensor, scope: str, readers: Sequence[Any]) -> Tensor:
        """Copy ``tensor`` into a new ``scope`` buffer that ``readers`` read instead.

        >>> AA = s.cache_read(A, "local", [C]); s[AA].compute_at(s[C], ko)
        """
        if not isinstance(tensor, Tensor):
            raise ScheduleError(f"cache_read: expected a Tensor, got {tensor!r}")
        src_stage = self[tensor]
        reader_stages = [
            self[r] for r in (readers if isinstance(readers, list | tuple) else [readers])
        ]
        for rs in reader_stages:
            if not isinstance(rs.op, ComputeOp) or tensor not in read_tensors(rs.body):
                raise ScheduleError(
                    f"cache_read: stage {rs.name!r} does not read {tensor.name!r}",
                    hint="list only stages whose compute reads the tensor",
                )
        names = [f"ax{k}" for k in range(tensor.ndim)]
        cache = make_compute(tensor.shape, names, lambda *i: tensor[i], f"{tensor.name}.{scope}")
        st = _make_stage(cache.op, self)
        st.scope = scope
        first = min(self.stages.index(r) for r in reader_stages)
        self.stages.insert(max(first, self.stages.index(src_stage) + 1), st)
        self.stage_map[cache.op] = st
        for rs in reader_stages:
            rs.body = replace_tensor(rs.body, tensor, cache)
        return cache

    def cache_write(self, tensor: Tensor, scope: str) -> Tensor:
        """Compute ``tensor`` into a new ``scope`` buffer, then copy it to ``tensor``.

        >>> CC = s.cache_write(C, "local"); s[CC].compute_at(s[C], yo)
        """
        st = self[tensor]
        if not isinstance(st.op, ComputeOp):
            raise ScheduleError(f"cache_write: stage {st.name!r} is not a te.compute")
        if (
            st.relations
            or st.attach_type != "root"
            or st.leaf_iter_vars != st.axis + st.reduce_axis
            or any(
                a.kind != ForKind.SERIAL or a.pragmas or a.tensor_intrin
                for a in st.iter_attrs.values()
            )
        ):
            raise ScheduleError(
                f"cache_write: stage {st.name!r} is already scheduled",
                hint="call cache_write before split/reorder/compute_at on that stage",
            )
        if len(st.body) > 1:
            raise ScheduleError(f"cache_write: stage {st.name!r} has several outputs")
        body = st.body[0]
        axis_vars = [iv.var for iv in st.axis]

        def fcompute(*idx: E.Var) -> E.PrimExpr:
            return fresh_reduce_body(body, dict(zip(axis_vars, idx, strict=True)))

        names = [f"{v.name}.c" for v in axis_vars]
        cache = make_compute(tensor.shape, names, fcompute, f"{tensor.name}.{scope}")
        new = _make_stage(cache.op, self)
        new.scope = scope
        self._insert_before(new, st)
        st.body = (cache[tuple(iv.var for iv in st.axis)],)
        st.reduce_axis = []
        st.all_iter_vars = list(st.axis)
        st.leaf_iter_vars = list(st.axis)
        return cache


def replace_tensor(
    body: tuple[E.PrimExpr, ...], old: Tensor, new: Tensor
) -> tuple[E.PrimExpr, ...]:
    """``body`` reading tensor ``new`` wherever it read ``old`` (cache_read's rewiring)."""

    class _Swap(Mutator):
        def visit_ProducerLoad(self, e: E.ProducerLoad) -> E.PrimExpr:
            e = self.generic(e)
            return E.ProducerLoad(new, e.indices) if e.producer is old else e

    m = _Swap()
    return tuple(m.expr(b) for b in body)


def create_schedule(ops: Operation | Tensor | Sequence[Operation | Tensor]) -> Schedule:
    """A default schedule (one loop nest per operation, in order) for the given outputs."""
    items = ops if isinstance(ops, list | tuple) else [ops]
    out = []
    for o in items:
        op = o.op if isinstance(o, Tensor) else o
        if not isinstance(op, Operation):
            raise ScheduleError(f"create_schedule: expected operations or tensors, got {o!r}")
        out.append(op)
    return Schedule(out)


__all__ = [
    "DATA_PAR",
    "Fuse",
    "IterAttr",
    "Range",
    "Schedule",
    "Split",
    "Stage",
    "create_schedule",
]
