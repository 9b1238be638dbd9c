"""The verbs that import, compile, run and time models, and list targets.

ember info model.onnx --input '{"data":[1,3,224,224]}'
ember run-reference model.onnx --input data:1x3x224x224 --data data=x.npy -o out.npz
ember compile model.onnx --input '{"data":[1,3,224,224]}' --target host -o model.ember
ember run model.ember --data data=x.npy -o out.npz
ember bench model.ember --repeat 50 --threads 2
ember targets
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ember.cli.common import (
    add_data_arg,
    add_model_args,
    add_target_arg,
    feeds,
    import_model,
    parse_target,
    progress,
    read_data,
    report_outputs,
)
from ember.driver import compile
from ember.errors import EmberRuntimeError
from ember.graph.analysis import format_summary, summarize
from ember.graph.interpreter import interpret
from ember.runtime import load
from ember.target import list_targets


def cmd_info(args: argparse.Namespace) -> int:
    mod, params = import_model(args.model, args.input, args.framework)
    print(f"model: {args.model}")
    print(format_summary(summarize(mod, params)))
    if args.graph:
        print()
        print(mod)
    return 0


def cmd_run_reference(args: argparse.Namespace) -> int:
    mod, params = import_model(args.model, args.input, args.framework)
    inputs = [(p.name, p.type.shape, p.type.dtype) for p in mod.main.params if p.name not in params]
    given = read_data(args.data or [], [name for name, _, _ in inputs])
    values = interpret(mod, params, feeds(inputs, given, args.seed))
    report_outputs(summarize(mod)["output_names"], values, args.output)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    target = parse_target(args.target)  # a typo in the target fails before the import
    start = time.perf_counter()
    print(f"importing {args.model}", file=sys.stderr)
    mod, params = import_model(args.model, args.input, args.framework)
    print(f"compiling for {target} ({target.describe()})", file=sys.stderr)
    lib = compile(
        mod,
        params,
        target,
        tuning_log=args.tuning_log,  # its graph plan, if any, applies too
        graph_plan=args.graph_plan,
        progress=progress,
        dump_ir=args.dump_ir or False,
    )
    out = lib.export(args.output)
    meta = lib.metadata
    mem = meta["memory"]
    seconds = time.perf_counter() - start
    print(
        f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) in {seconds:.1f} s: "
        f"{meta['graph']['kernel_calls']} kernel calls, {meta['graph']['distinct_kernels']} "
        f"distinct kernels, workspace {mem['workspace_bytes'] / 2**20:.1f} MiB"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    model = load(args.artifact)
    items = list(args.data or [])
    if args.input:
        # `ember run --input NAME=FILE.npy` was the spelling before --data: still taken.
        print("ember run: --input is deprecated here, use --data NAME=FILE.npy", file=sys.stderr)
        items += args.input
    inputs = [(i.name, i.shape, i.dtype) for i in model.inputs]
    given = read_data(items, [name for name, _, _ in inputs])
    outputs = model.run(feeds(inputs, given, args.seed))
    report_outputs([o.name for o in model.outputs], outputs, args.output)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    model = load(args.artifact)
    if args.threads:
        model.set_num_threads(args.threads)
    if args.profile:
        if not hasattr(model, "profile"):
            raise EmberRuntimeError("this artifact's runtime has no per-kernel profiler yet")
        print(model.profile(repeat=args.repeat))
        return 0
    stats = model.benchmark(repeat=args.repeat)
    flops = model.metadata.get("graph", {}).get("flops")
    rate = f", {flops / stats['median_ms'] / 1e6:.1f} GFLOP/s" if flops else ""
    print(
        f"{Path(args.artifact).name}: median {stats['median_ms']:.2f} ms, "
        f"p90 {stats['p90_ms']:.2f} ms, min {stats['min_ms']:.2f} ms over {args.repeat} runs{rate}"
    )
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    rows = [("host", parse_target("host").describe(), "this machine")]
    for named in list_targets():
        if named.name == "host":
            continue
        aliases = f" (also: {', '.join(named.aliases)})" if named.aliases else ""
        rows.append((named.name, parse_target(named.name).describe(), named.description + aliases))
    width = max(len(r[0]) for r in rows)
    for name, what, description in rows:
        print(f"{name:<{width}}  {what}\n{'':<{width}}  {description}")
    print(
        "\nTVM target strings work too: 'llvm -mcpu=NAME [-mattr=+avx512f,...]', "
        "'llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72', 'c' (portable C)."
    )
    return 0


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    """Register info, run-reference, compile, run, bench and targets."""
    p = commands.add_parser(
        "info", help="import a model and print its graph summary (ops, parameters, FLOPs)"
    )
    add_model_args(p)
    p.add_argument("--graph", action="store_true", help="also print the imported graph IR")
    p.set_defaults(func=cmd_info)

    p = commands.add_parser(
        "run-reference",
        help="run a model with the numpy reference executor on random or given inputs",
    )
    add_model_args(p)
    add_data_arg(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--output", "-o", metavar="OUT.npz", help="save the outputs to a .npz file")
    p.set_defaults(func=cmd_run_reference)

    p = commands.add_parser("compile", help="compile a model into one deployable artifact")
    add_model_args(p)
    add_target_arg(p)
    p.add_argument("-o", "--output", required=True, help="artifact to write (.ember)")
    p.add_argument(
        "--tuning-log",
        help="autotuning records to apply (JSON lines; a graph plan in it applies too)",
    )
    p.add_argument("--graph-plan", help="a saved graph tuning plan (JSON) to apply")
    p.add_argument("--dump-ir", metavar="DIR", help="write the graph IR after every pass to DIR")
    p.set_defaults(func=cmd_compile)

    p = commands.add_parser("run", help="run an artifact on .npy inputs (or random ones)")
    p.add_argument("artifact")
    add_data_arg(p)
    p.add_argument("--input", action="append", help=argparse.SUPPRESS)  # old name of --data
    p.add_argument("-o", "--output", help="write the outputs to this .npz file")
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs (default 0)")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("bench", help="time an artifact (median, p90)")
    p.add_argument("artifact")
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    p.add_argument("--profile", action="store_true", help="per-kernel times and GFLOP/s")
    p.set_defaults(func=cmd_bench)

    p = commands.add_parser(
        "targets", help="list the named targets (SageMaker Neo device names as aliases)"
    )
    p.set_defaults(func=cmd_targets)
