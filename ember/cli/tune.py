"""The ``ember tune`` command: tune a model's kernels and write a tuning log.

    ember tune r18.onnx --input '{"data": [1, 3, 224, 224]}' --trials 400 -o r18.jsonl
    ember tune r18.onnx --input '{"data": [1, 3, 224, 224]}' --minutes 15 -o r18.jsonl
    ember tune r18.onnx --input '{"data": [1, 3, 224, 224]}' --minutes 15 --graph -o r18.jsonl
    ember tune r18.onnx --input '{"data": [1, 3, 224, 224]}' --graph-only -o r18.jsonl
    ember compile model.onnx --input ... --tuning-log r18.jsonl -o r18.ember

An existing log is resumed: configs already in it are not measured again. ``--graph``
runs graph-level tuning (per-conv channel blocks, ember.autotune.graph_tuner) after the
kernels; ``--graph-only`` runs it alone (with the log's kernel records when the log
exists). The plan is appended to the log, and ``ember compile --tuning-log`` applies it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ember import config as config_module
from ember.autotune.extract import tune_model
from ember.autotune.graph_measure import model_latencies
from ember.autotune.graph_tuner import tune_graph
from ember.cli.common import add_model_args, add_target_arg, import_model, parse_target
from ember.driver import compile
from ember.target import Target


def cmd_tune(args: argparse.Namespace) -> int:
    target = parse_target(args.target)  # a typo in the target fails before the import
    mod, params = import_model(args.model, args.input, args.framework)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.graph_only:
        return _graph_tune(mod, params, target, args, say)
    results = tune_model(
        mod,
        params,
        target=target,
        n_trial=args.trials,
        log=args.output,
        tuner=args.tuner,
        n_parallel=args.parallel,
        timeout=args.timeout,
        say=say,
        time_budget=None if args.minutes is None else args.minutes * 60.0,
    )
    for task, res in results:
        print(f"{task.describe[0] if task.describe else task.name}: {res.gflops:.1f} GFLOP/s")
    print(f"tuning log: {args.output}")
    if results and not args.no_latency:
        before, after = model_latency(mod, params, target, args.output)
        print(
            f"model latency: {before:.2f} ms default schedules, {after:.2f} ms tuned "
            f"({before / after:.2f}x; median of 30 runs, {_threads()} threads)"
        )
    if args.graph:
        return _graph_tune(mod, params, target, args, say)
    return 0


def _graph_tune(mod: Any, params: Any, target: Target, args: argparse.Namespace, say: Any) -> int:
    """Graph-level tuning with the log's kernel records; the plan goes into the log."""
    log = args.output
    if not Path(log).exists():
        Path(log).touch()  # graph tuning alone: an empty log to hold the plan
    plan = tune_graph(mod, params, target, tuning_log=log, threads=_threads(), say=say)
    print(
        f"graph plan ({plan.kept} kept): predicted {plan.predicted_ms['default']:.2f} ms "
        f"default -> {plan.predicted_ms['tuned']:.2f} ms tuned; measured "
        f"{plan.measured_ms['default']:.2f} -> {plan.measured_ms['tuned']:.2f} ms "
        f"({plan.threads} threads); appended to {log}"
    )
    return 0


def _threads() -> int:
    return config_module.config.num_threads or (os.cpu_count() or 1)


def model_latency(mod: Any, params: Any, target: Target, log: str) -> tuple[float, float]:
    """Median ms of ``mod`` compiled with default schedules and with ``log`` applied,
    timed in alternating blocks on the same random input."""
    default = compile(mod, params, target).load()
    tuned = compile(mod, params, target, tuning_log=log).load()
    ms = model_latencies({"default": default, "tuned": tuned}, default.num_threads, rounds=6)
    return ms["default"], ms["tuned"]


def add_tune_command(commands: argparse._SubParsersAction) -> None:
    """Register ``tune`` on the ``ember`` command's subparsers."""
    p = commands.add_parser("tune", help="autotune a model's kernels; write a tuning log")
    add_model_args(p)
    add_target_arg(p)
    p.add_argument("--trials", type=int, default=200, help="measured configs, all kernels")
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="tune for this much wall time instead of --trials; kernels share it by run time",
    )
    p.add_argument(
        "--no-latency", action="store_true", help="skip timing the model before and after"
    )
    p.add_argument("-o", "--output", required=True, help="tuning log to write (JSON lines)")
    p.add_argument("--tuner", choices=("model", "random"), default="model")
    p.add_argument("--parallel", type=int, default=None, help="build processes (default: cores)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per measurement")
    p.add_argument(
        "--graph",
        action="store_true",
        help="after the kernels, tune the convs' channel blocks (graph-level); plan -> log",
    )
    p.add_argument(
        "--graph-only", action="store_true", help="graph-level tuning alone (no kernel tuning)"
    )
    p.set_defaults(func=cmd_tune)
