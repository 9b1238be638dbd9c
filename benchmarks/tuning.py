"""Whole-model tuning at 5, 15 and 30 minutes: model-based vs random, both vs onnxruntime.

    python benchmarks/tuning.py                                # resnet18, mobilenet_v2
    python benchmarks/tuning.py --models resnet18 --budgets 1,3 --out /tmp/t
    python benchmarks/tuning.py --phase eval --out /tmp/t      # re-time existing logs
    python benchmarks/tuning.py --seed 1 --out /tmp/t1         # a repeat: other seed, cores

Phase ``tune``: per model, the model-based and the random tuner run AT THE SAME TIME,
each pinned to its own core (its builds, measurements and search all on that core), for
the longest budget; so both get the same wall time and the same machine conditions.
Every record carries its timestamp, and the task scheduler (ember.autotune.scheduler)
gives every kernel its turn early, so the records up to minute 5 are what a 5-minute
run yields. Kernels are tuned at one thread (one core each).

Phase ``eval``: per model, compiles the default schedules and, per tuner and budget, the
model with the records measured within that budget; times all of them against
onnxruntime at 1 and 2 threads in one interleaved run (300 calls each, in turns of 5
calls; medians), and checks outputs. "vs default" is the median over turns of the
default's time over the variant's in the same round of turns (the machine's drift moves
both alike), with a bootstrap 90% interval: intervals that do not overlap are a real
difference, not this VM's noise.
Also prints each tuner's curve: the sum over tuned kernels of calls x best kernel time
(the part of the model the tuner can change) against wall time, as a fraction of the
default schedules' sum measured by the same tuning process.

Kernel-level curves (matmul, single conv layers) are in benchmarks/tuning_kernels.py.
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
from _common import (  # noqa: E402
    block_medians,
    header,
    interleaved_blocks,
    max_rel_err,
    paired_speedup,
    table,
)

TUNERS = ("model", "random")


def _import(name: str, tmp: Path):  # type: ignore[no-untyped-def]
    import ember
    from ember.testing import zoo

    path = tmp / f"{name}.onnx"
    if not path.exists():
        zoo.to_onnx(name, path)
    mod, params = ember.frontend.from_onnx(str(path), shape={"data": zoo.input_shape(name)})
    return path, mod, params


def tune_child(
    model: str, tuner: str, cpu: int | None, budget_s: float, out: Path, seed: int = 0
) -> None:
    """One tuner on one model (run in its own process, pinned to ``cpu``)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})  # children (builds, measurements) inherit it
    from ember.autotune.extract import extract_tasks
    from ember.autotune.scheduler import TaskScheduler

    _, mod, params = _import(model, out)
    log = out / f"{model}-{tuner}.jsonl"
    log.unlink(missing_ok=True)
    tasks = extract_tasks(mod, params)
    lines: list[str] = []
    sched = TaskScheduler(tasks, tuner, log, n_parallel=1, seed=seed, say=lines.append)
    start = time.time()
    sched.run(time_budget=budget_s)
    meta = {
        "model": model,
        "tuner": tuner,
        "cpu": cpu,
        "seed": seed,
        "start": start,
        "budget_s": budget_s,
        "curve": sched.curve,
        "kernels": [
            {
                "name": s.task.describe[0],
                "key": s.task.workload["key"],
                "calls": s.calls,
                "default_s": s.default_cost,
                "best_s": s.cost,
                "trials": s.tuner.trials,
                "space": len(s.task.config_space),
                "spent_s": s.spent,
            }
            for s in sched.slots
        ],
    }
    (out / f"{model}-{tuner}.json").write_text(json.dumps(meta))
    (out / f"{model}-{tuner}.txt").write_text("\n".join(lines) + "\n")


def tune_phase(models: list[str], budget_s: float, out: Path, seed: int = 0) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    for model in models:
        print(f"tuning {model}: {', '.join(TUNERS)} side by side, {budget_s / 60:.0f} min")
        procs = []
        for k, tuner in enumerate(TUNERS):
            # The seed also rotates the cores: seeds 0 and 1 put each tuner on each core.
            cpu = cpus[(k + seed) % len(cpus)] if len(cpus) >= len(TUNERS) else None
            cmd = [sys.executable, __file__, "--_child", model, tuner, str(cpu), str(budget_s)]
            procs.append(subprocess.Popen([*cmd, "--out", str(out), "--seed", str(seed)]))
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"a tuning process for {model} failed (exit {p.returncode})")


def _order(label: str) -> tuple[int, float, str]:
    """default first, then each tuner's budgets in order."""
    if label == "default":
        return (-1, 0.0, "")
    tuner, budget, *rest = label.split()
    return (TUNERS.index(tuner), float(budget.rstrip("m")), "".join(rest))


def _unconfirmed(records: list) -> list:  # type: ignore[type-arg]
    """The records without their re-measurement marks: dispatch then ranks every config
    by its measurements, single ones included (as it did before it preferred the
    re-measured configs)."""
    import dataclasses

    return [
        dataclasses.replace(r, config={k: v for k, v in r.config.items() if k != "repeat"})
        if r.config.get("repeat")
        else r
        for r in records
    ]


def _records_within(log: Path, start: float, seconds: float) -> list:  # type: ignore[type-arg]
    from ember.autotune import load_records

    return [r for r in load_records(log) if r.timestamp <= start + seconds]


def _default_medians(records: list) -> dict[str, float]:  # type: ignore[type-arg]
    """Per workload key, the median of the default schedule's error-free measurements."""
    import statistics

    costs: dict[str, list[float]] = {}
    for r in records:
        if r.error is None and r.config.get("default"):
            costs.setdefault(r.workload["key"], []).extend(r.costs)
    return {k: statistics.median(v) for k, v in costs.items()}


def _curve_rows(models: list[str], out: Path, minutes: list[float]) -> list[list[str]]:
    rows = []
    for model in models:
        for tuner in TUNERS:
            meta = json.loads((out / f"{model}-{tuner}.json").read_text())
            curve = meta["curve"]
            row = [model, tuner, f"{curve[0][1] * 1e3:.2f}"]
            for m in minutes:
                # The estimate at that moment (it can rise: re-measurements of the
                # defaults and bests replace single lucky samples).
                # As a fraction of the tuner's own defaults: each tuning process scales
                # its ratios by the default's seconds as it measured them.
                now = [e for t, e in curve if t <= m * 60]
                row.append(f"{now[-1] / curve[0][1]:.3f}" if now else "-")
            trials = sum(k["trials"] for k in meta["kernels"])
            space = sum(k["space"] for k in meta["kernels"])
            row.append(f"{trials}/{space}")
            rows.append(row)
    return rows


def eval_phase(
    models: list[str],
    budgets: list[float],
    out: Path,
    threads: list[int],
    rounds: int,
    unconfirmed: bool = False,
) -> None:
    import onnxruntime as ort

    import ember

    result_rows = []
    for model in models:
        path, mod, params = _import(model, out)
        variants = {"default": ember.compile(mod, params, target="host").load()}
        same_as: dict[str, str] = {}  # a budget whose records equal a shorter one's
        n_records: dict[str, int] = {"default": 0}
        for tuner in TUNERS:
            meta = json.loads((out / f"{model}-{tuner}.json").read_text())
            previous: tuple[int, str] | None = None
            for b in budgets:
                recs = _records_within(out / f"{model}-{tuner}.jsonl", meta["start"], b * 60)
                label = f"{tuner} {b:g}m"
                n_records[label] = len(recs)
                if previous is not None and previous[0] == len(recs):
                    same_as[label] = previous[1]  # the search had ended: same model
                    continue
                lib = ember.compile(mod, params, target="host", tuning_log=recs)
                variants[label] = lib.load()
                previous = (len(recs), label)
                if unconfirmed:
                    lib = ember.compile(mod, params, target="host", tuning_log=_unconfirmed(recs))
                    variants[f"{label} all"] = lib.load()
                    n_records[f"{label} all"] = len(recs)
        x = np.random.default_rng().standard_normal(variants["default"].inputs[0].shape)
        x = x.astype(np.float32)
        for t in threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = t
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            ref = sess.run(None, {"data": x})[0]
            fns = {"ort": lambda s=sess, x=x: s.run(None, {"data": x})}
            for name, m in variants.items():
                m.set_num_threads(t)
                got = m.run({"data": x})[0]
                err = max_rel_err(got, ref)
                if err > 1e-4:
                    raise SystemExit(f"{model} {name}: max rel error {err:.1e} vs onnxruntime")
                fns[name] = lambda m=m, x=x: m.run({"data": x})
            blocks = interleaved_blocks(fns, rounds=rounds)
            for label, twin in same_as.items():
                blocks[label] = blocks[twin]
            med = block_medians(blocks)
            for name in sorted([*variants, *same_as], key=_order):
                fast, lo, hi = paired_speedup(blocks["default"], blocks[name])
                result_rows.append(
                    [
                        model,
                        f"{t}",
                        name,
                        f"{n_records[name]}" + (" (search ended)" if name in same_as else ""),
                        f"{med[name]:.2f}",
                        f"{med['ort']:.2f}",
                        f"{med[name] / med['ort']:.2f}",
                        f"{fast:.2f}",
                        f"{lo:.2f}-{hi:.2f}",
                    ]
                )
                print(" ".join(result_rows[-1]), flush=True)
    print()
    print(header("Whole-model tuning, batch 1: latency after each budget"))
    head = ["model", "threads", "schedules", "records", "ember ms", "ort ms", "ember/ort"]
    head += ["vs default", "90% interval"]
    print(table(result_rows, head))
    minutes = sorted({1.0, 2.0, *budgets})
    print()
    print("Tuner curves: sum over tunable kernels of calls x best kernel time (1 thread)")
    print("against wall time, as a fraction of the default schedules' sum (ms);")
    print("trials measured / configs in the model's spaces.\n")
    head = ["model", "tuner", "defaults ms", *[f"{m:g} min" for m in minutes], "trials/space"]
    print(table(_curve_rows(models, out, minutes), head))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        model, tuner, cpu, budget = sys.argv[2:6]
        out = Path(sys.argv[sys.argv.index("--out") + 1])
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
        tune_child(model, tuner, None if cpu == "None" else int(cpu), float(budget), out, seed)
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="resnet18,mobilenet_v2")
    p.add_argument("--budgets", default="5,15,30", help="minutes")
    p.add_argument("--phase", choices=("all", "tune", "eval"), default="all")
    p.add_argument("--out", default=None, help="folder for logs (default: a new temp folder)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=300, help="timed calls per variant")
    p.add_argument("--seed", type=int, default=0, help="the tuners' random seed")
    p.add_argument(
        "--unconfirmed",
        action="store_true",
        help="also time each log with every config competing (label '... all'), not only\n"
        "the re-measured ones (ember.dispatch.record.best_per_workload)",
    )
    opts = p.parse_args()
    models = opts.models.split(",")
    budgets = [float(b) for b in opts.budgets.split(",")]
    out = Path(opts.out or tempfile.mkdtemp(prefix="ember-tuning-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"logs in {out}")
    if opts.phase in ("all", "tune"):
        tune_phase(models, max(budgets) * 60, out, opts.seed)
    if opts.phase in ("all", "eval"):
        threads = [int(t) for t in opts.threads.split(",")]
        eval_phase(models, budgets, out, threads, opts.rounds, opts.unconfirmed)


if __name__ == "__main__":
    main()
