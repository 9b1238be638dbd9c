"""Dispatch: tunable schedules and which configuration each kernel gets.

The layer between the operator library and the compiler driver that turns tuning
results into schedules. It holds the knob spaces templates declare
(:mod:`~ember.dispatch.space`), the templates themselves (``templates_*``:
registered when this package is imported), tuning records
(:mod:`~ember.dispatch.record`), graph tuning plans (:mod:`~ember.dispatch.graph_plan`)
and the dispatch contexts that answer the compiler's questions
(:mod:`~ember.dispatch.context`)::

    with ember.dispatch.apply_history_best("r18.jsonl"):
        lib = ember.compile(mod, params)   # tuned kernels and channel blocks where recorded

The search for good configurations (tuners, measurement, cost model) is
:mod:`ember.autotune`, above the driver; it re-exports these names too.
"""

from ember.dispatch import templates_conv, templates_dense, templates_fused  # noqa: F401
from ember.dispatch.context import (
    ApplyHistoryBest,
    DispatchContext,
    apply_history_best,
    config_for,
    current_context,
    instantiate,
)
from ember.dispatch.graph_plan import GraphPlan, model_key, plan_blocks
from ember.dispatch.record import Record, best_per_workload, load_records
from ember.dispatch.space import ConfigEntity, ConfigSpace, FallbackConfig
from ember.dispatch.task import Task, create_task, get_template, list_templates, template
from ember.dispatch.templates_fused import is_tunable, kernel_task

__all__ = [
    "ApplyHistoryBest",
    "ConfigEntity",
    "ConfigSpace",
    "DispatchContext",
    "FallbackConfig",
    "GraphPlan",
    "Record",
    "Task",
    "apply_history_best",
    "best_per_workload",
    "config_for",
    "create_task",
    "current_context",
    "get_template",
    "instantiate",
    "is_tunable",
    "kernel_task",
    "list_templates",
    "load_records",
    "model_key",
    "plan_blocks",
    "template",
]
