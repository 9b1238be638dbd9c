"""Dispatch contexts: where the compiler gets its schedules and layouts from.

A :class:`DispatchContext` answers the compiler's two questions about choices it
does not make itself: "which schedule for this fused kernel?" (a tuned config, or
None for the op strategy's default) and "which channel blocks for this model's
convolutions?" (a graph tuning plan, or None for the default rule). ``ember.compile``
takes one (``schedules=``); the autotuner passes its own; tuning logs become one::

    with ember.autotune.apply_history_best("matmul.jsonl") as ctx:
        s, tensors = ember.autotune.instantiate("matmul", (512, 512, 512), target="host")
        f = ember.build(s, tensors)
        lib = ember.compile(mod, params)          # the active context applies here too
    print(ctx.summary())      # "1 of 1 tunable kernels tuned"

Outside any context (or for a workload without records) templates get their
:class:`FallbackConfig`; the context counts those kernels as untuned.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ember.dispatch.graph_plan import Blocks, model_key, plans_in
from ember.dispatch.record import Record, best_per_workload, load_records
from ember.dispatch.space import FallbackConfig, _ConfigBase
from ember.dispatch.task import Task, create_task
from ember.dispatch.templates_fused import is_tunable, kernel_task
from ember.errors import ScheduleError
from ember.graph.ir import Function, Module
from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import Tensor

_CURRENT: contextvars.ContextVar[DispatchContext | None] = contextvars.ContextVar(
    "ember_dispatch", default=None
)

KernelSchedule = tuple[Schedule, list[Tensor]]


class DispatchContext:
    """Answers "which config for this task?"; nest with ``with``.

    The base class has no records: every kernel keeps its default schedule and every
    conv the default channel blocks. Subclasses override :meth:`query` (and may keep
    ``records`` holding graph plans).
    """

    records: Sequence[Record] = ()  # tuning records (graph plans are read from them)

    def __init__(self) -> None:
        self.tuned: list[str] = []
        self.untuned: list[str] = []
        self.not_tunable: list[str] = []  # kernels no template covers (layout transforms...)
        self._token: contextvars.Token | None = None

    def query(self, task: Task) -> Record | None:
        """The record to use for ``task``, or None."""
        return None

    def config_for(self, task: Task) -> _ConfigBase:
        """The best recorded config of ``task``, or its fallback config (counted untuned)."""
        rec = self.query(task)
        label = f"{task.name}{tuple(task.describe or task.args)}"
        if rec is not None and rec.config.get("default"):
            self.tuned.append(label)  # measured: the default schedule is the fastest
            return FallbackConfig()
        if rec is not None:
            try:
                index = task.config_space.index_of(rec.config["knobs"])
            except ScheduleError:
                rec = None  # recorded by another version of the template
            else:
                self.tuned.append(label)
                return task.config_space.get(index)
        self.untuned.append(label)
        return FallbackConfig()

    # -- what the compiler asks
    def kernel_schedule(self, func: Function, target: Target) -> KernelSchedule | None:
        """``(schedule, args)`` of a fused kernel from its best record, or None (no record,
        or not tunable: the op strategy's default schedule). Every kernel is counted
        tuned, untuned or not tunable in :meth:`summary`."""
        if not is_tunable(func):
            self.not_tunable.append(func.name)
            return None
        task = kernel_task(func, target)
        if self.query(task) is None:
            self.untuned.append(func.name)
            return None
        return task.instantiate(self.config_for(task))  # counts it tuned

    def channel_blocks(self, opt: Module, target: Target) -> Blocks | None:
        """Per-conv (input block, output block) for the optimized module ``opt``: the
        newest graph plan of this model and target among ``records``, or None (the rule)."""
        if not self.records:
            return None
        key = model_key(opt)
        mine = [p for p in plans_in(self.records) if p.model == key and p.target == target.key]
        if not mine:
            return None
        return dict(mine[-1].blocks) or None

    def summary(self) -> str:
        """One line: how many kernels used a tuned config, and which did not."""
        n = len(self.tuned) + len(self.untuned)
        line = f"{len(self.tuned)} of {n} tunable kernels tuned"
        if self.untuned:
            shown = ", ".join(self.untuned[:5]) + (" ..." if len(self.untuned) > 5 else "")
            line += f"; {len(self.untuned)} untuned (default schedule): {shown}"
        if self.not_tunable:
            line += f"; {len(self.not_tunable)} without a tuning template (default schedule)"
        return line

    def __enter__(self) -> DispatchContext:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None


class ApplyHistoryBest(DispatchContext):
    """Use the fastest error-free record of each (target, workload key)."""

    def __init__(self, records: Iterable[Record]) -> None:
        super().__init__()
        self.records = list(records)
        self.best = best_per_workload(self.records)

    def query(self, task: Task) -> Record | None:
        return self.best.get((task.target_key, task.workload["key"]))


def apply_history_best(logs: str | Path | Iterable[Any]) -> ApplyHistoryBest:
    """A dispatch context from one or more tuning logs (or Record objects).

    >>> with apply_history_best("log.jsonl") as ctx: lib = ember.compile(mod, params)
    """
    if isinstance(logs, str | Path):
        logs = [logs]
    records: list[Record] = []
    for item in logs:
        if isinstance(item, Record):
            records.append(item)
        else:
            records.extend(load_records(item))
    return ApplyHistoryBest(records)


def current_context() -> DispatchContext | None:
    """The innermost active dispatch context (None outside ``with``)."""
    return _CURRENT.get()


def config_for(task: Task) -> _ConfigBase:
    """The config compiling should use for ``task`` (fallback outside a context)."""
    ctx = current_context()
    return ctx.config_for(task) if ctx is not None else FallbackConfig()


def instantiate(
    name: str, args: tuple[Any, ...], target: str | Target = "host", key: str | None = None
) -> tuple[Any, list[Any]]:
    """Build template ``name`` on ``args`` with the dispatched config: ``(schedule, tensors)``."""
    task = create_task(name, args, target, key)
    return task.instantiate(config_for(task))


__all__ = [
    "ApplyHistoryBest",
    "DispatchContext",
    "KernelSchedule",
    "apply_history_best",
    "config_for",
    "current_context",
    "instantiate",
]
