"""Autotuning: search a schedule template's knob space for the fastest config.

    from ember import autotune
    task = autotune.create_task("matmul", (512, 512, 512), target="host")
    tuner = autotune.ModelBasedTuner(task)
    tuner.tune(n_trial=200, measure=autotune.LocalMeasure(task), log="matmul.jsonl")
    with autotune.apply_history_best("matmul.jsonl"):
        s, args = autotune.instantiate("matmul", (512, 512, 512), "host")

The search sits above the compiler driver (it measures what ``ember.compile``
builds); what it finds is applied through :mod:`ember.dispatch`, below the driver,
whose names (spaces, templates, records, dispatch contexts) are re-exported here.
See docs/tuning.md.
"""

from ember.autotune.graph_tuner import tune_graph
from ember.autotune.measure import (
    LocalBuilder,
    LocalMeasure,
    LocalRunner,
    MeasureInput,
    MeasureResult,
    Runner,
)
from ember.autotune.model_tuner import CostModel, ModelBasedTuner
from ember.autotune.tuner import GridTuner, RandomTuner, Tuner, TuneResult, progress_printer
from ember.dispatch.context import (
    ApplyHistoryBest,
    DispatchContext,
    apply_history_best,
    config_for,
    current_context,
    instantiate,
)
from ember.dispatch.graph_plan import GraphPlan
from ember.dispatch.record import (
    Record,
    RecordError,
    append_records,
    best_per_workload,
    load_records,
    save_records,
)
from ember.dispatch.space import ConfigEntity, ConfigSpace, FallbackConfig
from ember.dispatch.task import Task, create_task, get_template, list_templates, template

__all__ = [
    "ApplyHistoryBest",
    "ConfigEntity",
    "ConfigSpace",
    "CostModel",
    "DispatchContext",
    "FallbackConfig",
    "GraphPlan",
    "GridTuner",
    "LocalBuilder",
    "LocalMeasure",
    "LocalRunner",
    "MeasureInput",
    "MeasureResult",
    "ModelBasedTuner",
    "RandomTuner",
    "Record",
    "RecordError",
    "Runner",
    "Task",
    "TuneResult",
    "Tuner",
    "append_records",
    "apply_history_best",
    "best_per_workload",
    "config_for",
    "create_task",
    "current_context",
    "get_template",
    "instantiate",
    "list_templates",
    "load_records",
    "progress_printer",
    "save_records",
    "template",
    "tune_graph",
]
