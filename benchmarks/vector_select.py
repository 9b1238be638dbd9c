"""Vector min/max/select and select-free concat/padding: before vs after, one run.

    python benchmarks/vector_select.py [--models squeezenet1_1,densenet121] [--threads 1]
        [--rounds 30] [--small] [--top 12]

"after" is ember as it is. "before" compiles the same model with the changes of this
work switched off (in this process, by patching, so the rest of the compiler is the
same on both sides):

- the ``partition_selects`` loop IR pass (concat inputs / padding rows split into ranges
  instead of a select chain per element) is dropped from the pipeline;
- the C backend prints min/max/select/comparisons on vectors lane by lane (the old
  GNU statement-expression loop) instead of masks, blends and vminps/vmaxps;
- the vectorizer broadcasts a lane-uniform select condition to all lanes;
- padded pooling inputs get the plain injective schedule (all axes fused).

For each model: whole-model latency (interleaved medians, with onnxruntime for scale),
then per-kernel medians from the profiler for the kernels that changed most -- the
pooling, concat and epilogue kernels. Output is markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved_medians, max_rel_err, table  # noqa: E402

MODELS = ["squeezenet1_1", "densenet121"]


@contextlib.contextmanager
def features_off() -> Iterator[None]:
    """Compile as before this work (see the module docstring); restores everything."""
    from ember.codegen import c_expr
    from ember.tir import expr as E
    from ember.tir import passes
    from ember.tir.passes import vectorize
    from ember.topi import schedule_x86

    def old_select(self, e):  # the vectorizer's select before: every part to n lanes
        parts = [self.expr(x) for x in (e.condition, e.true_value, e.false_value)]
        n = max(vectorize._lanes(p) for p in parts)
        return E.Select(*(vectorize._broadcast(p, n) for p in parts))

    saved_pipeline = list(passes.PIPELINE)
    saved = [
        (c_expr.ExprPrinter, "_vector_select", c_expr.ExprPrinter._vector_select),
        (vectorize._Vectorizer, "visit_Select", vectorize._Vectorizer.visit_Select),
        (schedule_x86, "schedule_materialized", schedule_x86.schedule_materialized),
    ]
    passes.PIPELINE[:] = [(n, f) for n, f in passes.PIPELINE if n != "partition_selects"]
    c_expr.ExprPrinter._vector_select = lambda self, e: None
    vectorize._Vectorizer.visit_Select = old_select
    schedule_x86.schedule_materialized = schedule_x86.schedule_injective
    try:
        yield
    finally:
        passes.PIPELINE[:] = saved_pipeline
        for owner, name, value in saved:
            setattr(owner, name, value)


def _kernel_rows(before, after, top: int) -> list[list[str]]:
    """Kernel calls matched by graph node name, largest absolute change first."""
    old = {r.name: r for r in before.rows}
    rows = []
    for r in after.rows:
        o = old.get(r.name)
        if o is None:
            continue
        rows.append((o.ms - r.ms, r.name, r.kernel, o.ms, r.ms))
    rows.sort(key=lambda t: -abs(t[0]))
    out = []
    for _, name, kernel, o_ms, n_ms in rows[:top]:
        ratio = n_ms / o_ms if o_ms > 0 else float("nan")
        out.append([name[:36], kernel[:40], f"{o_ms:.3f}", f"{n_ms:.3f}", f"{ratio:.2f}"])
    return out


def _kind_totals(before, after) -> list[list[str]]:
    """Summed kernel time by kind, before and after (a concat fused into a pool counts as
    pooling)."""

    def kind(name: str, kernel: str) -> str:
        text = f"{name} {kernel}".lower()
        if "pool" in text:
            return "pooling kernels"
        if "concat" in text:
            return "concat kernels"
        return "other kernels"

    sums: dict[str, list[float]] = {}
    for prof, col in ((before, 0), (after, 1)):
        for r in prof.rows:
            sums.setdefault(kind(r.name, r.kernel), [0.0, 0.0])[col] += r.ms
    rows = []
    for k, (a, b) in sorted(sums.items()):
        rows.append([k, f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}" if a else "-"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--small", action="store_true", help="the zoo's small variants")
    parser.add_argument("--top", type=int, default=12, help="kernel rows per model")
    args = parser.parse_args()

    import onnxruntime as ort

    import ember
    from ember.testing import zoo

    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-vs-"))
    lat_rows = []
    details = []
    for name in args.models.split(","):
        options = zoo.SMALL[name] if args.small else {}
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path, **options)
        shape = zoo.input_shape(name, **options)
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
        with features_off():
            old = ember.compile(mod, params, target="host").load()
        new = ember.compile(mod, params, target="host").load()
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for m in (old, new):
            m.set_num_threads(args.threads)
        ref = sess.run(None, {"data": x})[0]
        errs = []
        for m in (old, new):
            got = m.run({"data": x})[0]
            errs.append(max_rel_err(got, ref))
        med = interleaved_medians(
            {
                "before": lambda m=old, x=x: m.run({"data": x}),
                "after": lambda m=new, x=x: m.run({"data": x}),
                "ort": lambda s=sess, x=x: s.run(None, {"data": x}),
            },
            rounds=args.rounds,
        )
        label = f"{name}{' (small)' if args.small else ''}"
        lat_rows.append(
            [
                label,
                f"{med['before']:.2f}",
                f"{med['after']:.2f}",
                f"{med['after'] / med['before']:.2f}",
                f"{med['ort']:.2f}",
                f"{errs[0]:.1e} / {errs[1]:.1e}",
            ]
        )
        print(" ".join(lat_rows[-1]), flush=True)
        # Profiles alternate too, so both sides see the same machine drift.
        reps = max(5, args.rounds // 3)
        profs: dict[str, list] = {"before": [], "after": []}
        for _ in range(3):
            profs["before"].append(old.profile(repeat=reps))
            profs["after"].append(new.profile(repeat=reps))
        before = min(profs["before"], key=lambda p: p.total_ms)
        after = min(profs["after"], key=lambda p: p.total_ms)
        details.append((label, before, after))

    print()
    print(header(f"Vector select / concat, {args.threads} thread(s): before vs after"))
    print(
        table(
            lat_rows,
            ["model", "before ms", "after ms", "after/before", "ort ms", "rel err b/a"],
        )
    )
    for label, before, after in details:
        print(f"\n### {label}: profiler totals {before.total_ms:.3f} -> {after.total_ms:.3f} ms\n")
        print(table(_kind_totals(before, after), ["kind", "before ms", "after ms", "ratio"]))
        print()
        print(
            table(
                _kernel_rows(before, after, args.top),
                ["kernel call", "kernel", "before ms", "after ms", "after/before"],
            )
        )


if __name__ == "__main__":
    main()
