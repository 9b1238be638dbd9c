"""Do a tuning log's picks hold up? Re-time each kernel's pick against its default
schedule in fresh processes, and compare with what the log says.

    python benchmarks/tuning.py --phase tune --out /tmp/t          # makes the logs
    python benchmarks/tuning_recheck.py --out /tmp/t --model resnet18 --tuner model

Per tuned kernel (dispatch's pick from the records of the first ``--minutes``): the
pick/default ratio the log says (pooled medians, as dispatch ranks them), then the same
ratio timed in ``--procs`` fresh processes, each on its own random inputs, one thread,
15 alternating pairs of 8-call samples, on 64-byte aligned arguments (as the runtime and
the tuner's measurement allocate them) and, with ``--numpy``, on numpy's own arrays.
The spread over processes is what one measuring process cannot average away.
The last line sums the kernels (weights: calls x default seconds from the tuning run;
a kernel whose pick is the default counts 1) by the log's ratios and the fresh ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tuning import _default_medians, _import, _records_within  # noqa: E402

CHILD = r"""
import ctypes, json, statistics, sys, time
import numpy as np
from ember.autotune._child import aligned
default, pick, symbol, specs, mode = sys.argv[1:6]
def load(path):
    fn = getattr(ctypes.CDLL(path), symbol)
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    return fn
fd, fc = load(default), load(pick)
rng = np.random.default_rng()
arrays = []
for shape, dtype in json.loads(specs):
    a = aligned(shape, dtype) if mode == "aligned" else np.empty(shape, dtype)
    a[...] = rng.uniform(-1, 1, size=shape)
    arrays.append(a)
argv = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
def sample(fn):
    start = time.perf_counter()
    for _ in range(8):
        fn(argv)
    return time.perf_counter() - start
fd(argv); fc(argv)
ratios = []
for k in range(15):
    if k % 2:
        d = sample(fd); c = sample(fc)
    else:
        c = sample(fc); d = sample(fd)
    ratios.append(c / d)
print(statistics.median(ratios))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="the folder benchmarks/tuning.py wrote")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--tuner", default="model")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--procs", type=int, default=8, help="fresh processes per kernel")
    p.add_argument("--numpy", action="store_true", help="also time on numpy's own arrays")
    opts = p.parse_args()

    from ember.autotune.extract import extract_tasks
    from ember.autotune.measure import KERNEL_NAME, build_config
    from ember.dispatch.record import best_per_workload

    out = Path(opts.out)
    _, mod, params = _import(opts.model, out)
    meta = json.loads((out / f"{opts.model}-{opts.tuner}.json").read_text())
    records = _records_within(
        out / f"{opts.model}-{opts.tuner}.jsonl", meta["start"], opts.minutes * 60
    )
    best = best_per_workload(records)
    defaults = _default_medians(records)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    modes = ["aligned", "numpy"] if opts.numpy else ["aligned"]
    print(f"{opts.model}, {opts.tuner} tuner, records of the first {opts.minutes:g} min")
    print(
        f"{'kernel':34} {'pick':>6} {'log':>6}  "
        + "  ".join(f"{m} (min-median-max)" for m in modes)
    )
    weight = {k["key"]: k["calls"] * k["default_s"] for k in meta["kernels"]}
    sums = {m: 0.0 for m in ["log", *modes]}
    for task, _calls in extract_tasks(mod, params):
        key = task.workload["key"]
        pick = best.get((task.target_key, key))
        if pick is None or pick.config.get("default"):
            for m in sums:
                sums[m] += weight.get(key, 0.0)  # the default schedule: ratio 1
            continue
        logged = statistics.median(pick.costs) / defaults[key]
        d, c = build_config(task, -1), build_config(task, pick.config["index"])
        specs = json.dumps([[list(s), t] for s, t in d.arg_specs])
        sums["log"] += weight.get(key, 0.0) * logged
        cells = []
        for mode in modes:
            ratios = []
            for _ in range(opts.procs):
                cmd = [
                    sys.executable,
                    "-c",
                    CHILD,
                    d.lib_path,
                    c.lib_path,
                    KERNEL_NAME,
                    specs,
                    mode,
                ]
                ratios.append(
                    float(
                        subprocess.run(
                            cmd, capture_output=True, text=True, env=env, check=True
                        ).stdout
                    )
                )
            cells.append(f"{min(ratios):.3f}-{statistics.median(ratios):.3f}-{max(ratios):.3f}")
            sums[mode] += weight.get(key, 0.0) * statistics.median(ratios)
        name = task.describe[0] if task.describe else task.name
        print(
            f"{name[:34]:34} {pick.config['index']:6d} {logged:6.3f}  "
            + "  ".join(f"{cell:>24}" for cell in cells),
            flush=True,
        )

    total = sum(weight.values())
    print(
        "kernel sum (calls x default seconds, picks at their median ratio) as a fraction "
        "of the defaults': " + ", ".join(f"{m} {v / total:.3f}" for m, v in sums.items())
    )


if __name__ == "__main__":
    main()
