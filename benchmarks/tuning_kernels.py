"""Model-based vs random search at equal time budgets: best GFLOP/s found over time.

    python benchmarks/tuning_kernels.py                       # 512^3 matmul, 120 s per tuner
    python benchmarks/tuning_kernels.py --budget 300 --conv   # also three ResNet-18 conv2d layers
    python benchmarks/tuning_kernels.py --workload matmul:256,256,256 --seeds 2

For each workload and tuner, prints the best GFLOP/s after each checkpoint of the
time budget (wall time: building, running and the model's own search all count),
the trials measured and the errors seen, then the default schedule for reference.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from ember.autotune import (
    LocalBuilder,
    LocalMeasure,
    LocalRunner,
    ModelBasedTuner,
    RandomTuner,
    create_task,
)

RESNET18_CONVS = [
    # (batch, in_c, h, w, out_c, kh, kw, strides, padding): three distinct layer shapes
    (1, 64, 56, 56, 64, 3, 3, (1, 1), (1, 1, 1, 1)),
    (1, 128, 28, 28, 128, 3, 3, (1, 1), (1, 1, 1, 1)),
    (1, 256, 14, 14, 256, 3, 3, (1, 1), (1, 1, 1, 1)),
]


def _curve(history: list[tuple[int, float, float]], flop: float, points: list[float]) -> list[str]:
    out = []
    for t in points:
        best = min((c for _, s, c in history if s <= t), default=math.inf)
        out.append(f"{flop / best / 1e9:7.1f}" if math.isfinite(best) else "      -")
    return out


def tune_one(name: str, args: tuple, kind: str, budget: float, seed: int, n_parallel: int):
    task = create_task(name, args, "host")
    builder = LocalBuilder(n_parallel)
    with LocalMeasure(task, builder=builder, runner=LocalRunner(repeat=3, timeout=10)) as m:
        tuner = (
            ModelBasedTuner(task, seed=seed) if kind == "model" else RandomTuner(task, seed=seed)
        )
        result = tuner.tune(10**9, m, batch_size=8, time_budget=budget)
        default = m.runner.run(builder.build(task, [-1]))[0]
    return task, tuner, result, default


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--budget", type=float, default=120.0, help="seconds per tuner per workload")
    p.add_argument("--seeds", type=int, default=1, help="repeat each search with this many seeds")
    p.add_argument("--conv", action="store_true", help="also tune ResNet-18 conv2d layers")
    p.add_argument("--workload", action="append", default=[], help="template:a,b,c (ints)")
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="build workers")
    opts = p.parse_args()

    workloads: list[tuple[str, tuple]] = []
    for w in opts.workload:
        name, _, rest = w.partition(":")
        workloads.append((name, tuple(int(x) for x in rest.split(","))))
    if not workloads:
        workloads.append(("matmul", (512, 512, 512)))
    if opts.conv:
        workloads += [("conv2d_nchw", c) for c in RESNET18_CONVS]

    points = [opts.budget * f for f in (0.125, 0.25, 0.5, 0.75, 1.0)]
    print(f"cpu cores: {os.cpu_count()}, budget {opts.budget:.0f} s per search")
    for name, args in workloads:
        print(f"\n{name}{args}")
        header = "  ".join(f"{t:6.0f}s" for t in points)
        print(f"  {'tuner':<7} {'seed':>4}  {header}   trials  errors  (best GFLOP/s at time)")
        for seed in range(opts.seeds):
            for kind in ("random", "model"):
                start = time.perf_counter()
                task, tuner, result, default = tune_one(
                    name, args, kind, opts.budget, seed, opts.parallel
                )
                curve = "  ".join(_curve(tuner.history, task.flop, points))
                errors = sum(tuner.errors.values())
                print(f"  {kind:<7} {seed:>4}  {curve}   {tuner.trials:6d}  {errors:6d}", end="")
                print(f"   ({time.perf_counter() - start:.0f} s wall)")
        gf = task.flop / default.cost / 1e9 if math.isfinite(default.cost) else 0.0
        print(f"  default schedule: {gf:.1f} GFLOP/s; space size {len(task.config_space)}")


if __name__ == "__main__":
    main()
