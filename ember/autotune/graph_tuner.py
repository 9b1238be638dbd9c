"""Graph-level tuning: choose each conv's channel blocks so layout transforms pay off.

    plan = tune_graph(mod, params, target="host", threads=1)       # a GraphPlan
    plan.save("resnet18.graph.json")
    lib = ember.compile(mod, params, graph_plan=plan)
    # with kernel tuning: the kernels' best records pick the schedules being measured
    plan = tune_graph(mod, params, tuning_log="r18.jsonl")          # appended to the log

``alter_layout`` blocks every conv by a fixed rule (the vector width). A different block
per conv can be faster (a 1x1 conv may prefer another output block than the 3x3 conv
before it), but where a consumer reads another block than its producer wrote, a
``layout_transform`` kernel runs in between. The tuner (TVM's graph tuner idea):

1. candidates: every (input block, output block) the blocked x86 conv runs for a conv
   (``alter_layout.plan_blocks_of``: 4 / 8 / 16 dividing the channels, up to the vector
   width; the RGB input in one block; depthwise: equal blocks);
2. conv costs, MEASURED: the model is laid out with every conv on one candidate at a
   time (a few rounds cover all), fused as compile fuses it (``compiler.host_kernels``,
   Winograd included), and each conv's kernel (conv + its epilogue: bias, relu, residual
   add; a Winograd conv's three kernels together) is compiled and timed on its own
   (:class:`KernelTimer`: the tuning log's best record when one is given, else the
   default schedule; cached by workload key);
3. transform costs, measured the same way: NCHW{a}c -> NCHW{b}c (or to / from NCHW) at
   each tensor's shape where producer and consumer may disagree;
4. the cost model (:func:`build_problem`): total = sum of conv kernel times + the
   transforms between each conv's input block and the block its producer wrote (through
   the relus / adds / pools that follow the producer's block), between the operands of
   a residual add or concat (the later operands are re-blocked to the first's), and back
   to NCHW for ops that read NCHW (flatten, dense, the outputs); a dynamic program over
   the convs in topological order (:func:`ember.autotune.graph_dp.solve`) minimizes it;
5. the plan and the default rule are compiled and timed end to end (alternating, same
   input); the faster is kept, so a plan never makes the model slower than the default.

Approximations of the cost model (the end-to-end check guards them): a transform shared
by two consumers wanting the same block is counted twice, an NCHW copy shared by several
readers once per tensor; kernels other than convs and transforms (pools, unfused
elementwise ops) are taken to cost the same in every block; a conv's epilogue is the one
it has when its neighbours agree on blocks; kernel tuning records exist only for the
blocks kernel tuning saw, so other blocks run (and are measured with) default schedules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.autotune.graph_dp import LayoutProblem, solve
from ember.autotune.graph_measure import KernelTimer, model_latencies
from ember.dispatch.context import apply_history_best
from ember.dispatch.graph_plan import GraphPlan, model_key
from ember.dispatch.record import append_records
from ember.driver import compile, layout_kernels
from ember.graph.ir import Call, Constant, Expr, Function, Module, TensorType, Var
from ember.graph.passes import optimize
from ember.graph.passes.alter_layout import (
    PLAN_BLOCKS,
    _elementwise_block,
    conv_ids,
    default_plan,
    plan_blocks_of,
    rule_blocks,
)
from ember.graph.passes.fuse_ops import kernels
from ember.graph.visitor import ExprMutator, children, post_order
from ember.ops import call
from ember.ops.registry import Op
from ember.runtime.model import _cores
from ember.target import Target

State = tuple[int, int]
Transform = tuple[tuple[int, ...], int | None, int | None]
"""(NCHW shape, source block, destination block); None is plain NCHW."""


# ----------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Use:
    """A place where a tensor may need re-blocking, in terms of the convs whose output
    block decides it. ``kind``:

    - ``"conv_input"``: conv ``consumer`` reads the tensor in its input block;
    - ``"operand"``: an add / concat whose block is conv ``consumer``'s output block
      (when its channels divide by it: ``consumer_divisors``) reads the tensor in it;
    - ``"nchw"``: an op that runs in NCHW reads the tensor.

    The tensor comes from conv ``source``'s output block, through ops that keep it while
    ``source_divisors`` divide by it (else it is NCHW), or is NCHW (``source`` None).
    """

    kind: str
    shape: tuple[int, ...]
    consumer: str | None
    consumer_divisors: frozenset[int]
    source: str | None
    source_divisors: frozenset[int]


def _keeps(block: int, divisors: frozenset[int]) -> bool:
    return all(d % block == 0 for d in divisors)


def analyze(opt: Module, ids: dict[Call, str], tunable: set[str]) -> list[Use]:
    """The :class:`Use` list of ``opt`` (alter_layout's decisions, with each blocked
    tensor traced to the conv whose output block it carries)."""
    info: dict[Expr, tuple[str, frozenset[int]]] = {}
    uses: list[Use] = []
    nchw_done: set[Expr] = set()

    def read_nchw(a: Expr) -> None:
        if a in info and a not in nchw_done:
            nchw_done.add(a)
            uses.append(Use("nchw", a.type.shape, None, frozenset(), *info[a]))  # type: ignore[union-attr]

    for node in post_order(opt.main.body):
        if isinstance(node, Call) and isinstance(node.op, Op):
            name, cid = node.op.name, ids.get(node)
            if cid in tunable:
                data = node.args[0]
                src = info.get(data, (None, frozenset()))
                uses.append(Use("conv_input", data.type.shape, cid, frozenset(), *src))  # type: ignore[union-attr]
                for a in node.args[1:]:
                    read_nchw(a)
                info[node] = (cid, frozenset())  # type: ignore[assignment]
                continue
            if name in ("nn.max_pool2d", "nn.avg_pool2d") and node.args[0] in info:
                info[node] = info[node.args[0]]
                continue
            blocked = [a for a in node.args if a in info]
            if blocked and _elementwise_block(node, {a: 1 for a in blocked}) is not None:
                root, first = info[blocked[0]]
                shape = node.type.shape  # type: ignore[union-attr]
                concat = name == "concatenate"
                divisors = set(first) | {shape[1]}
                if concat:
                    divisors |= {a.type.shape[1] for a in node.args}  # type: ignore[union-attr]
                info[node] = (root, frozenset(divisors))
                for a in node.args:
                    # Per-channel and scalar constants, and constant operands, are
                    # re-blocked at compile time (folded).
                    if isinstance(a, Constant) or not (concat or a.type.shape == shape):  # type: ignore[union-attr]
                        continue
                    src = info.get(a, (None, frozenset()))
                    uses.append(Use("operand", a.type.shape, root, frozenset(divisors), *src))  # type: ignore[union-attr]
                continue
        for a in children(node):
            read_nchw(a)
    read_nchw(opt.main.body)
    return uses


def build_problem(
    order: list[str],
    states: dict[str, list[State]],
    conv_cost: Callable[[str, State], float],
    uses: list[Use],
    transform_cost: Callable[[Transform], float],
) -> LayoutProblem:
    """The DP's cost model: conv kernel times (unary) and transform times (unary or
    pairwise between the convs that decide both blocks); see the module docstring."""
    unary = {c: {s: conv_cost(c, s) for s in states[c]} for c in order}
    problem = LayoutProblem(list(order), {c: list(states[c]) for c in order}, unary)

    def moved(u: Use, src_state: State | None) -> int | None:
        if u.source is None or src_state is None:
            return None
        return src_state[1] if _keeps(src_state[1], u.source_divisors) else None

    def t(shape: tuple[int, ...], src: int | None, dst: int | None) -> float:
        return 0.0 if src == dst else transform_cost((shape, src, dst))

    def cost(u: Use, consumer: State | None, source: State | None) -> float:
        src = moved(u, source)
        if u.kind == "nchw":
            return t(u.shape, src, None)
        if u.kind == "conv_input":
            return t(u.shape, src, consumer[0])  # type: ignore[index]
        block = consumer[1]  # type: ignore[index]
        if _keeps(block, u.consumer_divisors):
            return t(u.shape, src, block)
        return t(u.shape, src, None)  # the add / concat runs in NCHW

    for u in uses:
        if u.kind == "nchw":
            for s in states[u.source]:  # type: ignore[index]
                unary[u.source][s] += cost(u, None, s)  # type: ignore[index]
        elif u.source is None:
            for s in states[u.consumer]:  # type: ignore[index]
                unary[u.consumer][s] += cost(u, s, None)  # type: ignore[index]
        elif u.source == u.consumer:
            for s in states[u.consumer]:
                unary[u.consumer][s] += cost(u, s, s)
        else:
            table = {
                (a, b): cost(u, b, a)
                for a in states[u.source]
                for b in states[u.consumer]  # type: ignore[index]
            }
            problem.add_pair(u.source, u.consumer, table)  # type: ignore[arg-type]
    return problem


# ----------------------------------------------------------------------------- kernels


class _NameConvs(ExprMutator):
    """Each conv renamed to its id, so its kernel can be found after fusion."""

    def __init__(self, ids: dict[Call, str]) -> None:
        super().__init__()
        self.ids = ids

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        if call in self.ids:
            return Call(call.op, args, call.attrs, self.ids[call])
        return super().visit_call(call, args)


def _distance(s: State, want: State) -> float:
    return abs(math.log2(s[0] / want[0])) + abs(math.log2(s[1] / want[1]))


_CONV_OPS = (
    "nn.conv2d_nchwc",
    "nn.winograd_input_transform",
    "nn.winograd_batch_matmul",
    "nn.winograd_output_transform",
)
"""Ops a blocked conv becomes (direct, or Winograd's three steps), found by name."""


def _conv_of(node: Any) -> str | None:
    """The conv id a call of a blocked conv's kernel carries (see :class:`_NameConvs`)."""
    if isinstance(node, Call) and getattr(node.op, "name", "") in _CONV_OPS:
        return node.name.removesuffix("_winograd_input").removesuffix("_winograd_gemm")
    return None


def conv_kernels(
    named: Module, states: dict[str, list[State]], target: Target, lanes: int
) -> dict[tuple[str, State], list[Any]]:
    """The fused kernels (primitive functions) of every (conv, candidate state): one for a
    direct conv, three for a Winograd conv (input transform, GEMM, output transform).

    Each round lays the model out as compile does (``layout_kernels``) with every conv on
    the candidate nearest one (input, output) block pair, so neighbours mostly agree and
    epilogues fuse as they would in a consistent plan; extra rounds cover what the pairs
    missed.
    """
    found: dict[tuple[str, State], list[Any]] = {}
    blocks = sorted({b for ss in states.values() for s in ss for b in s if b in PLAN_BLOCKS})
    wanted = [(b, b) for b in blocks] + [(i, o) for i in blocks for o in blocks if i != o]
    rounds = [
        {c: min(ss, key=lambda s, w=w: _distance(s, w)) for c, ss in states.items()} for w in wanted
    ]
    while rounds:
        plan = rounds.pop(0)
        fused = layout_kernels(named, target, plan, lanes)
        mine: dict[str, list[Any]] = {}
        for kernel in kernels(fused):
            owners = {c for n in post_order(kernel.op.body) if (c := _conv_of(n)) in plan}
            for c in owners:
                mine.setdefault(c, []).append(kernel.op)
        for c, funcs in mine.items():
            found.setdefault((c, plan[c]), funcs)
        if not rounds:
            missing = {c: [s for s in ss if (c, s) not in found] for c, ss in states.items()}
            if any(missing.values()):
                rounds.append({c: (m[0] if m else states[c][0]) for c, m in missing.items()})
    return found


def _transform_function(spec: Transform) -> Function:
    shape, src, dst = spec
    n, c, h, w = shape
    src_layout = "NCHW" if src is None else f"NCHW{src}c"
    dst_layout = "NCHW" if dst is None else f"NCHW{dst}c"
    in_shape = (n, c, h, w) if src is None else (n, c // src, h, w, src)
    x = Var("p0", TensorType(in_shape, "float32"))
    body = call("layout_transform", x, src_layout=src_layout, dst_layout=dst_layout)
    name = f"fused_layout_transform_{src_layout}_{dst_layout}"
    return Function((x,), body, {"primitive": True, "name": name, "pattern": "INJECTIVE"})


def predicted_ms(fused: Module, timer: KernelTimer) -> float:
    """Sum of the measured times of every kernel call of a fused module, in ms."""
    calls = kernels(fused)
    return sum(timer.measure([c.op for c in calls])) * 1e3


# ----------------------------------------------------------------------------- driver


def tune_graph(
    mod: Module,
    params: dict[str, Any] | None,
    target: str | Target = "host",
    *,
    tuning_log: Any = None,
    threads: int | None = None,
    say: Callable[[str], None] = print,
    save_to_log: bool = True,
    n_parallel: int = 2,
    candidate_blocks: tuple[int, ...] = PLAN_BLOCKS,
) -> GraphPlan:
    """Graph-tune ``mod`` (see the module docstring) and return the kept :class:`GraphPlan`.

    ``tuning_log``: kernel tuning records to measure with (and, with ``save_to_log``, the
    file the plan is appended to as a record that ``ember compile --tuning-log`` applies);
    ``threads``: OpenMP threads the model will run with (default: all cores);
    ``candidate_blocks``: the channel blocks tried (fewer: faster tuning).

    >>> plan = tune_graph(mod, params, threads=1)    # doctest: +SKIP
    >>> plan.predicted_ms, plan.measured_ms, plan.kept
    """
    start = time.perf_counter()
    tgt = Target.parse(target)
    threads = threads or _cores()
    lanes = tgt.vector_lanes("float32")
    opt = optimize(mod, params or {})
    ids = conv_ids(opt)
    states: dict[str, list[State]] = {}
    for conv, cid in ids.items():
        ok = [
            s
            for s in plan_blocks_of(conv)
            if s[1] <= lanes
            and s[0] <= lanes
            and s[1] in candidate_blocks
            and (s[0] in candidate_blocks or s[0] not in PLAN_BLOCKS)
        ]
        rule = rule_blocks(conv, lanes)
        if ok and rule is not None and rule not in ok:
            ok.append(rule)  # the default rule's choice is always a candidate
        if ok:
            states[cid] = ok
    order = [cid for cid in ids.values() if cid in states]
    dispatch = apply_history_best(tuning_log) if tuning_log is not None else None
    timer = KernelTimer(tgt, threads, dispatch, n_parallel)
    say(
        f"graph tuning: {len(order)} blockable convs, {sum(map(len, states.values()))} "
        f"(conv, blocks) candidates, {threads} thread(s)"
    )

    named = Module.from_function(_NameConvs(ids).visit_function(opt.main))
    found = conv_kernels(named, states, tgt, lanes)
    flat = [f for funcs in found.values() for f in funcs]
    measured_funcs = iter(timer.measure(flat))  # all new kernels compiled in one batch
    times = {k: sum(next(measured_funcs) for _ in funcs) for k, funcs in found.items()}
    compiling = timer.compile_seconds
    say(f"  timed {len(timer.cache)} distinct conv kernels ({compiling:.0f} s compiling)")

    uses = analyze(opt, ids, set(order))
    wanted: set[Transform] = set()
    build_problem(order, states, lambda c, s: 0.0, uses, lambda t: wanted.add(t) or 0.0)
    specs = sorted(wanted, key=repr)
    spec_times = dict(zip(specs, timer.measure(_transform_function(t) for t in specs)))
    say(f"  timed {len(specs)} layout transforms")
    problem = build_problem(
        order, states, lambda c, s: times[(c, s)], uses, lambda t: spec_times[t]
    )
    tuned = solve(problem) if order else {}
    tuned_blocks = {c: tuple(s) for c, s in tuned.items()}
    # The rule's choice per conv: compiling with these builds what compiling without a
    # plan builds (padded convs included), so "default" below is the real default.
    defaults = {c: s for c, s in default_plan(opt, lanes).items() if c in states}
    model_cost = {"tuned": problem.cost(tuned) * 1e3}
    if len(defaults) == len(order):
        model_cost["default"] = problem.cost(defaults) * 1e3

    predicted = {
        "default": predicted_ms(layout_kernels(opt, tgt, None, lanes), timer),
        "tuned": predicted_ms(layout_kernels(opt, tgt, tuned_blocks, lanes), timer),
    }
    changed = sum(1 for c in order if tuned_blocks.get(c) != defaults.get(c))
    say(
        f"  plan changes {changed} of {len(order)} convs; predicted {predicted['default']:.2f} ms "
        f"default -> {predicted['tuned']:.2f} ms"
    )
    models = {
        "default": compile(mod, params, tgt, schedules=dispatch, graph_plan={}).load(),
        "tuned": compile(mod, params, tgt, schedules=dispatch, graph_plan=tuned_blocks).load(),
    }
    measured = model_latencies(models, threads)
    kept = "tuned" if changed and measured["tuned"] < measured["default"] else "default"
    seconds = time.perf_counter() - start
    say(
        f"  measured {measured['default']:.2f} ms default, {measured['tuned']:.2f} ms tuned: "
        f"keeping {kept} ({seconds:.0f} s)"
    )
    plan = GraphPlan(
        target=tgt.key,
        model=model_key(opt),
        blocks=dict(tuned_blocks) if kept == "tuned" else {},
        tuned_blocks=dict(tuned_blocks),
        kept=kept,
        threads=threads,
        predicted_ms=predicted,
        measured_ms=measured,
        tuning_seconds=seconds,
        details={
            "model_cost_ms": model_cost,
            "default_blocks": {c: list(s) for c, s in defaults.items()},
            "kernels_timed": len(timer.cache),
            "compile_seconds": timer.compile_seconds,
        },
    )
    if tuning_log is not None and save_to_log:
        append_records(tuning_log, [plan.to_record()])
    return plan


__all__ = ["Use", "analyze", "build_problem", "conv_kernels", "predicted_ms", "tune_graph"]
