"""Static memory planning for the AOT executor.

After fusion, ``main`` is a sequence of kernel calls. Every intermediate tensor
lives in one workspace at an offset chosen here: tensors whose lifetimes do not
overlap share bytes. Placement is greedy by size (largest first, lowest offset
that does not collide with any already-placed tensor alive at the same time),
the heuristic TensorFlow Lite's arena planner uses; it is close to optimal on
CNNs. Model inputs, weights and model outputs are not in the workspace: they
are the caller's buffers, and a kernel whose result is a model output writes
straight into the caller's array.

    plan = plan_memory(fused_mod)
    print(plan.workspace_bytes, plan.total_intermediate_bytes)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.errors import InternalError
from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    Var,
)
from ember.graph.visitor import post_order

ALIGNMENT = 64
"""Bytes: every workspace tensor starts on a cache line, so vector loads may be aligned."""


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Storage:
    """Where one tensor lives: ``kind`` is input / param / output / workspace."""

    kind: str
    index: int = 0  # input, param or output position
    offset: int = 0  # bytes into the workspace
    nbytes: int = 0


@dataclass
class KernelStep:
    """One kernel call: which kernel, and the storage of each argument and result."""

    call: Call
    args: list[Storage]
    results: list[Storage]


@dataclass
class MemoryPlan:
    steps: list[KernelStep]
    inputs: list[Var]
    params: list[Constant]
    outputs: list[Storage]  # where each model output is found after the steps ran
    output_types: list[TensorType]
    workspace_bytes: int
    total_intermediate_bytes: int
    copies: list[tuple[Storage, int]] = field(default_factory=list)
    """(source, output index): outputs that are an input, weight or another output."""

    def summary(self) -> str:
        ratio = self.workspace_bytes / max(self.total_intermediate_bytes, 1)
        return (
            f"workspace {self.workspace_bytes / 2**20:.2f} MiB for "
            f"{self.total_intermediate_bytes / 2**20:.2f} MiB of intermediates ({ratio:.0%})"
        )


@dataclass(eq=False)
class _Tensor:
    nbytes: int
    first: int  # step that writes it
    last: int  # last step that reads it
    offset: int = -1


def _place(tensors: list[_Tensor]) -> int:
    """Assign offsets; returns the workspace size."""
    placed: list[_Tensor] = []
    size = 0
    for t in sorted(tensors, key=lambda t: (-t.nbytes, t.first)):
        live = sorted(
            (p for p in placed if p.first <= t.last and t.first <= p.last), key=lambda p: p.offset
        )
        offset = 0
        for p in live:
            if offset + t.nbytes <= p.offset:
                break
            offset = max(offset, p.offset + _align(p.nbytes))
        t.offset = offset
        placed.append(t)
        size = max(size, offset + _align(t.nbytes))
    return size


def _result_types(call: Call) -> list[TensorType]:
    ty = call.type
    fields = ty.fields if not isinstance(ty, TensorType) else (ty,)
    for f in fields:
        if not isinstance(f, TensorType):
            raise InternalError(f"kernel {call.name} returns a nested tuple")
    return list(fields)  # type: ignore[arg-type]


def plan_memory(mod: Module) -> MemoryPlan:
    """Plan the storage of every tensor of a fused module (see :func:`fuse_ops`)."""
    main = mod.main
    nodes = post_order(main.body)
    calls = [n for n in nodes if isinstance(n, Call)]
    for c in calls:
        if not (isinstance(c.op, Function) and c.op.is_primitive):
            raise InternalError("plan_memory needs a fused module (run fuse_ops first)")
    step_of = {c: i for i, c in enumerate(calls)}
    inputs = [p for p in main.params]
    params = [n for n in nodes if isinstance(n, Constant)]
    param_index = {c: i for i, c in enumerate(params)}
    input_index = {v: i for i, v in enumerate(inputs)}

    # Model outputs, as (producer, field) pairs.
    body = main.body
    out_exprs = list(body.fields) if isinstance(body, Tuple) else [body]

    def source(e: Expr) -> tuple[Expr, int]:
        if isinstance(e, TupleGetItem):
            return e.tuple_value, e.index
        return e, 0

    out_sources = [source(e) for e in out_exprs]
    output_of: dict[tuple[Expr, int], int] = {}
    copies_needed: list[tuple[tuple[Expr, int], int]] = []
    for i, src in enumerate(out_sources):
        if isinstance(src[0], Call) and src not in output_of:
            output_of[src] = i  # the kernel writes this output in place
        else:
            copies_needed.append((src, i))

    # Lifetimes of intermediates.
    tensors: dict[tuple[Call, int], _Tensor] = {}
    for c in calls:
        for k, ty in enumerate(_result_types(c)):
            if (c, k) not in output_of:
                tensors[(c, k)] = _Tensor(ty.nbytes, step_of[c], step_of[c])
    for c in calls:
        for a in c.args:
            src, k = source(a)
            if isinstance(src, Call) and (src, k) in tensors:
                t = tensors[(src, k)]
                t.last = max(t.last, step_of[c])
    for src, _ in copies_needed:
        if isinstance(src[0], Call) and src in tensors:
            tensors[src].last = len(calls)  # read by the final copy
    workspace = _place(list(tensors.values()))

    def storage_of(src: Expr, k: int) -> Storage:
        """Where field ``k`` of the value ``src`` lives."""
        if isinstance(src, Var):
            return Storage("input", input_index[src], nbytes=src.type.nbytes)
        if isinstance(src, Constant):
            return Storage("param", param_index[src], nbytes=src.type.nbytes)
        if isinstance(src, Call):
            if (src, k) in output_of:
                idx = output_of[(src, k)]
                return Storage("output", idx, nbytes=_result_types(src)[k].nbytes)
            t = tensors[(src, k)]
            return Storage("workspace", offset=t.offset, nbytes=t.nbytes)
        raise InternalError(f"unexpected {type(src).__name__} as a kernel argument")

    def storage(e: Expr) -> Storage:
        return storage_of(*source(e))

    steps = []
    for c in calls:
        results = [storage_of(c, k) for k in range(len(_result_types(c)))]
        steps.append(KernelStep(c, [storage(a) for a in c.args], results))
    output_types = [e.type for e in out_exprs]
    for t in output_types:
        if not isinstance(t, TensorType):
            raise InternalError("model outputs must be tensors")
    copies = [(storage_of(*src), i) for src, i in copies_needed]
    return MemoryPlan(
        steps=steps,
        inputs=inputs,
        params=params,
        outputs=[storage(e) for e in out_exprs],
        output_types=output_types,  # type: ignore[arg-type]
        workspace_bytes=workspace,
        total_intermediate_bytes=sum(t.nbytes for t in tensors.values()),
        copies=copies,
    )
