"""ember vs onnxruntime latency per zoo model at batch 1, same thread count, one run.

    python benchmarks/models.py [--models resnet18,...] [--threads 2,1] [--rounds 30]

Both run the same ONNX file (random weights); ember's artifact and onnxruntime's
session are timed in alternation and the medians compared. ratio = ember / ort
(below 1: ember is faster).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZOO_BENCH_MODELS as MODELS
from _common import header, interleaved_medians, max_rel_err, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="2,1")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    import onnxruntime as ort

    import ember
    from ember.testing import zoo

    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    ratios: dict[int, list[float]] = {t: [] for t in threads}
    for name in args.models.split(","):
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path)
        shape = zoo.input_shape(name)
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
        model = ember.compile(mod, params, target="host").load()
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ref = None
        row = [name]
        for t in threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = t
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            model.set_num_threads(t)
            if ref is None:
                ref = sess.run(None, {"data": x})[0]
                got = model.run({"data": x})[0]
                err = max_rel_err(got, ref)
                row.append(f"{err:.1e}")
            med = interleaved_medians(
                {
                    "ember": lambda m=model, x=x: m.run({"data": x}),
                    "ort": lambda s=sess, x=x: s.run(None, {"data": x}),
                },
                rounds=args.rounds,
            )
            ratio = med["ember"] / med["ort"]
            ratios[t].append(ratio)
            row += [f"{med['ember']:.1f}", f"{med['ort']:.1f}", f"{ratio:.2f}"]
        rows.append(row)
        print(" ".join(row), flush=True)
    head = ["model", "max rel err"]
    for t in threads:
        head += [f"ember ms ({t}T)", f"ort ms ({t}T)", f"ratio ({t}T)"]
    geo = ["geomean", ""]
    for t in threads:
        geo += ["", "", f"{float(np.exp(np.mean(np.log(ratios[t])))):.2f}"]
    rows.append(geo)
    print()
    print(header("Model latency, batch 1: ember vs onnxruntime"))
    print(table(rows, head))


if __name__ == "__main__":
    main()
