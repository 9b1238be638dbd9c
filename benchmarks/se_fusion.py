"""Activations in conv epilogues and blocked squeeze-and-excitation: before vs after.

    python benchmarks/se_fusion.py [--models efficientnet_b0,mobilenet_v3_large]
        [--threads 1] [--rounds 20] [--small] [--counts-only]

"after" is ember as it is. "before" compiles the same model in this process with this
work switched off by patching, so the rest of the compiler is the same on both sides:
no ``rewrite_activations`` in the optimize pipeline, no diamond fusion in ``fuse_ops``,
and ``alter_layout`` without blocked global pools or blocked (N, C, 1, 1) operands.

For each model: kernels and layout transforms after the graph steps (exact), then
whole-model latency (both artifacts and onnxruntime alternating, min and median) and
the profiler's per-kernel times summed by kernel kind (min per call over rounds).
Output is markdown.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np

import ember
from ember.driver.compiler import kernel_graph
from ember.graph.ir import Call
from ember.graph.passes.fuse_ops import kernels
from ember.graph.visitor import post_order
from ember.target import Target
from ember.testing import zoo

# the modules (ember.graph.passes exports functions of the same names)
pipeline_module = importlib.import_module("ember.graph.passes.pipeline")
fuse_ops_module = importlib.import_module("ember.graph.passes.fuse_ops")
alter_layout_module = importlib.import_module("ember.graph.passes.alter_layout")

LARGE = 1000
"""A layout transform of at least this many values moves a feature map, not pooled values."""


@contextlib.contextmanager
def before() -> Iterator[None]:
    """The compiler without this work (see the module doc)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(pipeline_module, "rewrite_activations", _same))
        stack.enter_context(mock.patch.object(fuse_ops_module, "_diamond", _no_diamond))
        stack.enter_context(mock.patch.object(alter_layout_module, "GLOBAL_POOLS", {}))
        stack.enter_context(
            mock.patch.object(alter_layout_module, "_spatial_broadcast", lambda *a: False)
        )
        yield


def _same(mod):  # type: ignore[no-untyped-def]
    return mod


def _no_diamond(*args):  # type: ignore[no-untyped-def]
    return None


def counts(mod, params, target: Target) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(kernels, layout_transform calls, those moving at least LARGE values)."""
    _, fused = kernel_graph(mod, params, target)
    found = kernels(fused)
    transforms = [
        n
        for k in found
        for n in post_order(k.op.body)
        if isinstance(n, Call) and n.op.name == "layout_transform"
    ]
    return len(found), len(transforms), sum(n.type.size >= LARGE for n in transforms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="efficientnet_b0,mobilenet_v3_large")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--small", action="store_true", help="the zoo's SMALL variants")
    ap.add_argument("--counts-only", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort

    target = Target.parse("host")
    tmp = Path(tempfile.mkdtemp(prefix="ember_se_fusion_"))
    for name in args.models.split(","):
        options = zoo.SMALL[name] if args.small else {}
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path, **options)
        shape = zoo.input_shape(name, **options)
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
        print(f"\n### {name} ({'small' if args.small else 'full size'}, {args.threads} thread)\n")
        print("| | kernels | layout transforms | of them >= 1000 values |\n|---|---|---|---|")
        with before():
            print("| before | {} | {} | {} |".format(*counts(mod, params, target)))
        print("| after | {} | {} | {} |".format(*counts(mod, params, target)))
        if args.counts_only:
            continue
        with before():
            old = ember.compile(mod, params, target=target).load()
        new = ember.compile(mod, params, target=target).load()
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        want = sess.run(None, {"data": x})[0]
        got = new.run({"data": x})[0]
        err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        runs = {
            "before": lambda m=old, feed={"data": x}: m.run(feed),
            "after": lambda m=new, feed={"data": x}: m.run(feed),
            "onnxruntime": lambda s=sess, feed={"data": x}: s.run(None, feed),
        }
        for m in (old, new):
            m.set_num_threads(args.threads)
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        best: dict[str, dict[tuple[str, str], float]] = {"before": {}, "after": {}}
        for _ in range(args.rounds):
            for key, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[key].append(time.perf_counter() - start)
            for key, m in (("before", old), ("after", new)):
                for row in m.profile(repeat=3, warmup=1).rows:
                    call = (row.name, row.kernel)
                    best[key][call] = min(best[key].get(call, np.inf), row.ms)
        ort_min = min(seconds["onnxruntime"])
        print(f"\nafter vs onnxruntime: max relative error {err:.1e}\n")
        print("| | min ms | median ms | min / ort min |\n|---|---|---|---|")
        for key, ts in seconds.items():
            ms = np.array(ts) * 1e3
            print(f"| {key} | {ms.min():.2f} | {np.median(ms):.2f} | {min(ts) / ort_min:.2f} |")
        print("\nper-kernel min, summed by kind:\n")
        for key, rows in best.items():
            kinds: dict[str, float] = collections.defaultdict(float)
            for (_, kernel), ms in rows.items():
                kinds[kernel.rsplit("_", 1)[0]] += ms
            top = sorted(kinds.items(), key=lambda kv: -kv[1])[:6]
            shown = ", ".join(f"{k} {v:.2f}" for k, v in top)
            print(f"- {key}: {sum(rows.values()):.2f} ms over {len(rows)} calls ({shown})")


if __name__ == "__main__":
    main()
