"""`make demo`: import a real model file, check it against onnxruntime, and build a fast kernel.

Run as ``python -m ember.demo``. Steps:

1. write the zoo ResNet-18 (random weights) as an ONNX file;
2. import it with ``ember.frontend.from_onnx`` and optimize the graph;
3. run ember's numpy reference executor and onnxruntime on the same input and
   compare;
4. build a matmul kernel from a tensor-expression schedule for this CPU and time
   it against numpy (OpenBLAS).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def _model_demo(workdir: Path) -> bool:
    import onnxruntime as ort

    import ember
    from ember.graph.passes import optimize
    from ember.testing import zoo

    path = workdir / "resnet18.onnx"
    shape = zoo.input_shape("resnet18")
    print(f"[1/4] writing zoo resnet18 {shape} with random weights -> {path}")
    zoo.to_onnx("resnet18", path)

    print("[2/4] importing with ember.frontend.from_onnx and optimizing the graph")
    start = time.perf_counter()
    mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
    opt_mod = optimize(mod, params)
    print(f"      {time.perf_counter() - start:.2f} s")
    summary = ember.graph.analysis.summarize(opt_mod)
    print(f"      {summary['num_calls']} ops, {summary['flops'] / 1e9:.2f} GFLOPs")

    x = np.random.default_rng().standard_normal(shape, dtype=np.float32)
    print("[3/4] reference executor vs onnxruntime on a fresh random input")
    ours = ember.graph.interpret(opt_mod, {}, {"data": x})[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"data": x})[0]
    rel = float(np.max(np.abs(ours - theirs)) / (np.max(np.abs(theirs)) + 1e-12))
    ok = rel <= 1e-4
    print(f"      max relative error {rel:.2e} ({'OK' if ok else 'MISMATCH'})")
    ref_ms = _median_ms(lambda: ember.graph.interpret(opt_mod, {}, {"data": x}), 3)
    ort_ms = _median_ms(lambda: session.run(None, {"data": x}), 20)
    print(f"      reference executor {ref_ms:.1f} ms (numpy oracle, not built for speed)")
    print(f"      onnxruntime        {ort_ms:.1f} ms")
    return ok


def _kernel_demo() -> bool:
    import ember
    from ember import te

    n = 512
    print(f"[4/4] building a {n}x{n}x{n} float32 matmul from a TE schedule for this CPU")
    a_t = te.placeholder((n, n), "float32", name="A")
    b_t = te.placeholder((n, n), "float32", name="B")
    k = te.reduce_axis((0, n), name="k")
    c_t = te.compute((n, n), lambda i, j: te.sum(a_t[i, k] * b_t[k, j], axis=k), name="C")
    s = te.create_schedule(c_t.op)
    i, j = s[c_t].op.axis
    (kk,) = s[c_t].op.reduce_axis
    io, ii = s[c_t].split(i, factor=8)
    jo, ji = s[c_t].split(j, factor=32)
    s[c_t].reorder(io, jo, kk, ii, ji)
    s[c_t].vectorize(ji)
    s[c_t].parallel(io)
    func = ember.build(s, [a_t, b_t, c_t], target="host", name="matmul")

    rng = np.random.default_rng()
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    func(a, b, c)
    expected = a @ b
    ok = np.allclose(c, expected, rtol=1e-4, atol=1e-3)
    ember_ms = _median_ms(lambda: func(a, b, c), 20)
    numpy_ms = _median_ms(lambda: a @ b, 20)
    gflop = 2 * n**3 / 1e9
    print(f"      correct: {ok}")
    print(f"      ember  {ember_ms:7.2f} ms  {gflop / ember_ms * 1e3:6.1f} GFLOP/s")
    print(f"      numpy  {numpy_ms:7.2f} ms  {gflop / numpy_ms * 1e3:6.1f} GFLOP/s")
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ember-demo-") as tmp:
        ok = _model_demo(Path(tmp))
    ok = _kernel_demo() and ok
    print("demo: all checks passed" if ok else "demo: a check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
