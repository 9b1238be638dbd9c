"""ember next to another thread pool in the same process: how much each slows the other.

    python benchmarks/interference.py [--models resnet50,mobilenet_v2] [--threads 2]
                                      [--parallel pool,openmp] [--calls 40]

A service that runs ember also runs numpy, torch or onnxruntime in the same process,
each with its own worker threads that spin for a while after a call. Per model and per
way ember runs its parallel loops (``pool``: ember's thread pool, the default;
``openmp``: the same kernels with ``#pragma omp parallel for``, as before the pool), one
fresh process times, at the same thread count:

- ``alone``: ember's run, back to back;
- ``after ort``: ember's run right after an onnxruntime run of the same model (its
  intra-op pool still spinning), and ``ort after``: onnxruntime's run right after ember's;
- ``after blas``: ember's run right after a numpy matmul (OpenBLAS's threads);
- each slowdown is the median of those runs over the median alone (1.00: no effect).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

VARIANTS = ("pool", "openmp")


def _median_ms(fn, calls: int, before=None) -> float:
    times = []
    for _ in range(calls):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def child(artifact: str, onnx_path: str, threads: int, calls: int) -> None:
    import onnxruntime as ort

    from ember.runtime import load

    model = load(artifact)
    model.set_num_threads(threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    name = model.inputs[0].name
    x = np.random.default_rng(0).standard_normal(model.inputs[0].shape).astype(np.float32)
    a = np.random.default_rng(1).standard_normal((384, 384))

    def run_ember() -> None:
        model.run({name: x})

    def run_ort() -> None:
        sess.run(None, {name: x})

    def run_blas() -> None:
        a @ a

    for fn in (run_ember, run_ort, run_blas, run_ember, run_ort):
        fn()
    rest = lambda: time.sleep(0.05)  # every pool asleep again  # noqa: E731
    result = {
        "alone": _median_ms(run_ember, calls, rest),
        "ort_alone": _median_ms(run_ort, calls, rest),
        "after_ort": _median_ms(run_ember, calls, run_ort),
        "ort_after": _median_ms(run_ort, calls, run_ember),
        "after_blas": _median_ms(run_ember, calls, run_blas),
    }
    print(json.dumps(result))


def _compile(name: str, variant: str, workdir: Path) -> tuple[Path, Path]:
    import ember
    from ember.codegen import dialect
    from ember.testing import zoo

    onnx_path = workdir / f"{name}.onnx"
    if not onnx_path.exists():
        zoo.to_onnx(name, onnx_path)
    artifact = workdir / f"{name}.{variant}.ember"
    if not artifact.exists():
        saved = dict(dialect.DIALECTS)
        if variant == "openmp":
            dialect.DIALECTS.update({k: dialect.OpenMP() for k in saved})
        try:
            mod, params = ember.frontend.from_onnx(
                str(onnx_path), shape={"data": zoo.input_shape(name)}
            )
            ember.compile(mod, params, target="host").export(artifact)
        finally:
            dialect.DIALECTS.update(saved)
    return artifact, onnx_path


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="resnet50,mobilenet_v2,squeezenet1_1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parallel", default=",".join(VARIANTS))
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3, help="processes per model and variant")
    p.add_argument("--workdir", help="keep ONNX files and artifacts here (reused)")
    opts = p.parse_args()
    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="ember-interference-"))
    workdir.mkdir(parents=True, exist_ok=True)
    variants = opts.parallel.split(",")
    rows = []
    for name in opts.models.split(","):
        files = {v: _compile(name, v, workdir) for v in variants}
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(opts.repeats):  # variants in turn: the machine's drift hits both
            for v in variants:
                artifact, onnx_path = files[v]
                cmd = [sys.executable, __file__, "--_child", str(artifact), str(onnx_path)]
                cmd += [str(opts.threads), str(opts.calls)]
                env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads)}
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                runs[v].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for v in variants:
            med = {k: float(np.median([r[k] for r in runs[v]])) for k in runs[v][0]}
            rows.append(
                [
                    name,
                    v,
                    f"{med['alone']:.2f}",
                    f"{med['after_ort'] / med['alone']:.2f}",
                    f"{med['after_blas'] / med['alone']:.2f}",
                    f"{med['ort_alone']:.2f}",
                    f"{med['ort_after'] / med['ort_alone']:.2f}",
                ]
            )
            print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    print()
    print(header(f"Interference in one process, batch 1, {opts.threads} threads"))
    head = ["model", "ember loops", "ember alone ms", "after ort", "after blas"]
    head += ["ort alone ms", "ort after ember"]
    print(table(rows, head))


if __name__ == "__main__":
    main()
