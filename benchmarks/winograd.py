"""Winograd F(2x2,3x3) / F(4x4,3x3) vs the direct register-tiled conv, per ResNet 3x3 layer.

Each layer is conv + bias + relu in the blocked NCHW16c layout that alter_layout gives on
an AVX-512 host (NCHW8c otherwise): one direct register-tiled kernel, or Winograd's three
kernels (input transform, batched GEMM, output transform + epilogue) run back to back,
timed in alternating blocks (median wall time of many calls) at 1 and 2 threads, plus the
median CPU time of the calling thread at 1 thread (robust to the machine's other jobs):

    .venv/bin/python benchmarks/winograd.py                 # all layers, 1 and 2 threads
    .venv/bin/python benchmarks/winograd.py --rounds 200 --threads 1 --models ''
    .venv/bin/python benchmarks/winograd.py --skip-layers --models resnet18   # models only

The model table compiles each zoo model twice (Winograd off via ``use_rule``, then the
default rule) and times both artifacts and onnxruntime in alternation at 1 thread.

The ratio column is direct / winograd (above 1: Winograd is faster). The pass
``ember.graph.passes.winograd`` chooses from this table (its ``choose_tile_size``).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved_medians, max_rel_err, table  # noqa: E402

from ember.driver import build_module  # noqa: E402
from ember.graph.ir import Function, TensorType, Var  # noqa: E402
from ember.ops import call  # noqa: E402
from ember.target import Target  # noqa: E402
from ember.te.lower import lower  # noqa: E402
from ember.topi.strategy import schedule_primitive  # noqa: E402

LAYERS = [(64, 56), (128, 28), (256, 14), (512, 7)]
"""(channels, height = width) of ResNet-18/50's 3x3 stride-1 convs (input = output channels)."""


def _functions(channels: int, size: int, block: int, tile_size: int | None) -> list[Function]:
    """The kernels of one conv + bias + relu: one direct kernel, or Winograd's three."""
    tag = "direct" if tile_size is None else f"f{tile_size}"
    x = Var("x", TensorType((1, channels // block, size, size, block)))
    b = Var("b", TensorType((channels,)))
    if tile_size is None:
        w = Var("w", TensorType((channels // block, channels // block, 3, 3, block, block)))
        body = call("nn.relu", call("nn.conv2d_nchwc", x, w, b, padding=1))
        return [Function((x, w, b), body, {"primitive": True, "name": f"{tag}_{channels}"})]
    v = call("nn.winograd_input_transform", x, padding=1, tile_size=tile_size)
    vv = Var("v", v.type)
    alpha = tile_size + 2
    u = Var("u", TensorType((alpha, alpha, channels // block, channels // block, block, block)))
    mm = call("nn.winograd_batch_matmul", vv, u)
    mv = Var("m", mm.type)
    y = call("nn.winograd_output_transform", mv, b, tile_size=tile_size, output_size=(size, size))
    return [
        Function((x,), v, {"primitive": True, "name": f"{tag}_in_{channels}"}),
        Function((vv, u), mm, {"primitive": True, "name": f"{tag}_gemm_{channels}"}),
        Function((mv, b), call("nn.relu", y), {"primitive": True, "name": f"{tag}_out_{channels}"}),
    ]


def _chain(module, funcs: list[Function], rng: np.random.Generator) -> Callable[[], None]:
    """One call of the conv: its kernels in order, each output feeding the next kernel."""
    values: dict[Var, np.ndarray] = {}
    steps = []
    previous = None
    for func in funcs:
        args = []
        for k, p in enumerate(func.params):
            if k == 0 and previous is not None:
                args.append(previous)
            else:
                values[p] = rng.standard_normal(p.type.shape).astype("float32")
                args.append(values[p])
        out = np.zeros(func.ret_type.shape, "float32")
        kernel = module[func.attrs["name"]]
        argv, _ = kernel.pack(*args, out)
        steps.append((kernel._fn, argv, args, out))  # the arrays stay alive with argv
        previous = out

    def run() -> None:
        for fn, argv, _, _ in steps:
            fn(argv)

    return run


def _cpu_ms(fn: Callable[[], None], rounds: int) -> float:
    """Median CPU time of the calling thread per call (1 thread: robust to preemption)."""
    samples = []
    for _ in range(rounds):
        start = time.thread_time()
        fn()
        samples.append((time.thread_time() - start) * 1e3)
    return float(np.median(samples))


def measure(rounds: int, threads: list[int]) -> list[list[str]]:
    target = Target.parse("host")
    block = target.vector_lanes("float32")
    variants = {"direct": None, "F(2x2)": 2, "F(4x4)": 4}
    rows = []
    for channels, size in LAYERS:
        per_variant = {label: _functions(channels, size, block, t) for label, t in variants.items()}
        prims = []
        for funcs in per_variant.values():
            for func in funcs:
                s, args = schedule_primitive(func, target)
                prims.append(lower(s, args, name=func.attrs["name"]))
        module = build_module(prims, target)
        rng = np.random.default_rng(0)
        calls = {label: _chain(module, funcs, rng) for label, funcs in per_variant.items()}
        setter = getattr(module._lib, "ember_set_num_threads", None)
        flops = 2 * 9 * channels * channels * size * size
        for n in threads:
            if setter is not None:
                setter.argtypes = [ctypes.c_int32]
                setter(n)
            ms = interleaved_medians(calls, rounds)
            cpu = {k: _cpu_ms(fn, rounds) for k, fn in calls.items()} if n == 1 else None
            direct = ms["direct"]
            row = [
                f"{channels}x{size}x{size}",
                str(n),
                f"{direct:.3f} ({flops / direct / 1e6:.0f})",
            ]
            for label in ("F(2x2)", "F(4x4)"):
                row += [f"{ms[label]:.3f}", f"{direct / ms[label]:.2f}"]
            if cpu is not None:
                row += [" / ".join(f"{cpu[k]:.3f}" for k in variants)]
            else:
                row += ["-"]
            rows.append(row)
            print(" | ".join(row), flush=True)
    return rows


def measure_models(models: list[str], rounds: int, threads: int) -> list[list[str]]:
    """Whole-model latency: ember without Winograd (before), with it (after), onnxruntime."""
    import tempfile

    import onnxruntime as ort

    import ember
    from ember.graph.passes.winograd import use_rule
    from ember.testing import zoo

    tmp = Path(tempfile.mkdtemp(prefix="ember-winograd-"))
    rows = []
    for name in models:
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path)
        shape = zoo.input_shape(name)
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
        with use_rule(lambda *shape: None):
            before = ember.compile(mod, params, target="host").load()
        after_lib = ember.compile(mod, params, target="host")
        steps = after_lib.metadata["steps"]
        n_wino = sum(1 for step in steps if "winograd_batch" in step["kernel"])
        after = after_lib.load()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ref = sess.run(None, {"data": x})[0]
        errs = []
        for model in (before, after):
            model.set_num_threads(threads)
            got = model.run({"data": x})[0]
            errs.append(max_rel_err(got, ref))
        ms = interleaved_medians(
            {
                "before": lambda m=before, x=x: m.run({"data": x}),
                "after": lambda m=after, x=x: m.run({"data": x}),
                "ort": lambda s=sess, x=x: s.run(None, {"data": x}),
            },
            rounds,
        )
        row = [
            name,
            str(threads),
            str(n_wino),
            f"{ms['before']:.1f}",
            f"{ms['after']:.1f}",
            f"{ms['before'] / ms['after']:.2f}",
            f"{ms['ort']:.1f}",
            f"{ms['before'] / ms['ort']:.2f} -> {ms['after'] / ms['ort']:.2f}",
            f"{errs[1]:.1e}",
        ]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="timed calls per variant")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", default="resnet18,resnet50", help="'' for none")
    parser.add_argument("--model-rounds", type=int, default=40)
    parser.add_argument("--skip-layers", action="store_true")
    opts = parser.parse_args()
    rows = [] if opts.skip_layers else measure(opts.rounds, opts.threads)
    models = [m for m in opts.models.split(",") if m]
    model_rows = measure_models(models, opts.model_rounds, 1) if models else []
    print()
    if model_rows:
        print(header("Model latency at 1 thread: ember before / after Winograd vs onnxruntime"))
        head = ["model", "threads", "winograd convs", "before ms", "after ms", "speedup",
                "ort ms", "ember / ort", "max rel err"]  # fmt: skip
        print(table(model_rows, head))
        print()
    if not rows:
        return
    print(header("Winograd vs direct 3x3 conv (conv + bias + relu, ms; GFLOP/s of direct)"))
    head = [
        "layer",
        "threads",
        "direct ms (GFLOP/s)",
        "F(2x2) ms",
        "ratio",
        "F(4x4) ms",
        "ratio",
        "1-thread CPU ms direct / F2 / F4",
    ]
    print(table(rows, head))


if __name__ == "__main__":
    main()
