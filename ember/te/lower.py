"""Lower a schedule to loop IR (a PrimFunc).

>>> f = ember.lower(s, [A, B, C])      # PrimFunc; print(f) shows the loops

(``ember.build`` compiles it: :mod:`ember.driver`.)

Lowering walks the stages in dataflow order. Each stage becomes a loop nest over
its leaf axes (after split/fuse/reorder) with the loop kinds the schedule chose;
stages attached with compute_at are emitted inside their consumer's loop, over
the region bound inference found, in a buffer of that region's shape.
Non-dividing splits get an ``if`` guard just inside the deepest loop that the
guarded axis depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.errors import LoweringError, ScheduleError
from ember.te.bound import StageBounds, const_int, make_bounds, region_of
from ember.te.exprutil import inline_tensors, producer_loads
from ember.te.lower_compute import compute_stmt
from ember.te.schedule import Schedule, Stage
from ember.te.tensor import ComputeOp, ExternOp, IterVar, PlaceholderOp, Tensor
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.arith import Interval, bound_of
from ember.tir.buffer import Buffer
from ember.tir.functor import Mutator, substitute
from ember.tir.passes import lower_pipeline
from ember.tir.simplify import simplify


class _Lowering:
    def __init__(self, sch: Schedule, args: Sequence[Tensor], name: str) -> None:
        self.sch = sch
        self.name = name
        self.args = list(args)
        self.buffers: dict[Tensor, Buffer] = {}
        self.buffer_min: dict[Tensor, tuple[E.PrimExpr, ...]] = {}
        self.bounds: dict[Stage, StageBounds] = {}
        self.var_bounds: dict[E.Var, Interval] = {}
        self.prelude: list[str] = []
        self._names: set[str] = set()
        self._check_args()
        self.stages = [st for st in sch.stages if not isinstance(st.op, PlaceholderOp)]
        self._inline()
        self._check_attach()

    # ------------------------------------------------------------------ setup
    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name = f"{base}_{k}"
            k += 1
        self._names.add(name)
        return name

    def _check_args(self) -> None:
        for a in self.args:
            if not isinstance(a, Tensor):
                raise LoweringError(
                    f"lower: arguments must be tensors, got {type(a).__name__} {a!r}",
                    hint="pass the placeholders and outputs, e.g. [A, B, C]",
                )
            if a in self.buffers:
                raise LoweringError(f"lower: tensor {a.name!r} is listed twice in the arguments")
            try:
                self.sch[a]
            except ScheduleError:
                raise LoweringError(
                    f"lower: argument {a.name!r} is not computed or read by this schedule"
                ) from None
            shape = tuple(const_int(d, f"dimension of argument {a.name!r}") for d in a.shape)
            self.buffers[a] = Buffer(self._unique(a.name), shape, a.dtype)
            self.buffer_min[a] = (E.const(0),) * a.ndim
        for st in self.sch.stages:
            if isinstance(st.op, PlaceholderOp) and st.outputs[0] not in self.buffers:
                raise LoweringError(
                    f"lower: placeholder {st.name!r} is read but not among the arguments",
                    hint="list every input tensor in args",
                )
            if st.is_output and not all(t in self.buffers for t in st.outputs):
                raise LoweringError(
                    f"lower: output {st.name!r} is not among the arguments",
                    hint="list the outputs after the inputs, e.g. [A, B, C]",
                )

    def _inline(self) -> None:
        inlined: dict[Tensor, tuple[list[E.Var], E.PrimExpr]] = {}
        for st in self.stages:
            if st.attach_type == "inline":
                if st.outputs[0] in self.buffers:
                    raise ScheduleError(
                        f"stage {st.name!r}: compute_inline of a tensor that is a function "
                        "argument (it must be stored)",
                    )
                inlined[st.outputs[0]] = ([iv.var for iv in st.axis], st.body[0])
        self.inlined = inlined
        self.body: dict[Stage, tuple[E.PrimExpr, ...]] = {}
        self.readers: dict[Stage, list[Stage]] = {st: [] for st in self.stages}
        self.stages = [st for st in self.stages if st.attach_type != "inline"]
        for st in self.stages:
            if isinstance(st.op, ComputeOp):
                self.body[st] = inline_tensors(st.body, inlined)
                reads = {load.producer for load in producer_loads(self.body[st])}
            else:
                reads = set(st.op.input_tensors)
            for t in reads:
                producer = self.sch[t]
                if producer.attach_type == "inline":
                    raise LoweringError(f"internal: inlined {producer.name!r} still read")
                if producer in self.readers and st not in self.readers[producer]:
                    self.readers[producer].append(st)
        self._topo_sort()

    def _topo_sort(self) -> None:
        order: list[Stage] = []
        state: dict[Stage, int] = {}
        deps = {st: [] for st in self.stages}
        for p, rs in self.readers.items():
            for r in rs:
                if r in deps:
                    deps[r].append(p)

        def visit(st: Stage) -> None:
            if state.get(st) == 2:
                return
            if state.get(st) == 1:
                raise LoweringError(f"the dataflow has a cycle through stage {st.name!r}")
            state[st] = 1
            for p in deps[st]:
                if p in deps:
                    visit(p)
            state[st] = 2
            order.append(st)

        for st in self.stages:
            visit(st)
        self.stages = order

    def _check_attach(self) -> None:
        self.attached: dict[tuple[Stage, IterVar], list[Stage]] = {}
        for st in self.stages:
            _check_vectorized_axes(st)
            if st.attach_type != "scope":
                continue
            parent, iv = st.attach_stage, st.attach_ivar
            assert parent is not None and iv is not None
            if isinstance(st.op, ExternOp):
                raise ScheduleError(f"stage {st.name!r}: an extern stage cannot be compute_at")
            readers = self.readers.get(st, [])
            where = {r: _attach_axis(r, parent) for r in readers if r is not parent}
            if parent.attach_type == "inline" or (
                parent not in readers and not any(a is not None for a in where.values())
            ):
                raise ScheduleError(
                    f"stage {st.name!r}: computed at stage {parent.name!r}, which does not read "
                    "it (or was inlined), and no stage that reads it is attached inside it",
                    hint="attach a stage to a consumer that is itself stored",
                )
            if iv not in parent.leaf_iter_vars:
                raise ScheduleError(
                    f"stage {st.name!r}: compute_at axis {iv.name!r} of stage {parent.name!r} "
                    "is no longer a loop (it was split or fused after compute_at)",
                    hint="attach to one of the axes that split/fuse returned",
                )
            # A reader attached inside the parent must sit inside loop iv too (it runs after
            # this stage's values are computed there); any other reader is outside the loop.
            pos = parent.leaf_iter_vars.index(iv)
            others = [
                r.name
                for r, a in where.items()
                if a is None
                or a not in parent.leaf_iter_vars
                or parent.leaf_iter_vars.index(a) < pos
            ]
            if others:
                raise ScheduleError(
                    f"stage {st.name!r}: computed at stage {parent.name!r}, but {others} "
                    f"also read it outside loop {iv.name!r}",
                    hint="use cache_read to give each reader its own copy, compute_at the "
                    "readers inside that loop, or compute_root",
                )
            self.attached.setdefault((parent, iv), []).append(st)

    # ------------------------------------------------------------------ bounds
    def infer_bounds(self) -> None:
        for st in reversed(self.stages):
            if isinstance(st.op, ExternOp):
                continue
            mins: dict[IterVar, E.PrimExpr] = {}
            exts: dict[IterVar, int] = {}
            full = [const_int(iv.dom.extent, f"extent of {st.name}.{iv.name}") for iv in st.axis]
            if st.attach_type == "scope":
                region = self._region(st, full)
            else:
                region = [(E.const(0), n) for n in full]
            for iv, (m, n) in zip(st.axis, region, strict=True):
                mins[iv], exts[iv] = m, n
            for iv in st.reduce_axis:
                mins[iv] = iv.dom.min
                exts[iv] = const_int(iv.dom.extent, f"extent of reduction axis {iv.name!r}")
            b = make_bounds(st, mins, exts)
            self.bounds[st] = b
            for leaf in st.leaf_iter_vars:
                if b.extents[leaf] > 1:
                    self.var_bounds[leaf.var] = (0, b.extents[leaf] - 1)

    def _region(self, st: Stage, full: list[int]) -> list[tuple[E.PrimExpr, int]]:
        parent, iv = st.attach_stage, st.attach_ivar
        assert parent is not None and iv is not None
        pb = self.bounds[parent]
        pos = parent.leaf_iter_vars.index(iv)
        relaxed = {
            leaf.var: pb.extents[leaf]
            for leaf in parent.leaf_iter_vars[pos + 1 :]
            if pb.extents[leaf] > 1
        }
        # Readers attached inside the parent (a cache_write stage, say) run all their loops,
        # and those of the stages between them and the parent, within one iteration of iv.
        readers = [parent] if parent in self.readers[st] else []
        for r in self.readers[st]:
            if r is not parent:
                readers.append(r)
                chain: Stage | None = r
                while chain is not None and chain is not parent:
                    cb = self.bounds[chain]
                    relaxed.update(
                        (leaf.var, cb.extents[leaf])
                        for leaf in chain.leaf_iter_vars
                        if cb.extents[leaf] > 1
                    )
                    chain = chain.attach_stage
        # dict keys: one entry per distinct index tuple, in first-read order. Winograd's
        # transforms read the same few elements in every term of every output (an F(6x6)
        # input transform reads 64 elements 4096 times); bounding each read once keeps the
        # region the same (a repeat cannot widen it) at a fraction of the cost.
        index_lists: dict[tuple[E.PrimExpr, ...], None] = {}
        for r in readers:
            rb = self.bounds[r]
            vmap = {a.var: rb.absolute(a) for a in r.axis + r.reduce_axis}
            for indices in dict.fromkeys(
                load.indices for load in producer_loads(self.body[r]) if load.producer in st.outputs
            ):
                index_lists[tuple(substitute(i, vmap) for i in indices)] = None
        reads = list(index_lists)
        region = region_of(reads, full, relaxed, self.var_bounds, clamp=False)
        if self._extension_safe(st, region):
            return region
        return region_of(reads, full, relaxed, self.var_bounds, clamp=True)

    def _extension_safe(self, st: Stage, region: list[tuple[E.PrimExpr, int]]) -> bool:
        """May ``st`` compute ``region`` even where it pokes out of its domain (consumer
        iterations under a guard)? Yes when every read stays inside a stored tensor; then
        the window needs no clamping, whose min/max would make the indices non-linear."""
        if any(t in self.args for t in st.outputs):
            return False  # its buffer is the caller's array: no room outside the domain
        ranges: dict[E.Var, Interval] = {}
        for iv, (lo, extent) in zip(st.axis, region, strict=True):
            lo_lo, lo_hi = bound_of(lo, self.var_bounds)
            if lo_lo is None or lo_hi is None:
                return False
            ranges[iv.var] = (lo_lo, lo_hi + extent - 1)
        for iv in st.reduce_axis:
            lo = const_int(iv.dom.min, f"min of reduction axis {iv.name!r}")
            ranges[iv.var] = (lo, lo + const_int(iv.dom.extent, "extent") - 1)
        for load in producer_loads(self.body[st]):
            t = load.producer
            if t not in self.args and self.sch[t].attach_type != "root":
                return False  # an attached producer's window is inferred from ours
            for idx, dim in zip(load.indices, t.shape, strict=True):
                lo, hi = bound_of(idx, ranges)
                if lo is None or hi is None or lo < 0 or hi >= dim.value:  # type: ignore[attr-defined]
                    return False
        return True

    # ------------------------------------------------------------------ buffers
    def make_buffers(self) -> None:
        for st in self.stages:
            for t in st.outputs:
                if t in self.buffers:
                    continue
                b = self.bounds.get(st)
                if b is None:  # extern output that is not an argument
                    shape = [const_int(d, f"dimension of {t.name!r}") for d in t.shape]
                    mins: tuple[E.PrimExpr, ...] = (E.const(0),) * len(shape)
                else:
                    shape = [b.extents[iv] for iv in st.axis]
                    mins = tuple(b.mins[iv] for iv in st.axis)
                strides: tuple[int, ...] = ()
                if st.storage_aligns:
                    strides = _aligned_strides(shape, st.storage_aligns)
                self.buffers[t] = Buffer(
                    self._unique(t.name), tuple(shape), t.dtype, strides=strides, scope=st.scope
                )
                self.buffer_min[t] = mins

    # ------------------------------------------------------------------ statements
    def load(self, e: E.PrimExpr) -> E.PrimExpr:
        """Turn ProducerLoads into BufferLoads of the (region) buffers."""
        outer = self

        class _Loads(Mutator):
            def __init__(self) -> None:
                self.in_select = 0
                # The same read recurs in many terms (Winograd: every output's sum reads
                # the same tile elements): rewrite each once, inside or outside a select.
                self.done: dict[tuple[E.ProducerLoad, bool], E.PrimExpr] = {}

            def visit_Select(self, e: E.Select) -> E.PrimExpr:
                cond = self.expr(e.condition)
                self.in_select += 1
                t, f = self.expr(e.true_value), self.expr(e.false_value)
                self.in_select -= 1
                return E.Select(cond, t, f)

            def visit_ProducerLoad(self, e: E.ProducerLoad) -> E.PrimExpr:
                key = (e, self.in_select > 0)
                done = self.done.get(key)
                if done is None:
                    done = self.done[key] = self.rewrite(e)
                return done

            def rewrite(self, e: E.ProducerLoad) -> E.PrimExpr:
                e = self.generic(e)
                t = e.producer
                buf = outer.buffers[t]
                mins = outer.buffer_min[t]
                idx = []
                for k, (i, m) in enumerate(zip(e.indices, mins, strict=True)):
                    i = simplify(i - m, outer.var_bounds)
                    n = buf.shape[k].value  # type: ignore[attr-defined]
                    if self.in_select:
                        # A branch of a select may be evaluated when not taken (vector code,
                        # the evaluator): clamp reads it cannot prove in bounds.
                        lo, hi = bound_of(i, outer.var_bounds)
                        if lo is None or hi is None or lo < 0 or hi >= n:
                            i = E.max_(E.min_(i, n - 1), 0)
                    idx.append(i)
                return E.BufferLoad(buf, tuple(idx))

        return _Loads().expr(e)

    def stage_stmt(self, st: Stage) -> S.Stmt:
        if isinstance(st.op, ExternOp):
            return self.extern_stmt(st)
        return compute_stmt(self, st)

    def attach_wrap(self, st: Stage, iv: IterVar, body: S.Stmt) -> S.Stmt:
        """Put the stages attached at loop ``iv`` of ``st`` first inside that loop."""
        producers = self.attached.get((st, iv), [])
        for p in reversed(producers):
            body = S.seq(self.stage_stmt(p), body)
            for t in reversed(p.outputs):
                if t not in self.args:
                    body = S.Allocate(self.buffers[t], body)
        return body

    def extern_stmt(self, st: Stage) -> S.Stmt:
        op = st.op
        assert isinstance(op, ExternOp)
        swap: dict[Buffer, Buffer] = {}
        for decl, t in zip(op.input_buffers, op.inputs, strict=True):
            swap[decl] = self.buffers[t]
        for decl, t in zip(op.output_buffers, op.outputs, strict=True):
            swap[decl] = self.buffers[t]

        class _Swap(Mutator):
            def buffer(self, b: Buffer) -> Buffer:
                return swap.get(b, b)

        self.prelude.extend(op.attrs.get("c_prelude", []))
        return _Swap().stmt(op.body)

    def run(self) -> S.PrimFunc:
        self.infer_bounds()
        self.make_buffers()
        body: S.Stmt | None = None
        for st in reversed([s for s in self.stages if s.attach_type == "root"]):
            stmt = self.stage_stmt(st)
            body = stmt if body is None else S.seq(stmt, body)
            for t in st.outputs:
                if t not in self.args:
                    body = S.Allocate(self.buffers[t], body)
        if body is None:
            raise LoweringError("lower: the schedule computes nothing")
        params = tuple(self.buffers[a] for a in self.args)
        attrs: dict[str, Any] = {}
        if self.prelude:
            attrs["c_prelude"] = list(dict.fromkeys(self.prelude))
        body = _UniqueLoopVars().stmt(body)
        return S.PrimFunc(self.name, params, body, attrs)


_NOT_IN_VECTOR_LANES = {
    S.ForKind.PARALLEL: "threads cannot start inside the vector lanes of one thread",
    S.ForKind.THREAD_BINDING: "GPU threads cannot run inside the vector lanes of a CPU thread",
    S.ForKind.VECTORIZED: "vector lanes cannot hold vectors (vectorize one loop of a nest)",
}
"""Loop kinds a loop inside a vectorized loop cannot have, and why."""


def _check_vectorized_axes(st: Stage) -> None:
    """A vectorized loop may hold loops (they run on vectors, as in TVM), but not loops
    that run on threads or are vectors themselves."""
    leaves = st.leaf_iter_vars
    for k, iv in enumerate(leaves):
        attr = st.iter_attrs.get(iv)
        if attr is None or attr.kind != S.ForKind.VECTORIZED:
            continue
        for inner in leaves[k + 1 :]:
            kind = st.iter_attrs[inner].kind if inner in st.iter_attrs else S.ForKind.SERIAL
            if kind in _NOT_IN_VECTOR_LANES:
                raise ScheduleError(
                    f"stage {st.name!r}: vectorized axis {iv.name!r} has the {kind.value} "
                    f"loop {inner.name!r} inside it: {_NOT_IN_VECTOR_LANES[kind]}",
                    hint=f"reorder so {inner.name!r} is outside {iv.name!r}, or drop one of "
                    "the two annotations",
                )


def _attach_axis(st: Stage, ancestor: Stage) -> IterVar | None:
    """The loop of ``ancestor`` inside which ``st`` is computed (through a chain of
    compute_at), or None when ``st`` is not inside ``ancestor``."""
    seen: set[Stage] = set()
    while st.attach_type == "scope" and st not in seen:
        seen.add(st)
        parent, iv = st.attach_stage, st.attach_ivar
        assert parent is not None
        if parent is ancestor:
            return iv
        st = parent
    return None


def _aligned_strides(shape: list[int], aligns: dict[int, tuple[int, int]]) -> tuple[int, ...]:
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        s = strides[d + 1] * shape[d + 1]
        if d in aligns:  # storage_align(axis d, factor, offset): pad the stride of dim d
            factor, offset = aligns[d]
            s = -(-(s - offset) // factor) * factor + offset
        strides[d] = s
    return tuple(strides)


def lower(
    s: Schedule, args: Sequence[Tensor], name: str = "main", simple_mode: bool = False
) -> S.PrimFunc:
    """Lower schedule ``s`` to a loop-IR function taking ``args`` (tensors) in order.

    ``simple_mode=True`` returns the N-D loop nest straight from the schedule;
    otherwise the loop IR passes (flatten, vectorize, unroll, simplify) run too.

    >>> print(ember.lower(s, [A, B, C]))
    """
    if not isinstance(s, Schedule):
        raise LoweringError(f"lower: expected a Schedule, got {type(s).__name__}")
    func = _Lowering(s, args, name).run()
    if simple_mode:
        return func
    return lower_pipeline(func)


class _UniqueLoopVars(Mutator):
    """Rename loop variables that share a name with an enclosing or earlier one
    (two stages' ``i`` loops), so printed IR and C code never shadow a variable."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def visit_For(self, s: S.For) -> S.Stmt:
        var = s.loop_var
        body = s.body
        if var.name in self.used:
            k = 1
            while f"{var.name}_{k}" in self.used:
                k += 1
            new = E.Var(f"{var.name}_{k}", var.dtype)
            body = substitute(body, {var: new})
            var = new
        self.used.add(var.name)
        return S.For(var, s.min, s.extent, s.kind, self.stmt(body), s.thread_tag, s.annotations)

    def visit_AttrStmt(self, s: S.AttrStmt) -> S.Stmt:
        body = self.stmt(s.body)
        node = s.node
        if isinstance(body, S.For) and isinstance(node, E.Var) and body.loop_var.name != node.name:
            node = body.loop_var  # a pragma names the loop it annotates
        return S.AttrStmt(node, s.key, s.value, body)


__all__ = ["lower"]
