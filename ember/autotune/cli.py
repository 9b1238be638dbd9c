"""The ``ember tune`` command: tune a model's kernels and write a tuning log.

    ember tune r18.onnx --input '{"data": [1, 3, 224, 224]}' --trials 400 -o r18.jsonl
    ember compile model.onnx --input ... --tuning-log r18.jsonl -o r18.ember

An existing log is resumed: configs already in it are not measured again.
"""

from __future__ import annotations

import argparse
import sys


def cmd_tune(args: argparse.Namespace) -> int:
    from ember.autotune.extract import tune_model
    from ember.cli import import_model
    from ember.target import Target

    Target.parse(args.target)  # a typo in the target fails before the import
    mod, params = import_model(args.model, args.input, args.framework)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results = tune_model(
        mod,
        params,
        target=args.target,
        n_trial=args.trials,
        log=args.output,
        tuner=args.tuner,
        n_parallel=args.parallel,
        timeout=args.timeout,
        say=say,
    )
    for task, res in results:
        print(f"{task.describe[0] if task.describe else task.name}: {res.gflops:.1f} GFLOP/s")
    print(f"tuning log: {args.output}")
    return 0


def add_tune_command(commands: argparse._SubParsersAction) -> None:
    """Register ``tune`` on the ``ember`` command's subparsers."""
    from ember.cli import _add_model_args

    p = commands.add_parser("tune", help="autotune a model's kernels; write a tuning log")
    _add_model_args(p)
    p.add_argument("--target", default="host", help="host (this CPU)")
    p.add_argument("--trials", type=int, default=200, help="measured configs, all kernels")
    p.add_argument("-o", "--output", required=True, help="tuning log to write (JSON lines)")
    p.add_argument("--tuner", choices=("model", "random"), default="model")
    p.add_argument("--parallel", type=int, default=None, help="build processes (default: cores)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per measurement")
    p.set_defaults(func=cmd_tune)
