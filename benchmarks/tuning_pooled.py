"""How good are a tuning log's picks, judged by measurements the tuner did not pick on?

    python benchmarks/tuning.py --phase tune --out /tmp/t1 --seed 1    # a few runs
    python benchmarks/tuning.py --phase tune --out /tmp/t2 --seed 2
    python benchmarks/tuning_pooled.py --model resnet18 --runs /tmp/t1,/tmp/t2

A tuner picks, per kernel, the config that measured fastest; on a noisy machine that
measurement is low by luck (the winner's curse), so a log's own numbers flatter it.
Every run of ``benchmarks/tuning.py`` measures thousands of configs, each in its own
process, both tuners side by side; the same config is often measured by the other
tuner or another run. This script judges each pick (dispatch's rule,
``best_per_workload``, on the records of the first ``--budgets`` minutes) by the
median of its **other** measurements: those of the other tuning processes (the other
tuner, the other runs), which played no part in picking it. Each measurement is a
ratio to the default schedule as that process timed it; a kernel whose pick is the
default counts 1.0. A kernel sum weights every kernel by calls per inference x its
default seconds (median over the processes).

Columns: "log says" (the pick's ratio in its own log), "independent" (the other
processes' median), and "weight" (the share of the kernel sum whose pick some other
process measured: the rest is left out of that row). The last table is the headroom:
per kernel the best config that at least 3 processes measured (still the best of
many, so an optimistic bound).

No timing happens here: it reads the logs. Runs must share the spaces (the same
commit's templates); a run whose kernels' space sizes differ is skipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from tuning import TUNERS, _default_medians  # noqa: E402


def _load(run: Path, model: str, tuner: str):  # type: ignore[no-untyped-def]
    from ember.autotune import load_records

    meta = json.loads((run / f"{model}-{tuner}.json").read_text())
    return meta, list(load_records(run / f"{model}-{tuner}.jsonl"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--runs", required=True, help="folders benchmarks/tuning.py wrote, comma-separated"
    )
    p.add_argument("--model", default="resnet18")
    p.add_argument("--budgets", default="5,15,30", help="minutes")
    opts = p.parse_args()

    from ember.dispatch.record import best_per_workload

    budgets = [float(b) for b in opts.budgets.split(",")]
    procs: dict[tuple[str, str], tuple[dict, list]] = {}  # type: ignore[type-arg]
    spaces: dict[str, int] | None = None
    for folder in opts.runs.split(","):
        run = Path(folder)
        loaded = {t: _load(run, opts.model, t) for t in TUNERS}
        sizes = {k["key"]: k["space"] for k in loaded["model"][0]["kernels"]}
        if spaces is None:
            spaces = sizes
        elif sizes != spaces:
            print(f"skipping {run}: its kernels' spaces differ from the first run's")
            continue
        for t in TUNERS:
            procs[(run.name, t)] = loaded[t]

    # Every measurement of every config, as a ratio to its own process's default.
    ratios: dict[tuple[str, int], list[tuple[tuple[str, str], float]]] = {}
    for proc, (_, records) in procs.items():
        default = _default_medians(records)
        for r in records:
            key = r.workload["key"]
            if r.error is not None or r.config.get("default") or key not in default:
                continue
            ratio = statistics.median(r.costs) / default[key]
            ratios.setdefault((key, r.config["index"]), []).append((proc, ratio))
    seconds: dict[str, list[float]] = {}
    for meta, _ in procs.values():
        for k in meta["kernels"]:
            seconds.setdefault(k["key"], []).append(k["calls"] * k["default_s"])
    weight = {k: statistics.median(v) for k, v in seconds.items()}
    total = sum(weight.values())

    rows = []
    per_tuner: dict[tuple[str, float], list[float]] = {}
    for (run, tuner), (meta, records) in procs.items():
        for minutes in budgets:
            within = [r for r in records if r.timestamp <= meta["start"] + minutes * 60]
            picks = {key: rec for (_, key), rec in best_per_workload(within).items()}
            default = _default_medians(within)
            said = indep = covered = 0.0
            for key, w in weight.items():
                pick = picks.get(key)
                if pick is None or pick.config.get("default") or key not in default:
                    said, indep, covered = said + w, indep + w, covered + w
                    continue
                others = [
                    x
                    for proc, x in ratios.get((key, pick.config["index"]), [])
                    if proc != (run, tuner)
                ]
                if not others:
                    continue
                said += w * pick.cost / default[key]
                indep += w * statistics.median(others)
                covered += w
            rows.append(
                [
                    run,
                    tuner,
                    f"{minutes:g}",
                    f"{said / covered:.3f}",
                    f"{indep / covered:.3f}",
                    f"{covered / total:.2f}",
                ]
            )
            per_tuner.setdefault((tuner, minutes), []).append(indep / covered)
    print(f"{opts.model}: picks as their logs say and as the other processes measured them")
    print("(kernel sums as a fraction of the defaults')\n")
    print(table(rows, ["run", "tuner", "minutes", "log says", "independent", "weight"]))
    print()
    summary = []
    for minutes in budgets:
        row = [f"{minutes:g}"]
        for t in TUNERS:
            vals = per_tuner.get((t, minutes), [])
            row.append(f"{statistics.mean(vals):.3f}" if vals else "-")
        summary.append(row)
    print(f"mean of the independent estimates over {len(procs) // 2} runs\n")
    print(table(summary, ["minutes", *[f"{t} tuner" for t in TUNERS]]))

    print("\nheadroom: per kernel, the best config measured by at least 3 processes\n")
    head_rows = []
    bound = 0.0
    for key, w in sorted(weight.items(), key=lambda kv: -kv[1]):
        seen = [
            (statistics.median(x for _, x in v), idx, len({proc for proc, _ in v}))
            for (k, idx), v in ratios.items()
            if k == key and len({proc for proc, _ in v}) >= 3
        ]
        best = min(seen, default=(1.0, -1, 0))
        bound += w * min(best[0], 1.0)
        head_rows.append([key, f"{w / total:.3f}", f"{best[0]:.3f}", f"{best[1]}", f"{len(seen)}"])
    print(table(head_rows, ["kernel", "weight", "best ratio", "config", "configs in >= 3"]))
    print(f"\nkernel sum at those configs: {bound / total:.3f} of the defaults'")


if __name__ == "__main__":
    main()
