"""Static memory planning for the AOT executor.

After fusion, ``main`` is a sequence of kernel calls. Every intermediate tensor
lives in one workspace at an offset chosen here: tensors whose lifetimes do not
overlap share bytes. Placement is greedy by size (largest first, lowest offset
that does not collide with any already-placed tensor alive at the same time),
the heuristic TensorFlow Lite's arena planner uses; it is close to optimal on
CNNs. Model inputs, weights and model outputs are not in the workspace: they
are the caller's buffers, and a kernel whose result is a model output writes
straight into the caller's array.

Control flow (``cf.if``, ``cf.loop``) is a step too (:class:`ControlStep`): its
arguments and results are placed like a kernel's, and it owns a *scratch* region
of the workspace for the length of its step. Each branch or loop body is planned
the same way, recursively, as a :class:`FunctionPlan` inside that region: its
parameters are ``arg`` storages and its results ``result`` storages, which the
AOT executor binds to the call's (a loop binds them anew each iteration). A loop
keeps each carried value in the call's result buffer (so the final value is in
place when the loop ends); the body writes the next value to a staging buffer
in the scratch region, copied over after each iteration, so a body that reads a
carried value after computing its successor sees the old one. Its scratch region
holds, in order: the iteration number, the condition, the staging buffers, and
the body's own workspace (:class:`LoopLayout`).

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
    TupleType,
    Var,
    subfunctions,
)
from ember.graph.visitor import post_order
from ember.ops.control_flow import if_, loop

ALIGNMENT = 64
"""Bytes: every workspace tensor starts on a cache line, so vector loads may be aligned."""


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Storage:
    """Where one tensor lives: ``kind`` is input / param / output / workspace, or inside
    a control-flow body, ``arg`` (the body's parameter ``index``) / ``result`` (its result
    ``index``), bound by the AOT executor to the call's storage."""

    kind: str
    index: int = 0  # input, param, output, arg or result position
    offset: int = 0  # bytes into the workspace (of the function being planned)
    nbytes: int = 0


@dataclass
class KernelStep:
    """One kernel call: which kernel, and the storage of each argument and result."""

    call: Call
    args: list[Storage]
    results: list[Storage]


@dataclass
class FunctionPlan:
    """The steps of one function (``main``, a branch, a loop body) over its workspace."""

    steps: list[KernelStep | ControlStep]
    outputs: list[Storage]  # where each result is found after the steps ran
    copies: list[tuple[Storage, int]]  # (source, result index): results not written in place
    workspace_bytes: int
    total_intermediate_bytes: int


@dataclass(frozen=True)
class LoopLayout:
    """Byte offsets in a loop's scratch region: iteration number, condition, one staging
    buffer per body result that is copied back (the condition, then each carried value),
    and the body's workspace."""

    iteration: int
    condition: int
    staging: tuple[int, ...]
    body: int


@dataclass
class ControlStep:
    """A ``cf.if`` (``bodies`` = then, else) or ``cf.loop`` (``bodies`` = the body) call."""

    call: Call
    args: list[Storage]
    results: list[Storage]
    scratch: Storage  # workspace bytes this step owns while it runs
    bodies: list[FunctionPlan]
    layout: LoopLayout | None = None


@dataclass
class MemoryPlan:
    steps: list[KernelStep | ControlStep]
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


def _source(e: Expr) -> tuple[Expr, int]:
    """The (producer, field) a value is read from."""
    if isinstance(e, TupleGetItem):
        return e.tuple_value, e.index
    return e, 0


def _result_sources(body: Expr) -> list[tuple[Expr, int]]:
    """The (producer, field) of each result of a function whose body is ``body``."""
    if isinstance(body, Tuple):
        sources = [_source(f) for f in body.fields]
    elif isinstance(body.type, TupleType):
        sources = [(body, k) for k in range(len(body.type.fields))]
    else:
        sources = [_source(body)]
    for src, k in sources:
        t = src.type.fields[k] if isinstance(src.type, TupleType) else src.type
        if not isinstance(t, TensorType):
            raise InternalError(f"a function result is a nested tuple ({t})")
    return sources


class _Constants:
    """Every constant of the module (``main`` and all bodies): the weights table."""

    def __init__(self) -> None:
        self.index: dict[Constant, int] = {}

    def add(self, const: Constant) -> None:
        self.index.setdefault(const, len(self.index))

    @property
    def all(self) -> list[Constant]:
        return list(self.index)


def _loop_layout(call: Call, body: FunctionPlan) -> tuple[LoopLayout, int]:
    """The layout of a loop's scratch region and its size."""
    n = call.attrs.num_carried
    offset = _align(8)  # the iteration number (int64)
    condition, offset = offset, offset + _align(1)
    ret = call.attrs.body.ret_type
    staging = []
    for t in ret.fields[: 1 + n]:  # the condition and each carried value
        staging.append(offset)
        offset += _align(t.nbytes)
    layout = LoopLayout(0, condition, tuple(staging), offset)
    return layout, offset + body.workspace_bytes


def _plan_function(func: Function, top: bool, constants: _Constants) -> FunctionPlan:
    """Plan one function; ``top``: ``main`` (params are inputs, results the caller's
    outputs), else a body (params are ``arg`` storages, results ``result`` storages)."""
    nodes = post_order(func.body)
    calls = [n for n in nodes if isinstance(n, Call)]
    for c in calls:
        primitive = isinstance(c.op, Function) and c.op.is_primitive
        if not primitive and not (c.op is if_ or c.op is loop):
            raise InternalError("plan_memory needs a fused module (run fuse_ops first)")
    for n in nodes:
        if isinstance(n, Constant):
            constants.add(n)
    step_of = {c: i for i, c in enumerate(calls)}
    param_index = {v: i for i, v in enumerate(func.params)}
    result_kind = "output" if top else "result"

    out_sources = _result_sources(func.body)
    output_of: dict[tuple[Expr, int], int] = {}
    copies_needed: list[tuple[tuple[Expr, int], int]] = []
    for i, src in enumerate(out_sources):
        if isinstance(src[0], Call) and src not in output_of:
            output_of[src] = i  # the kernel writes this result in place
        else:
            copies_needed.append((src, i))

    # The bodies first: a control-flow step's scratch region holds their workspaces.
    bodies: dict[Call, tuple[list[FunctionPlan], int, LoopLayout | None]] = {}
    for c in calls:
        subs = [_plan_function(f, False, constants) for _, f in subfunctions(c.attrs)]
        if c.op is if_:
            bodies[c] = (subs, max(s.workspace_bytes for s in subs), None)
        elif c.op is loop:
            layout, size = _loop_layout(c, subs[0])
            bodies[c] = (subs, size, layout)

    # Lifetimes of intermediates (and of each control-flow step's scratch region).
    tensors: dict[tuple[Call, int], _Tensor] = {}
    for c in calls:
        for k, ty in enumerate(_result_types(c)):
            if (c, k) not in output_of:
                tensors[(c, k)] = _Tensor(ty.nbytes, step_of[c], step_of[c])
    scratch = {c: _Tensor(size, step_of[c], step_of[c]) for c, (_, size, _) in bodies.items()}
    for c in calls:
        for a in c.args:
            src, k = _source(a)
            if isinstance(src, Call) and (src, k) in tensors:
                t = tensors[(src, k)]
                t.last = max(t.last, step_of[c])
    for src, _ in copies_needed:
        if isinstance(src[0], Call) and src in tensors:
            tensors[src].last = len(calls)  # read by the final copy
    workspace = _place([*tensors.values(), *scratch.values()])

    def storage_of(src: Expr, k: int) -> Storage:
        """Where field ``k`` of the value ``src`` lives."""
        if isinstance(src, Var):
            kind = "input" if top else "arg"
            return Storage(kind, param_index[src], nbytes=src.type.nbytes)
        if isinstance(src, Constant):
            return Storage("param", constants.index[src], nbytes=src.type.nbytes)
        if isinstance(src, Call):
            if (src, k) in output_of:
                idx = output_of[(src, k)]
                return Storage(result_kind, idx, nbytes=_result_types(src)[k].nbytes)
            t = tensors[(src, k)]
            return Storage("workspace", offset=t.offset, nbytes=t.nbytes)
        raise InternalError(f"unexpected {type(src).__name__} as a kernel argument")

    steps: list[KernelStep | ControlStep] = []
    for c in calls:
        args = [storage_of(*_source(a)) for a in c.args]
        results = [storage_of(c, k) for k in range(len(_result_types(c)))]
        if c in bodies:
            subs, _, layout = bodies[c]
            region = Storage("workspace", offset=scratch[c].offset, nbytes=scratch[c].nbytes)
            steps.append(ControlStep(c, args, results, region, subs, layout))
        else:
            steps.append(KernelStep(c, args, results))
    copies = [(storage_of(*src), i) for src, i in copies_needed]
    return FunctionPlan(
        steps=steps,
        outputs=[storage_of(*src) for src in out_sources],
        copies=copies,
        workspace_bytes=workspace,
        total_intermediate_bytes=sum(t.nbytes for t in tensors.values()),
    )


def plan_memory(mod: Module) -> MemoryPlan:
    """Plan the storage of every tensor of a fused module (see :func:`fuse_ops`)."""
    main = mod.main
    constants = _Constants()
    plan = _plan_function(main, True, constants)
    output_types = []
    for src, k in _result_sources(main.body):
        t = src.type.fields[k] if isinstance(src.type, TupleType) else src.type
        output_types.append(t)
    return MemoryPlan(
        steps=plan.steps,
        inputs=list(main.params),
        params=constants.all,
        outputs=plan.outputs,
        output_types=output_types,  # type: ignore[arg-type]
        workspace_bytes=plan.workspace_bytes,
        total_intermediate_bytes=plan.total_intermediate_bytes,
        copies=plan.copies,
    )
