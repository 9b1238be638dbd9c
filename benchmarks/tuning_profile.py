"""Do tuned kernels win inside the model? Per-kernel times of the default build against
the builds with each tuner's log, all in one process at one thread.

    python benchmarks/tuning.py --phase tune --out /tmp/t          # makes the logs
    python benchmarks/tuning_profile.py --out /tmp/t --model resnet18 --minutes 30

Compiles the model with the default schedules and with the records of each tuner's
first ``--minutes``, then profiles all builds in turns (``Model.profile``: every
kernel's median over ``--repeat`` inferences, ``--rounds`` rounds; the per-kernel
medians over rounds are printed). A kernel's time inside the model, with its real
neighbours in the caches, is what a tuning log is for; the tuner timed it alone.
Rows: the kernels the default build spends most time in, with each tuned build's time
as a ratio to the default's (kernels whose pick is the default schedule compile to the
same code: their ratio shows the noise).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from tuning import TUNERS, _import, _records_within  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="the folder benchmarks/tuning.py wrote")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--repeat", type=int, default=10, help="inferences per profile")
    p.add_argument("--top", type=int, default=20, help="kernels to list")
    opts = p.parse_args()

    import ember

    out = Path(opts.out)
    _, mod, params = _import(opts.model, out)
    builds = {"default": ember.compile(mod, params, target="host").load()}
    for tuner in TUNERS:
        meta = json.loads((out / f"{opts.model}-{tuner}.json").read_text())
        recs = _records_within(
            out / f"{opts.model}-{tuner}.jsonl", meta["start"], opts.minutes * 60
        )
        builds[tuner] = ember.compile(mod, params, target="host", tuning_log=recs).load()
    for m in builds.values():
        m.set_num_threads(1)
    steps: dict[str, dict[str, list[float]]] = {k: {} for k in builds}
    totals: dict[str, list[float]] = {k: [] for k in builds}
    for _ in range(opts.rounds):
        for name, m in builds.items():
            prof = m.profile(repeat=opts.repeat, warmup=2)
            totals[name].append(prof.total_ms)
            for row in prof.rows:
                steps[name].setdefault(row.name, []).append(row.ms)
    med = {k: {s: statistics.median(v) for s, v in d.items()} for k, d in steps.items()}
    order = sorted(med["default"], key=lambda s: -med["default"][s])
    rows = []
    for step in order[: opts.top]:
        d = med["default"][step]
        row = [step[:44], f"{d:.3f}"]
        for tuner in TUNERS:
            t = med[tuner].get(step)
            row.append(f"{t / d:.3f}" if t is not None else "-")
        rows.append(row)
    print(
        f"{opts.model}, records of the first {opts.minutes:g} min, 1 thread, "
        f"{opts.rounds} rounds x {opts.repeat} inferences"
    )
    print(
        "total ms: "
        + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in totals.items())
        + "\n"
    )
    print(table(rows, ["kernel (default build's order)", "default ms", *TUNERS]))


if __name__ == "__main__":
    main()
