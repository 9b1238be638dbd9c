"""ember.compile: a whole model -> one native library with an AOT entry point.

    lib = ember.compile(mod, params, target="host")
    lib.export("resnet18.ember")
    m = ember.load("resnet18.ember")

The pipeline, one line per step:

1. ``optimize``: bind weights, fold batch norm and constants, drop dead code;
2. ``fuse_ops``: group ops into kernels (primitive functions);
3. ``plan_memory``: place every intermediate tensor in one reused workspace;
4. per distinct kernel workload: the op strategy gives a TE schedule, ``lower``
   turns it into loop IR, and the C code generator into one C file;
5. the C files compile in parallel (each cached by content), and link with the
   AOT entry (``aot_source``) into ``model.so``;
6. weights are packed into ``params.bin`` (bound at load time, never pasted into
   C source: compile time does not grow with the weights).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ember
from ember.build.aot import aot_source
from ember.build.memory_plan import MemoryPlan, plan_memory
from ember.build.toolchain import compile_object
from ember.codegen.c import c_symbol
from ember.config import config
from ember.errors import BuildError, EmberError, LoweringError
from ember.graph.ir import Call, Constant, Function, Module, Var
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.visitor import post_order
from ember.runtime.artifact import pack_params, write_artifact
from ember.runtime.cpu import host_cpu_flags
from ember.target import Target

RUNTIME_INCLUDE = Path(__file__).resolve().parents[1] / "runtime" / "c"
CPU_FEATURES = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl")
"""CPU flags recorded in an artifact built for this CPU; the runtime checks them at load."""

Progress = Callable[[str], None]


def workload_key(func: Function) -> str:
    """A content hash of a primitive function: its ops, attributes and types, not its names.

    Two kernels with the same key compute the same thing on same-shaped data, so
    they are compiled once.
    """
    ids: dict[Any, int] = {}
    parts = []
    params = {p: i for i, p in enumerate(func.params)}
    for node in post_order(func.body):
        ids[node] = len(ids)
        if isinstance(node, Var):
            parts.append(f"param{params[node]}:{node.type}")
        elif isinstance(node, Constant):
            parts.append(f"const:{node.type}:{node.value.tobytes().hex()}")
        elif isinstance(node, Call):
            args = ",".join(str(ids[a]) for a in node.args)
            parts.append(f"{node.op.name}({args}){node.attrs!r}:{node.type}")
        else:
            parts.append(f"{type(node).__name__}:{node.type}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _host_cpu_features() -> list[str]:
    return [c for c in CPU_FEATURES if c in host_cpu_flags()]


def _link(objects: list[Path], flags: tuple[str, ...]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ember-link-") as tmp:
        out = Path(tmp) / "model.so"
        cmd = [config.cc, "-shared", "-fopenmp", *flags, *map(str, objects), "-o", str(out), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"linking the model library failed:\n{proc.stderr.strip()[:4000]}")
        return out.read_bytes()


@dataclass
class CompiledModel:
    """The result of :func:`compile`: a model library, its weights and metadata."""

    lib_bytes: bytes
    params: list[np.ndarray]
    metadata: dict[str, Any]
    plan: MemoryPlan
    sources: dict[str, str] = field(default_factory=dict)

    def export(self, path: str | Path) -> Path:
        """Write the one-file artifact (``.ember``) that :func:`ember.load` reads."""
        blob, offsets = pack_params(self.params)
        meta = dict(self.metadata)
        meta["params"] = [dict(p, offset=o) for p, o in zip(meta["params"], offsets)]
        write_artifact(path, self.lib_bytes, blob, meta)
        return Path(path)

    def load(self) -> ember.runtime.Model:
        """Export to a temporary file and load it (handy in notebooks and tests)."""
        from ember.runtime import load

        tmp = Path(tempfile.mkdtemp(prefix="ember-model-")) / "model.ember"
        return load(self.export(tmp))

    def get_source(self, kernel: str | None = None) -> str:
        """The generated C: of one kernel, or of all kernels and the AOT entry."""
        if kernel is not None:
            return self.sources[kernel]
        return "\n\n".join(self.sources.values())


def kernel_graph(
    mod: Module,
    params: dict[str, np.ndarray] | None,
    target: Target,
    graph_plan: Any = None,
    progress: Progress | None = None,
) -> tuple[Module, Module]:
    """The graph steps of :func:`compile`: (optimized module, fused module of kernels).

    The tuner's task extraction calls this too, so the workload keys it records are the
    ones compile looks up. ``graph_plan``: see :func:`compile`.
    """
    from ember.graph.passes import optimize

    opt = optimize(mod, params or {})
    if target.kind != "host":
        return opt, fuse_ops(opt)
    # Convolution chains in the blocked NCHW[x]c layout on this CPU (weights packed here);
    # per-conv blocks from a graph tuning plan (given, or found in the applied tuning log).
    from ember.autotune.graph_plan import plan_blocks_for

    blocks = plan_blocks_for(opt, target, graph_plan)
    if blocks and progress is not None:
        progress(f"graph plan: channel blocks of {len(blocks)} convs from graph tuning")
    return opt, host_kernels(opt, target, blocks)


def host_kernels(
    opt: Module, target: Target, blocks: Any = None, lanes: int | None = None
) -> Module:
    """The host steps of :func:`kernel_graph` after ``optimize``: blocked layout (per-conv
    ``blocks`` from a graph plan, else the rule), Winograd, fusion. The graph tuner lays
    out its candidates with this too, so it times the kernels compile would generate.
    """
    from ember.graph.passes.alter_layout import alter_layout

    blocked = alter_layout(opt, target, lanes=lanes, blocks=blocks)
    # Winograd for the 3x3 stride-1 convs where it measured faster (weights transformed here).
    from ember.graph.passes.winograd import winograd_conv2d

    return fuse_ops(winograd_conv2d(blocked))


def _lower_kernel(func: Function, name: str, target: Target) -> str:
    from ember.codegen.c import codegen_c
    from ember.topi.strategy import schedule_primitive
    from ember.te.lower import lower

    try:
        # A tuning log applied with ember.autotune.apply_history_best picks the kernel's
        # best recorded config; otherwise (None) the op strategy's default schedule.
        from ember.autotune.extract import tuned_schedule

        tuned = tuned_schedule(func, target)
        sch, args = tuned if tuned is not None else schedule_primitive(func, target)
        prim = lower(sch, args, name=name)
    except EmberError:
        raise
    except Exception as err:  # a bug in a schedule: say which kernel
        raise LoweringError(
            f"could not generate kernel {name} ({func.name}): {type(err).__name__}: {err}",
            hint="please report this with the model; EMBER_DEBUG=1 shows the traceback",
        ) from err
    return codegen_c([prim]).get_source()


def compile(
    mod: Module,
    params: dict[str, np.ndarray] | None = None,
    target: str | Target = "host",
    *,
    progress: Progress | None = None,
    tuning_log: str | Path | None = None,
    graph_plan: Any = None,
) -> CompiledModel:
    """Compile ``mod`` (with weights ``params``) for ``target`` into a :class:`CompiledModel`.

    ``tuning_log``: autotuning records (``ember tune -o LOG``); each kernel uses its best
    recorded config, the others their default schedules, and a graph tuning plan for this
    model found in the log (``ember tune --graph``) sets the convs' channel blocks.
    ``graph_plan``: a plan to apply instead (:class:`ember.autotune.GraphPlan`, the path of
    a saved one, or a ``{conv id: (input block, output block)}`` mapping).
    """
    if tuning_log is not None:
        from ember.autotune.dispatch import apply_history_best

        with apply_history_best(tuning_log):
            return compile(mod, params, target, progress=progress, graph_plan=graph_plan)
    from ember.graph.analysis import function_flops, summarize

    say = progress or (lambda msg: None)
    tgt = Target.parse(target)
    start = time.perf_counter()
    opt, fused = kernel_graph(mod, params, tgt, graph_plan, say)
    plan = plan_memory(fused)
    calls = kernels(fused)
    say(f"{len(calls)} kernel calls after fusion; {plan.summary()}")

    # One C file per distinct workload; names carry the workload hash so identical
    # kernels in other models hit the object cache.
    names: dict[str, str] = {}
    funcs: dict[str, Function] = {}
    kernel_names = []
    for call in calls:
        func = call.op
        assert isinstance(func, Function)
        key = workload_key(func)
        if key not in names:
            names[key] = c_symbol(f"{func.name[:48]}_{key}")
            funcs[key] = func
        kernel_names.append(names[key])
    say(f"{len(funcs)} distinct kernels")

    sources: dict[str, str] = {}
    for i, (key, func) in enumerate(funcs.items(), start=1):
        say(f"[{i}/{len(funcs)}] generating {names[key]}")
        sources[names[key]] = _lower_kernel(func, names[key], tgt)

    input_names = [v.name for v in plan.inputs]
    output_names = list(opt.main.attrs.get("output_names", ())) or [
        f"output{i}" for i in range(len(plan.output_types))
    ]
    param_names = [c.name or f"param{i}" for i, c in enumerate(plan.params)]
    param_arrays = [np.ascontiguousarray(c.value) for c in plan.params]
    _, offsets = pack_params(param_arrays)
    sources["ember_aot"] = aot_source(
        plan, kernel_names, input_names, output_names, param_names, offsets
    )

    from ember.autotune.dispatch import current_context

    if current_context() is not None:
        say(current_context().summary())  # how many kernels used tuned configs
    say(f"compiling {len(sources)} C files")
    flags = tgt.cflags
    workers = max(1, min(len(sources), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        objects = list(
            pool.map(
                lambda kv: compile_object(
                    kv[1], flags=flags, include_dirs=(RUNTIME_INCLUDE,), what=f"kernel {kv[0]}"
                ),
                sources.items(),
            )
        )
    lib_bytes = _link(objects, flags)
    seconds = time.perf_counter() - start
    say(f"done in {seconds:.1f} s")

    summary = summarize(opt)
    metadata = {
        "ember_version": ember.__version__,
        "target": {
            "name": str(tgt),
            "arch": platform.machine(),
            "cpu_features": _host_cpu_features() if tgt.kind == "host" else [],
            "cflags": list(flags),
        },
        "inputs": [
            {"name": n, "shape": list(v.type.shape), "dtype": v.type.dtype}
            for n, v in zip(input_names, plan.inputs)
        ],
        "outputs": [
            {"name": n, "shape": list(t.shape), "dtype": t.dtype}
            for n, t in zip(output_names, plan.output_types)
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
        "steps": [
            {"name": call.name, "kernel": kname, "flops": function_flops(call.op)}  # type: ignore[arg-type]
            for call, kname in zip(calls, kernel_names)
        ],
    }
    return CompiledModel(lib_bytes, param_arrays, metadata, plan, sources)
