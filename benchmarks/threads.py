"""How ember's parallel loops wait: OpenMP's default against a spinning pool and a sleeping one.

    python benchmarks/threads.py [--models resnet18,mobilenet_v2,squeezenet1_1] [--rounds 40]

ember's kernels run their parallel loops on libgomp's thread team. Between parallel
regions (one or more per kernel, dozens per inference) the workers wait, and how they
wait is the difference between a spinning thread pool and a sleeping one:

- ``default``: libgomp spins a while (GOMP_SPINCOUNT) and then sleeps on a futex;
- ``spin``: OMP_WAIT_POLICY=active: workers never sleep, a spinning pool;
- ``sleep``: OMP_WAIT_POLICY=passive: workers sleep at once, a pool woken per region.

The policy is read when libgomp loads, so each runs in its own process; each process
times ember against onnxruntime in alternating blocks (the ratio cancels the machine's
drift between processes) at 2 threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved_medians, table  # noqa: E402

POLICIES = {
    "default": {},
    "spin": {"OMP_WAIT_POLICY": "active"},
    "sleep": {"OMP_WAIT_POLICY": "passive"},
}


def child(artifact: str, onnx_path: str, threads: int, rounds: int) -> None:
    import numpy as np
    import onnxruntime as ort

    import ember

    m = ember.load(artifact)
    m.set_num_threads(threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng().standard_normal(m.inputs[0].shape).astype(np.float32)
    med = interleaved_medians(
        {
            "ember": lambda: m.run({"data": x}),
            "ort": lambda: sess.run(None, {"data": x}),
        },
        rounds=rounds,
    )
    print(json.dumps(med))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="resnet18,mobilenet_v2,squeezenet1_1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3, help="processes per policy and model")
    opts = p.parse_args()

    import ember
    from ember.testing import zoo

    tmp = Path(tempfile.mkdtemp(prefix="ember-threads-"))
    rows = []
    for name in opts.models.split(","):
        onnx_path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, onnx_path)
        mod, params = ember.frontend.from_onnx(
            str(onnx_path), shape={"data": zoo.input_shape(name)}
        )
        artifact = tmp / f"{name}.ember"
        ember.compile(mod, params, target="host").export(artifact)
        results: dict[str, list[dict]] = {k: [] for k in POLICIES}
        for _ in range(opts.repeats):  # policies in turn, so drift hits them alike
            for policy, env in POLICIES.items():
                cmd = [sys.executable, __file__, "--_child", str(artifact), str(onnx_path)]
                cmd += [str(opts.threads), str(opts.rounds)]
                out = subprocess.run(
                    cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True
                )
                results[policy].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for policy, runs in results.items():
            ember_ms = sorted(r["ember"] for r in runs)[len(runs) // 2]
            ratio = sorted(r["ember"] / r["ort"] for r in runs)[len(runs) // 2]
            rows.append([name, policy, f"{ember_ms:.2f}", f"{ratio:.2f}"])
            print(" ".join(rows[-1]), flush=True)
    print()
    print(header(f"OpenMP wait policy, batch 1, {opts.threads} threads"))
    print(table(rows, ["model", "workers wait by", "ember ms", "ember/ort"]))


if __name__ == "__main__":
    main()
