"""CLI commands that compile, run and time model artifacts.

ember compile model.onnx --input '{"data":[1,3,224,224]}' --target host -o model.ember
ember run model.ember --input data=x.npy -o out.npz
ember bench model.ember --repeat 50 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ember.errors import EmberRuntimeError


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def cmd_compile(args: argparse.Namespace) -> int:
    import ember
    from ember.cli import import_model
    from ember.target import Target

    Target.parse(args.target)  # a typo in the target fails before the import, not after
    start = time.perf_counter()
    print(f"importing {args.model}", file=sys.stderr)
    mod, params = import_model(args.model, args.input, args.framework)
    print(f"compiling for {args.target}", file=sys.stderr)
    compile_kwargs = {}
    if args.tuning_log:
        compile_kwargs["tuning_log"] = args.tuning_log  # its graph plan, if any, applies too
    if args.graph_plan:
        compile_kwargs["graph_plan"] = args.graph_plan
    lib = ember.compile(mod, params, target=args.target, progress=_progress, **compile_kwargs)
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


def _parse_data_args(items: list[str], inputs: list) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            if len(inputs) != 1:
                raise EmberRuntimeError(
                    f"--input {item!r} has no name, but the model has {len(inputs)} inputs",
                    hint="write --input NAME=FILE.npy",
                )
            name, path = inputs[0].name, item
        try:
            data[name] = np.load(path)
        except (OSError, ValueError) as err:
            raise EmberRuntimeError(f"cannot read input {name!r} from {path!r}: {err}") from None
    return data


def _random_inputs(model, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for info in model.inputs:
        if np.dtype(info.dtype).kind == "f":
            out[info.name] = rng.standard_normal(info.shape).astype(info.dtype)
        else:
            out[info.name] = rng.integers(0, 10, info.shape).astype(info.dtype)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from ember.runtime import load

    model = load(args.artifact)
    inputs = _parse_data_args(args.input or [], model.inputs)
    if not inputs:
        inputs = _random_inputs(model, args.seed)
        print(f"no --input given: random inputs (seed {args.seed})", file=sys.stderr)
    outputs = model.run(inputs)
    for info, value in zip(model.outputs, outputs):
        print(
            f"{info.name}: shape {value.shape} {value.dtype}  min {value.min():.4g}  "
            f"max {value.max():.4g}  mean {value.mean():.4g}"
        )
    if args.output:
        np.savez(args.output, **{info.name: v for info, v in zip(model.outputs, outputs)})
        print(f"wrote {args.output}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ember.runtime import load

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


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``compile``, ``run`` and ``bench`` on the ``ember`` command's subparsers."""
    from ember.cli import _add_model_args

    p = commands.add_parser("compile", help="compile a model into one deployable artifact")
    _add_model_args(p)
    p.add_argument("--target", default="host", help="host (this CPU), 'llvm -mcpu=NAME', c")
    p.add_argument("-o", "--output", required=True, help="artifact to write (.ember)")
    p.add_argument(
        "--tuning-log",
        help="autotuning records to apply (JSON lines; a graph plan in it applies too)",
    )
    p.add_argument("--graph-plan", help="a saved graph tuning plan (JSON) to apply")
    p.set_defaults(func=cmd_compile)

    p = commands.add_parser("run", help="run an artifact on .npy inputs (or random ones)")
    p.add_argument("artifact")
    p.add_argument("--input", action="append", help="NAME=FILE.npy (repeat for several inputs)")
    p.add_argument("-o", "--output", help="write the outputs to this .npz file")
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("bench", help="time an artifact (median, p90)")
    p.add_argument("artifact")
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    p.add_argument("--profile", action="store_true", help="per-kernel times and GFLOP/s")
    p.set_defaults(func=cmd_bench)
