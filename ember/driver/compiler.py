"""ember.compile: a whole model -> one native library with an AOT entry point.

    lib = ember.compile(mod, params, target="host")
    lib.export("resnet18.ember")
    m = ember.load("resnet18.ember")

The pipeline, one line per step:

1. ``optimize``: bind weights, fold batch norm and constants, drop dead code;
2. ``layout_kernels``: on x86 CPUs the blocked NCHW[x]c layout (``alter_layout``, channel
   blocks from the target's vector width or a graph tuning plan) and Winograd for the
   3x3 convs where it pays, products by constant weights as GEMMs on packed panels
   (``pack_dense``); then ``fuse_ops`` groups ops into kernels (primitive
   functions). Steps 1 and 2 run through ``run_passes`` (verified, timed, dumpable);
3. ``plan_memory``: place every intermediate tensor in one reused workspace;
4. per distinct kernel workload: a schedule from the dispatch context (a tuned config)
   or the op strategy's default, ``lower`` to loop IR, and the C code generator;
5. the C files compile in parallel with the target's compiler (each cached by content),
   each as soon as it is generated, and link with the AOT entry (``aot_source``) into
   ``model.so``; with default schedules the C of each kernel is cached by content too
   (:mod:`ember.driver.kernel_cache`), so a warm compile skips step 4;
6. weights are packed into ``params.bin`` (bound at load time, never pasted into
   C source: compile time does not grow with the weights).

The driver knows no tuner: schedules come from a :class:`~ember.dispatch.DispatchContext`
(``schedules=``, the ``with apply_history_best(...)`` context in force, or a tuning log),
which the autotuner also builds on. What the tuner needs from here is public:
:func:`kernel_graph`, :func:`layout_kernels` and :func:`lower_kernel`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ember.config as _config
from ember.codegen.c import c_symbol, codegen_c, codegen_runtime
from ember.codegen.dialect import dialect_for
from ember.dispatch.context import DispatchContext, apply_history_best, current_context
from ember.dispatch.graph_plan import Blocks, GraphPlan, plan_blocks
from ember.driver import toolchain
from ember.driver.aot import aot_source
from ember.driver.kernel_cache import cached_source, source_key
from ember.driver.memory_plan import MemoryPlan, plan_memory
from ember.driver.native import check_buildable
from ember.driver.toolchain import compile_object, link_shared
from ember.errors import EmberError, LoweringError
from ember.graph.analysis import call_flops, function_flops, output_names, summarize
from ember.graph.ir import Call, Function, Module
from ember.graph.op import Op
from ember.graph.passes import optimize, run_passes
from ember.graph.passes.alter_layout import alter_layout
from ember.graph.passes.dense_rewrite import pack_dense
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.passes.winograd import winograd_conv2d
from ember.graph.structural import workload_key
from ember.graph.visitor import post_order
from ember.runtime.artifact import pack_params, write_artifact
from ember.runtime.model import Model
from ember.target import Target
from ember.te.lower import lower
from ember.topi.strategy import schedule_primitive
from ember.version import __version__

RUNTIME_INCLUDE = Path(__file__).resolve().parents[1] / "runtime" / "c"

Progress = Callable[[str], None]
Dump = bool | str | Path
GraphPlanLike = GraphPlan | str | Path | Mapping[str, Any]


@dataclass
class CompiledModel:
    """The result of :func:`compile`: a model library, its weights and metadata."""

    lib_bytes: bytes
    params: list[np.ndarray]
    metadata: dict[str, Any]
    plan: MemoryPlan
    sources: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Where compile time went, in seconds (not part of the artifact): ``*_cpu_s`` is CPU
    time (``graph``, ``lower``, ``codegen`` of this process's Python; ``cc`` and ``link`` of
    the compiler processes), ``*_wall_s`` elapsed time; see :class:`CompileTimer`."""

    def export(self, path: str | Path) -> Path:
        """Write the one-file artifact (``.ember``) that :func:`ember.load` reads."""
        blob, offsets = pack_params(self.params)
        meta = dict(self.metadata)
        meta["params"] = [dict(p, offset=o) for p, o in zip(meta["params"], offsets)]
        write_artifact(path, self.lib_bytes, blob, meta)
        return Path(path)

    def load(self) -> Model:
        """Export to a temporary file and load it (handy in notebooks and tests)."""
        tmp = Path(tempfile.mkdtemp(prefix="ember-model-")) / "model.ember"
        return Model(self.export(tmp))

    def get_source(self, kernel: str | None = None) -> str:
        """The generated C: of one kernel, or of all kernels and the AOT entry."""
        if kernel is not None:
            return self.sources[kernel]
        return "\n\n".join(self.sources.values())


def _dump_to(dump: Dump, stage: str) -> Dump:
    """A folder per pipeline stage under a dump folder (``True``: print to stderr)."""
    if isinstance(dump, str | Path) and dump:
        return Path(dump) / stage
    return dump


def layout_kernels(
    opt: Module,
    target: Target,
    blocks: Blocks | None = None,
    lanes: int | None = None,
    *,
    dump: Dump = False,
) -> Module:
    """The graph steps of :func:`compile` after ``optimize``: on x86 CPUs the blocked
    layout (per-conv ``blocks`` from a graph plan, else the rule for ``lanes``, by
    default the target's float32 vector width) and Winograd; then fusion into kernels.

    The graph tuner lays out its candidates with this too, so it times the kernels
    compile would generate.
    """
    passes: list[Callable[[Module], Module]] = []
    if target.kind == "cpu" and target.is_x86:
        passes.append(functools.partial(alter_layout, target=target, lanes=lanes, blocks=blocks))
        passes.append(winograd_conv2d)  # the 3x3 stride-1 convs where it measured faster
        passes.append(functools.partial(pack_dense, target=target))  # GEMMs on weight panels
    passes.append(fuse_ops)
    return run_passes(opt, passes, dump=_dump_to(dump, "2_kernels"))


def kernel_graph(
    mod: Module,
    params: Mapping[str, np.ndarray] | None,
    target: Target,
    *,
    schedules: DispatchContext | None = None,
    graph_plan: GraphPlanLike | None = None,
    progress: Progress | None = None,
    dump: Dump = False,
) -> tuple[Module, Module]:
    """The graph steps of :func:`compile`: (optimized module, fused module of kernels).

    The tuner's task extraction calls this too, so the workload keys it records are the
    ones compile looks up. Channel blocks come from ``graph_plan`` when given, else from
    ``schedules`` (by default the dispatch context in force: a graph plan in its tuning
    log), else the default rule.
    """
    if schedules is None:
        schedules = current_context()
    opt = optimize(mod, params or {}, dump=_dump_to(dump, "1_optimize"))
    if graph_plan is not None:
        blocks = plan_blocks(opt, graph_plan)
    else:
        blocks = schedules.channel_blocks(opt, target) if schedules is not None else None
    if blocks and progress is not None:
        progress(f"graph plan: channel blocks of {len(blocks)} convs from graph tuning")
    return opt, layout_kernels(opt, target, blocks, dump=dump)


class CompileTimer:
    """CPU and wall seconds per compile phase, summed into ``timings`` (``<phase>_cpu_s``,
    ``<phase>_wall_s``). CPU time is this thread's (``time.thread_time``): the C compile
    threads beside it do not blur the Python phases; the compilers' own CPU time comes
    from :data:`ember.driver.toolchain.stats`.

    >>> timer = CompileTimer(); with timer("graph"): ...; timer.timings["graph_cpu_s"]
    """

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def add(self, phase: str, cpu: float, wall: float) -> None:
        for key, value in ((f"{phase}_cpu_s", cpu), (f"{phase}_wall_s", wall)):
            self.timings[key] = self.timings.get(key, 0.0) + value

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.thread_time() - cpu, time.perf_counter() - wall)


def _builtin_only(func: Function) -> bool:
    """Does kernel ``func`` call only ember's own ops? (A custom op's compute and schedule
    are the user's code, which the source cache's key does not cover.)"""
    return all(
        not isinstance(n, Call) or not isinstance(n.op, Op) or n.op.is_builtin
        for n in post_order(func.body)
    )


def lower_kernel(
    func: Function,
    name: str,
    target: Target,
    schedules: DispatchContext | None = None,
    timer: CompileTimer | None = None,
    *,
    runtime: bool = True,
) -> str:
    """The C source of one fused kernel (primitive function) as compile generates it:
    the dispatch context's tuned schedule if it has one, else the op strategy's default.
    ``timer`` gets the seconds spent in lowering (schedule, TE and loop IR) and in C codegen.
    ``runtime``: include the runtime support (the thread pool) so the source builds on its
    own; compile links one copy of it instead.

    >>> source = lower_kernel(kernels(fused)[0].op, "k0", Target.parse("host"))  # doctest: +SKIP
    """
    timer = timer or CompileTimer()
    try:
        tuned = schedules.kernel_schedule(func, target) if schedules is not None else None
        with timer("lower"):
            sch, args = tuned if tuned is not None else schedule_primitive(func, target)
            prim = lower(sch, args, name=name)
    except EmberError:
        raise
    except Exception as err:  # a bug in a schedule: say which kernel
        raise LoweringError(
            f"could not generate kernel {name} ({func.name}): {type(err).__name__}: {err}",
            hint="please report this with the model; EMBER_DEBUG=1 shows the traceback",
        ) from err
    with timer("codegen"):
        return codegen_c([prim], dialect_for(target), runtime=runtime).get_source()


def compile(
    mod: Module,
    params: Mapping[str, np.ndarray] | None = None,
    target: str | Target = "host",
    *,
    schedules: DispatchContext | None = None,
    tuning_log: str | Path | None = None,
    graph_plan: GraphPlanLike | None = None,
    progress: Progress | None = None,
    dump_ir: Dump = False,
) -> CompiledModel:
    """Compile ``mod`` (with weights ``params``) for ``target`` into a :class:`CompiledModel`.

    Where schedules come from: ``schedules`` (a dispatch context, e.g. one the autotuner
    built), else ``tuning_log`` (``ember tune -o LOG``: each kernel uses its best recorded
    config, the others their default schedules, and a graph tuning plan for this model
    in the log sets the convs' channel blocks), else the ``with apply_history_best(...)``
    context in force, else the default schedules. ``graph_plan``: a plan to apply instead
    of the log's (:class:`ember.dispatch.GraphPlan`, the path of a saved one, or a
    ``{conv id: (input block, output block)}`` mapping). ``dump_ir``: a folder that gets
    the graph IR after every pass (``True``: print it to stderr).
    """
    tgt = Target.parse(target)
    check_buildable(tgt)
    if schedules is None and tuning_log is not None:
        schedules = apply_history_best(tuning_log)
    if schedules is None:
        schedules = current_context()
    say = progress or (lambda msg: None)
    start = time.perf_counter()
    timer = CompileTimer()
    with timer("graph"):
        opt, fused = kernel_graph(
            mod, params, tgt, schedules=schedules, graph_plan=graph_plan, progress=say, dump=dump_ir
        )
        plan = plan_memory(fused)
        calls = kernels(fused)
    say(f"{len(calls)} kernel calls after fusion; {plan.summary()}")

    # One C file per distinct workload; names carry the workload hash so identical
    # kernels in other models hit the object cache. Kernels inside control-flow bodies
    # are listed (by ``kernels``) where their control-flow call runs.
    names: dict[str, str] = {}
    funcs: dict[str, Function] = {}
    symbols: dict[Call, str] = {}
    for call in calls:
        func = call.op
        assert isinstance(func, Function)
        key = workload_key(func)
        if key not in names:
            names[key] = c_symbol(f"{func.name[:48]}_{key}")
            funcs[key] = func
        symbols[call] = names[key]
    say(f"{len(funcs)} distinct kernels")

    # Each kernel's C file goes to the compiler as soon as it is generated, so the C
    # compiles (other processes) overlap the Python lowering of the next kernels.
    sources: dict[str, str] = {}
    objects: dict[str, Future[Path]] = {}
    cc_cpu = toolchain.stats["compiler_cpu_s"]
    cc_start = time.perf_counter()
    workers = max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(name: str, source: str) -> None:
            sources[name] = source
            objects[name] = pool.submit(
                compile_object, source, tgt, include_dirs=(RUNTIME_INCLUDE,), what=f"kernel {name}"
            )

        for i, (key, func) in enumerate(funcs.items(), start=1):
            say(f"[{i}/{len(funcs)}] generating {names[key]}")
            generate = functools.partial(
                lower_kernel, func, names[key], tgt, schedules, timer, runtime=False
            )
            if schedules is None and not _config.config.debug and _builtin_only(func):
                # The C is a function of the key; a custom op's code is not in it, and
                # EMBER_DEBUG lowers every kernel again (its IR is verified on the way).
                source = cached_source(source_key(key, names[key], tgt), generate)
            else:  # a tuning log's config is not in the key
                source = generate()
            submit(names[key], source)
        submit("ember_runtime", codegen_runtime(dialect_for(tgt)))  # the thread pool, once

        input_names = [v.name for v in plan.inputs]
        out_names = output_names(opt.main, len(plan.output_types))
        param_names = [c.name or f"param{i}" for i, c in enumerate(plan.params)]
        param_arrays = [np.ascontiguousarray(c.value) for c in plan.params]
        with timer("codegen"):
            _, offsets = pack_params(param_arrays)
            aot = aot_source(plan, symbols, input_names, out_names, param_names, offsets)
        submit("ember_aot", aot)
        if schedules is not None:
            say(schedules.summary())  # how many kernels used tuned configs
        say(f"compiling {len(sources)} C files")
        paths = [objects[name].result() for name in sources]  # link order: sources order
    timer.add("cc", toolchain.stats["compiler_cpu_s"] - cc_cpu, time.perf_counter() - cc_start)
    link_cpu, link_start = toolchain.stats["compiler_cpu_s"], time.perf_counter()
    lib_bytes = link_shared(paths, tgt)
    link_cpu = toolchain.stats["compiler_cpu_s"] - link_cpu
    timer.add("link", link_cpu, time.perf_counter() - link_start)
    seconds = time.perf_counter() - start
    timer.timings["total_wall_s"] = seconds
    say(f"done in {seconds:.1f} s")

    summary = summarize(opt)
    metadata = {
        "ember_version": __version__,
        "target": tgt.record(),
        "inputs": [
            {"name": n, "shape": list(v.type.shape), "dtype": v.type.dtype}
            for n, v in zip(input_names, plan.inputs)
        ],
        "outputs": [
            {"name": n, "shape": list(t.shape), "dtype": t.dtype}
            for n, t in zip(out_names, plan.output_types)
        ],
        "params": [
            {"name": n, "shape": list(a.shape), "dtype": str(a.dtype)}
            for n, a in zip(param_names, param_arrays)
        ],
        "workspace_bytes": plan.workspace_bytes,
        "memory": {
            "workspace_bytes": plan.workspace_bytes,
            "total_intermediate_bytes": plan.total_intermediate_bytes,
        },
        "graph": {
            "kernel_calls": len(calls),
            "distinct_kernels": len(funcs),
            "flops": summary.get("flops"),
            "op_counts": summary.get("op_counts"),
        },
        "compile_seconds": round(seconds, 2),
        # One entry per AOT step, for Model.profile (ember_run_profiled times each step).
        "steps": [_step_record(step.call, symbols) for step in plan.steps],
    }
    return CompiledModel(lib_bytes, param_arrays, metadata, plan, sources, timer.timings)


def _step_record(call: Call, symbols: Mapping[Call, str]) -> dict[str, Any]:
    """One AOT step for ``Model.profile``: a kernel, or a control-flow call as a whole."""
    if call in symbols:
        return {"name": call.name, "kernel": symbols[call], "flops": function_flops(call.op)}  # type: ignore[arg-type]
    return {"name": call.name, "kernel": call.op.name, "flops": call_flops(call)}


__all__ = [
    "CompileTimer",
    "CompiledModel",
    "compile",
    "kernel_graph",
    "layout_kernels",
    "lower_kernel",
]
