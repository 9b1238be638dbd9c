"""Graph-level tuning (per-conv channel blocks) vs the default block rule.

    python benchmarks/graph_tuning.py                       # resnet18, mobilenet_v2, 1 thread
    python benchmarks/graph_tuning.py --models resnet18 --threads 2 --blocks 8,16
    python benchmarks/graph_tuning.py --small --rounds 10    # smoke run: zoo.SMALL sizes

Per model (ember.testing.zoo, batch 1, full size, random weights): the graph tuner
(ember.autotune.graph_tuner.tune_graph) times every conv kernel under each candidate
(input block, output block) and every layout transform the plans may need, solves the
DP, then compiles the plan and the default rule and times both end to end. Printed:
the tuner's predicted latency (sum of the measured kernel times over the fused graph) and
its end-to-end measurement for both, then an independent re-timing of both artifacts
(interleaved blocks, medians) with an output check, and the time spent tuning. Kernel
schedules are the default ones (no kernel tuning log), so the difference is the layout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved_medians, table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blocks", default="4,8,16", help="candidate channel blocks")
    ap.add_argument("--rounds", type=int, default=100, help="runs per model when re-timing")
    ap.add_argument("--small", action="store_true", help="zoo.SMALL sizes (a smoke run)")
    args = ap.parse_args()

    import ember
    from ember.autotune.graph_tuner import tune_graph
    from ember.testing import zoo

    blocks = tuple(int(b) for b in args.blocks.split(","))
    rows = []
    for name in args.models.split(","):
        opts = zoo.SMALL[name] if args.small else {}
        mod, params = zoo.get(name, **opts)
        say = lambda msg, name=name: print(f"[{name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
        start = time.perf_counter()
        plan = tune_graph(
            mod, params, "host", threads=args.threads, say=say, candidate_blocks=blocks
        )
        tuning_s = time.perf_counter() - start
        default = ember.compile(mod, params, "host").load()
        tuned = ember.compile(mod, params, "host", graph_plan=plan.tuned_blocks).load()
        x = zoo.random_input(name, **opts)
        for m in (default, tuned):
            m.set_num_threads(args.threads)
        a, b = default.run({"data": x})[0], tuned.run({"data": x})[0]
        err = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30))
        inputs = {"data": x}
        times = interleaved_medians(
            {
                "default": lambda m=default, i=inputs: m.run(i),  # type: ignore[misc]
                "tuned": lambda m=tuned, i=inputs: m.run(i),  # type: ignore[misc]
            },
            rounds=args.rounds,
        )
        changed = sum(
            1
            for c, s in plan.tuned_blocks.items()
            if tuple(plan.details["default_blocks"].get(c, ())) != tuple(s)
        )
        p, m = plan.predicted_ms, plan.measured_ms
        rows.append(
            [
                name,
                f"{changed}/{len(plan.tuned_blocks)}",
                f"{p['default']:.2f}",
                f"{p['tuned']:.2f}",
                f"{m['default']:.2f}",
                f"{m['tuned']:.2f}",
                f"{times['default']:.2f}",
                f"{times['tuned']:.2f}",
                f"{times['default'] / times['tuned']:.3f}x",
                plan.kept,
                f"{tuning_s:.0f}",
                str(plan.details["kernels_timed"]),
                f"{err:.1e}",
            ]
        )
        print(f"[{name}] tuned blocks: {plan.tuned_blocks}", file=sys.stderr, flush=True)
    size = " (SMALL sizes: a smoke run)" if args.small else ""
    print(header(f"Graph-level tuning vs the default block rule ({args.threads} thread(s)){size}"))
    print(
        table(
            rows,
            [
                "model",
                "convs changed",
                "pred. default ms",
                "pred. tuned ms",
                "meas. default ms",
                "meas. tuned ms",
                "re-timed default",
                "re-timed tuned",
                "speedup",
                "kept",
                "tuning s",
                "kernels timed",
                "max rel. diff",
            ],
        )
    )
    print(
        "\npred.: sum of the tuner's per-kernel times over the fused graph; meas.: the tuner's "
        "end-to-end check (median of 40 runs); re-timed: this script, interleaved blocks, "
        f"median of {args.rounds} runs each. candidate blocks {blocks}."
    )


if __name__ == "__main__":
    main()
