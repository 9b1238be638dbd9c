"""Tune a whole model: extract its distinct tunable kernels and share a trial budget.

    tasks = extract_tasks(mod, params, target="host")       # [(Task, calls per inference)]
    tune_model(mod, params, target="host", n_trial=400, log="resnet18.jsonl")
    with apply_history_best("resnet18.jsonl") as ctx:
        lib = ember.compile(mod, params, target="host")      # tuned kernels where recorded
    print(ctx.summary())

Kernels come from the compiler's own pipeline (optimize -> fuse_ops -> kernels), one
task per distinct ``workload_key``; only kernels the ``fused_kernel`` template can
schedule (one conv2d / dense / matmul anchor plus its epilogue) are tuned. Each task
gets a share of the trials proportional to its FLOPs times its calls per inference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ember.autotune.measure import LocalBuilder, LocalMeasure, LocalRunner
from ember.autotune.model_tuner import ModelBasedTuner
from ember.autotune.scheduler import TaskScheduler
from ember.autotune.tuner import RandomTuner, progress_printer
from ember.dispatch.record import append_records, default_record, load_records
from ember.dispatch.task import Task
from ember.dispatch.templates_fused import is_tunable, kernel_task
from ember.driver import kernel_graph
from ember.graph.ir import Function, Module
from ember.graph.passes.fuse_ops import kernels
from ember.graph.structural import workload_key
from ember.target import Target

MIN_TRIALS_PER_TASK = 8
"""Even a tiny kernel gets one batch of trials."""


def extract_tasks(
    mod: Module, params: dict[str, Any] | None, target: str | Target = "host"
) -> list[tuple[Task, int]]:
    """Distinct tunable kernels of ``mod`` with how often each runs per inference."""
    tgt = Target.parse(target)
    # The same graph steps as ember.compile, so workload keys match.
    _, fused = kernel_graph(mod, params, tgt)
    counts: dict[str, int] = {}
    funcs: dict[str, Function] = {}
    for call in kernels(fused):
        key = workload_key(call.op)  # type: ignore[arg-type]
        counts[key] = counts.get(key, 0) + 1
        funcs.setdefault(key, call.op)  # type: ignore[arg-type]
    tasks = []
    for key, func in funcs.items():
        if is_tunable(func):
            tasks.append((kernel_task(func, tgt), counts[key]))
    return tasks


def tune_model(
    mod: Module,
    params: dict[str, Any] | None,
    target: str | Target = "host",
    n_trial: int = 200,
    log: str | Path = "tuning.jsonl",
    tuner: str = "model",
    batch_size: int = 8,
    n_parallel: int | None = None,
    timeout: float = 10.0,
    say: Callable[[str], None] = print,
    time_budget: float | None = None,
) -> list[tuple[Task, Any]]:
    """Tune every tunable kernel of ``mod``; records go to ``log`` (resumed if it exists).

    ``n_trial`` is the total over all kernels, split by FLOPs share; configs already in
    the log count towards a kernel's share and are never measured again. With
    ``time_budget`` (seconds of wall time, setup included) the kernels share the time
    instead, batch by batch by their share of run time (:class:`TaskScheduler`).
    """
    tasks = extract_tasks(mod, params, target)
    if not tasks:
        say("no tunable kernels (conv2d / dense / matmul with their epilogues) in the model")
        return []
    if time_budget is not None:
        say(f"{len(tasks)} tunable kernels; {time_budget:.0f} s shared by run-time share")
        sched = TaskScheduler(
            tasks,
            tuner,
            log,
            batch_size=batch_size,
            n_parallel=n_parallel,
            timeout=timeout,
            say=say,
        )
        return sched.run(time_budget=time_budget)
    weights = [t.flop * calls for t, calls in tasks]
    total = sum(weights) or 1.0
    history = list(load_records(log)) if Path(log).exists() else []
    say(f"{len(tasks)} tunable kernels; {n_trial} trials split by FLOPs share")
    builder = LocalBuilder(n_parallel)
    results = []
    try:
        for k, ((task, calls), w) in enumerate(zip(tasks, weights), start=1):
            share = max(MIN_TRIALS_PER_TASK, math.ceil(n_trial * w / total))
            done = sum(
                1
                for r in history
                if r.workload["key"] == task.workload["key"] and not r.config.get("default")
            )
            say(
                f"[{k}/{len(tasks)}] {task.describe[0] if task.describe else task.name} "
                f"x{calls}: {task.flop / 1e6:.1f} MFLOP, {share} trials ({done} in the log)"
            )
            if done >= share:
                continue
            with LocalMeasure(task, builder=builder, runner=LocalRunner(timeout=timeout)) as m:
                # The default schedule's time goes in the log too: dispatch keeps it
                # where no searched config beats it.
                (default,) = m.runner.run([m.default_build])
                append_records(log, [default_record(task, default)])
                t = ModelBasedTuner(task) if tuner == "model" else RandomTuner(task)
                res = t.tune(
                    share - done,
                    m,
                    batch_size=batch_size,
                    log=log,
                    callbacks=[progress_printer(task.flop, say)],
                )
            results.append((task, res))
    finally:
        builder.close()
    return results


__all__ = ["extract_tasks", "tune_model"]
