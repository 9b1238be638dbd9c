"""ember vs onnxruntime latency per zoo model at batch 1, at the same thread count.

    python benchmarks/models.py [--models resnet18,...] [--threads 1,2] [--rounds 5]
                                [--seconds 2] [--json OUT.json] [--in-process]

Both systems run the same ONNX file (random weights, the published architecture).
By default each system is timed ALONE IN A FRESH PROCESS: one child process loads
ember's artifact (the runtime only: numpy + ctypes) or an onnxruntime session, warms
up, times calls for about ``--seconds`` and prints its median. Rounds alternate
(round r runs, for every thread count and model, ember then onnxruntime, or the other
way round in odd rounds), so the machine's drift falls on both systems alike, and no
runtime's spinning thread pool sits in the other's process. Per model and thread
count: the median over rounds of each round's ratio ember/ort (below 1: ember is
faster) with a bootstrap 90% interval of that median over rounds, and the geomean of
the median ratios.

``--in-process`` keeps the older mode: both in this process, timed in alternating
blocks of 5 calls after a pause (see ``_common.interleaved_blocks``).
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
from _common import ZOO_BENCH_MODELS as MODELS  # noqa: E402
from _common import (  # noqa: E402
    bootstrap_median,
    header,
    interleaved_medians,
    max_rel_err,
    table,
)

SYSTEMS = ("ember", "ort")


# ---------------------------------------------------------------- the child process
def child(system: str, path: str, threads: int, seconds: float, save: str | None) -> None:
    """Time one system alone in this process; print one JSON line with its call times."""
    if system == "ember":
        from ember.runtime import load  # the runtime only: what a deployment imports

        model = load(path)
        model.set_num_threads(threads)
        name, shape = model.inputs[0].name, model.inputs[0].shape

        def run(x: np.ndarray) -> list[np.ndarray]:
            return model.run({name: x})
    else:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        meta = sess.get_inputs()[0]
        name, shape = meta.name, tuple(meta.shape)

        def run(x: np.ndarray) -> list[np.ndarray]:
            return sess.run(None, {name: x})

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = run(x)
    if save:
        np.save(save, out[0])
    warm_end = time.perf_counter() + min(0.5, seconds / 4)
    while time.perf_counter() < warm_end:
        run(x)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while (time.perf_counter() < end or len(times) < 10) and len(times) < 1000:
        start = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"median_ms": float(np.median(times)), "calls": len(times)}))


def _run_child(system: str, path: Path, threads: int, seconds: float, save: Path | None) -> float:
    cmd = [sys.executable, __file__, "--_child", system, str(path), str(threads), str(seconds)]
    if save is not None:
        cmd.append(str(save))
    # Both conventions, so neither system's pool starts more threads than asked for.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "EMBER_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{system} child on {path.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["median_ms"]


# ---------------------------------------------------------------- fresh-process mode
def fresh(models: list[str], threads: list[int], rounds: int, seconds: float, workdir: Path):
    """{(model, threads): {"ember": [ms per round], "ort": [...]}} and max rel errors."""
    import ember
    from ember.testing import zoo

    files: dict[str, tuple[Path, Path]] = {}
    for name in models:
        onnx_path = workdir / f"{name}.onnx"
        artifact = workdir / f"{name}.ember"
        if not onnx_path.exists():
            zoo.to_onnx(name, onnx_path)
        if not artifact.exists():
            mod, params = ember.frontend.from_onnx(
                str(onnx_path), shape={"data": zoo.input_shape(name)}
            )
            ember.compile(mod, params, target="host").export(artifact)
        files[name] = (artifact, onnx_path)
        print(f"compiled {name}", file=sys.stderr, flush=True)

    times = {(m, t): {s: [] for s in SYSTEMS} for m in models for t in threads}
    errors: dict[str, float] = {}
    for r in range(rounds):
        order = SYSTEMS if r % 2 == 0 else SYSTEMS[::-1]
        for t in threads:
            for name in models:
                for system in order:
                    path = files[name][0] if system == "ember" else files[name][1]
                    save = workdir / f"{name}.{system}.npy" if r == 0 else None
                    ms = _run_child(system, path, t, seconds, save)
                    times[(name, t)][system].append(ms)
                if r == 0 and name not in errors:
                    got = np.load(workdir / f"{name}.ember.npy")
                    ref = np.load(workdir / f"{name}.ort.npy")
                    errors[name] = max_rel_err(got, ref)
                e, o = times[(name, t)]["ember"][-1], times[(name, t)]["ort"][-1]
                print(f"round {r} {name} {t}T ember {e:.2f} ort {o:.2f}", file=sys.stderr)
    return times, errors


def fresh_table(times, errors, models: list[str], threads: list[int]) -> tuple[str, dict]:
    head = ["model", "max rel err"]
    for t in threads:
        head += [f"ember ms ({t}T)", f"ort ms ({t}T)", f"ratio ({t}T)", f"90% CI ({t}T)"]
    rows, medians = [], {t: [] for t in threads}
    for name in models:
        row = [name, f"{errors[name]:.1e}"]
        for t in threads:
            e = np.array(times[(name, t)]["ember"])
            o = np.array(times[(name, t)]["ort"])
            med, lo, hi = bootstrap_median(e / o)
            medians[t].append(med)
            row += [f"{np.median(e):.2f}", f"{np.median(o):.2f}", f"{med:.2f}"]
            row.append(f"{lo:.2f}-{hi:.2f}")
        rows.append(row)
    geo = ["geomean", ""]
    summary = {}
    for t in threads:
        g = float(np.exp(np.mean(np.log(medians[t]))))
        summary[t] = g
        geo += ["", "", f"{g:.2f}", ""]
    rows.append(geo)
    return table(rows, head), summary


# ---------------------------------------------------------------- in-process mode
def in_process(models: list[str], threads: list[int], rounds: int) -> str:
    import onnxruntime as ort

    import ember
    from ember.testing import zoo

    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    rows = []
    ratios: dict[int, list[float]] = {t: [] for t in threads}
    for name in models:
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path)
        shape = zoo.input_shape(name)
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
        model = ember.compile(mod, params, target="host").load()
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        row = [name]
        for t in threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = t
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            model.set_num_threads(t)
            if len(row) == 1:
                ref = sess.run(None, {"data": x})[0]
                row.append(f"{max_rel_err(model.run({'data': x})[0], ref):.1e}")
            med = interleaved_medians(
                {
                    "ember": lambda m=model, x=x: m.run({"data": x}),
                    "ort": lambda s=sess, x=x: s.run(None, {"data": x}),
                },
                rounds=rounds,
            )
            ratio = med["ember"] / med["ort"]
            ratios[t].append(ratio)
            row += [f"{med['ember']:.1f}", f"{med['ort']:.1f}", f"{ratio:.2f}"]
        rows.append(row)
        print(" ".join(row), file=sys.stderr, flush=True)
    head = ["model", "max rel err"]
    for t in threads:
        head += [f"ember ms ({t}T)", f"ort ms ({t}T)", f"ratio ({t}T)"]
    geo = ["geomean", ""]
    for t in threads:
        geo += ["", "", f"{float(np.exp(np.mean(np.log(ratios[t])))):.2f}"]
    rows.append(geo)
    return table(rows, head)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        system, path, threads, seconds = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        save = sys.argv[6] if len(sys.argv) > 6 else None
        child(system, path, int(threads), float(seconds), save)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process rounds (>= 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per child")
    parser.add_argument("--workdir", help="keep ONNX files and artifacts here (reused)")
    parser.add_argument("--json", help="write the raw per-round times here")
    parser.add_argument(
        "--in-process", action="store_true", help="the older mode: both in one process"
    )
    parser.add_argument("--block-rounds", type=int, default=30, help="calls, --in-process")
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {MODELS}")
    threads = [int(t) for t in args.threads.split(",")]

    if args.in_process:
        text = in_process(models, threads, args.block_rounds)
        print()
        print(header("Model latency, batch 1: ember vs onnxruntime (in one process)"))
        print(text)
        return

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ember-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.strftime("%H:%M", time.gmtime())
    times, errors = fresh(models, threads, args.rounds, args.seconds, workdir)
    end = time.strftime("%H:%M", time.gmtime())
    if args.json:
        raw = {f"{m}@{t}": v for (m, t), v in times.items()}
        Path(args.json).write_text(json.dumps({"times": raw, "errors": errors}, indent=1))
    text, _ = fresh_table(times, errors, models, threads)
    print()
    print(header("Model latency, batch 1: ember vs onnxruntime, each alone in a fresh process"))
    print(f"({start}-{end} UTC, {args.rounds} rounds, ~{args.seconds:g} s of calls per child)\n")
    print(text)


if __name__ == "__main__":
    main()
