"""`make demo`: compile a real model file for this CPU, check it, and time it.

Run as ``python -m ember.demo``. Steps:

1. write the zoo ResNet-18 (random weights) as an ONNX file;
2. import it with ``ember.frontend.from_onnx``;
3. compile it for this CPU into one artifact and load it with the runtime;
4. check the artifact against ember's numpy reference executor and onnxruntime
   on a fresh random input;
5. time ember beside onnxruntime (same threads, alternating blocks, medians).

Writing kernels by hand with tensor expressions is shown in
``docs/tutorials/custom_operator.md`` and ``benchmarks/matmul.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import ember
from ember.testing import zoo


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def _model_demo(workdir: Path) -> bool:
    path = workdir / "resnet18.onnx"
    shape = zoo.input_shape("resnet18")
    print(f"[1/5] writing zoo resnet18 {shape} with random weights -> {path.name}")
    zoo.to_onnx("resnet18", path)

    print("[2/5] importing with ember.frontend.from_onnx")
    mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
    summary = ember.graph.analysis.summarize(mod, params)
    print(f"      {summary['num_calls']} ops, {summary['flops'] / 1e9:.2f} GFLOPs")

    print("[3/5] compiling for this CPU (target 'host')")
    start = time.perf_counter()
    lib = ember.compile(mod, params, target="host")
    artifact = lib.export(workdir / "resnet18.ember")
    graph, memory = lib.metadata["graph"], lib.metadata["memory"]
    print(
        f"      {time.perf_counter() - start:.1f} s: {graph['kernel_calls']} kernel calls, "
        f"{graph['distinct_kernels']} distinct kernels, workspace "
        f"{memory['workspace_bytes'] / 2**20:.1f} MiB for "
        f"{memory['total_intermediate_bytes'] / 2**20:.1f} MiB of intermediates"
    )
    model = ember.load(artifact)

    print("[4/5] checking against the reference executor and onnxruntime")
    x = np.random.default_rng().standard_normal(shape, dtype=np.float32)
    ours = model.run({"data": x})[0]
    reference = ember.graph.interpret(mod, params, {"data": x})[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"data": x})[0]
    ok = True
    for name, other in (("reference executor", reference), ("onnxruntime", theirs)):
        rel = float(np.max(np.abs(ours - other)) / (np.max(np.abs(other)) + 1e-12))
        good = rel <= 1e-4
        ok = ok and good
        print(f"      vs {name:18s} max relative error {rel:.1e} ({'OK' if good else 'MISMATCH'})")

    print("[5/5] latency at batch 1 (medians of alternating blocks of calls)")
    # Alternate blocks of calls: each runtime's threads spin briefly after a call, which
    # would slow whichever runs right after it on a small machine.
    times: dict[str, list[float]] = {"ember": [], "onnxruntime": []}
    runs = {
        "ember": lambda: model.run({"data": x}),
        "onnxruntime": lambda: session.run(None, {"data": x}),
    }
    for _ in range(6):
        for name, run in runs.items():
            time.sleep(0.05)  # the other runtime's threads stop spinning
            run()  # wakes this runtime's threads; not timed
            times[name].append(_median_ms(run, 5))
    ember_ms, ort_ms = (float(np.median(v)) for v in times.values())
    print(f"      ember        {ember_ms:8.1f} ms")
    print(f"      onnxruntime  {ort_ms:8.1f} ms   (ember / onnxruntime = {ember_ms / ort_ms:.2f})")
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ember-demo-") as tmp:
        ok = _model_demo(Path(tmp))
    print("demo: all checks passed" if ok else "demo: a check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
