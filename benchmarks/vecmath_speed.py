"""Speed of float32 exp/log/log1p/sigmoid/tanh/erf: libm per lane (before) vs ember's
vector helpers (after), one process.

    python benchmarks/vecmath_speed.py [--n 1048576] [--repeats 200]

For each function one elementwise kernel ``out[i] = f(A[i])`` over ``--n`` floats, its
inner loop vectorized by the target's width, is built twice: with the default dialect
(ember's helpers, ``ember.codegen.vecmath``) and with a dialect whose float32
intrinsics are libm's (``LIBM_INTRINSICS``, no vector entries: the previous code, a
lane-by-lane loop of ``expf`` ...). Both run on the same inputs (random over
[-10, 10], positive for log) on one thread, alternating, and the minimum over
``--repeats`` runs is reported in ns per element.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

import ember
from ember import te
from ember.codegen import dialect as dialect_module
from ember.codegen.dialect import CDialect
from ember.codegen.intrinsics import LIBM_INTRINSICS
from ember.codegen.vecmath import VECMATH_FUNCTIONS
from ember.target import Target
from ember.tir import expr as E

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header  # noqa: E402


class Libm(CDialect):
    """float32 math through <math.h>, lane by lane (ember before vecmath)."""

    name = "c-libm"
    intrinsics = CDialect.intrinsics | dict(LIBM_INTRINSICS)
    vector_intrinsics = {}


def _kernel(name: str, n: int, lanes: int) -> ember.runtime.Module:
    A = te.placeholder((n,), "float32", name="A")
    out = te.compute((n,), lambda i: E.call_intrin("float32", name, A[i]), name="out")
    s = te.create_schedule(out.op)
    _, inner = s[out].split(out.op.axis[0], factor=lanes)
    s[out].vectorize(inner)
    return ember.build(s, [A, out], target="host", name=f"k_{name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    target = Target.parse("host")
    lanes = target.vector_lanes("float32")
    arch = target.arch
    rng = np.random.default_rng(0)
    print(header("float32 vector math: libm per lane vs ember's vector helpers"))
    print(f"{args.n} elements, {lanes}-lane vectors, 1 thread, min of {args.repeats} runs\n")
    print("| function | libm ns/elem | ember ns/elem | speedup | max rel. diff |")
    print("|---|---|---|---|---|")
    for name in VECMATH_FUNCTIONS:
        new = _kernel(name, args.n, lanes)
        with mock.patch.dict(dialect_module.DIALECTS, {arch: Libm()}):
            old = _kernel(name, args.n, lanes)
        assert "expf(" not in new.get_source() and "float32x" in old.get_source()
        x = rng.uniform(-10, 10, args.n).astype(np.float32)
        if name.startswith("log"):
            x = np.abs(x)
        outs = {"old": np.zeros_like(x), "new": np.zeros_like(x)}
        best = {"old": np.inf, "new": np.inf}
        for _ in range(args.repeats):
            for key, f in (("old", old), ("new", new)):
                t0 = time.perf_counter()
                f(x, outs[key])
                best[key] = min(best[key], time.perf_counter() - t0)
        rel = np.max(np.abs(outs["new"] - outs["old"]) / np.maximum(np.abs(outs["old"]), 1e-30))
        ns_old, ns_new = (best[k] / args.n * 1e9 for k in ("old", "new"))
        print(f"| {name} | {ns_old:.2f} | {ns_new:.2f} | {ns_old / ns_new:.1f}x | {rel:.1e} |")


if __name__ == "__main__":
    main()
