"""A zoo model's time per conv kind (dense 1x1 / kxk, depthwise kxk sS, grouped kxk sS)
and per other kernel, at N threads.

    python benchmarks/conv_kinds.py regnet_y_800mf [--threads 1] [--rounds 5] [--kind grouped]

One process compiles the model (``target="host"``) and profiles it ``rounds`` times
(``Model.profile``, 10 runs each); each kernel call's time is the fastest round's median,
summed per kind. A conv's kind and layout (``[nchwc]`` blocked, ``[NCHW]`` plain) come
from the fused kernel's conv call. ``--kind`` lists the matching calls with GFLOP/s.
For 1 vs 2 threads run it twice, alternating, in fresh processes (the machine is shared).
"""

from __future__ import annotations

import argparse
import collections
import re
import time
from typing import Any


def conv_kinds(mod: Any, params: dict) -> dict[str, str]:
    """Kernel symbol -> "grouped 3x3 s2 [nchwc]" for every kernel holding a conv."""
    from ember.codegen.c import c_symbol
    from ember.driver.compiler import kernel_graph
    from ember.graph.ir import Call
    from ember.graph.passes.fuse_ops import kernels
    from ember.graph.structural import workload_key
    from ember.graph.visitor import post_order
    from ember.target import Target

    _, fused = kernel_graph(mod, params, Target.parse("host"))
    kinds = {}
    for call in kernels(fused):
        func = call.op
        symbol = c_symbol(f"{func.name[:48]}_{workload_key(func)}")
        for node in post_order(func.body):
            name = getattr(node.op, "name", "") if isinstance(node, Call) else ""
            if not name.startswith("nn.conv2d"):
                continue
            w = node.args[1].type.shape
            in_per_group = w[1] * (w[4] if len(w) == 6 else 1)
            window = f"{w[2]}x{w[3]} s{node.attrs.strides[0]}"
            if node.attrs.groups == 1:
                kind = "dense " + ("1x1" if w[2] == w[3] == 1 else "kxk")
            elif in_per_group == 1:
                kind = "depthwise " + window
            else:
                kind = "grouped " + window
            kinds[symbol] = f"{kind} [{'nchwc' if name.endswith('nchwc') else 'NCHW'}]"
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kind", default=None, help="list the calls of kinds containing this")
    args = parser.parse_args()

    import ember
    from ember.testing import zoo

    mod, params = zoo.get(args.model)
    start = time.perf_counter()
    model = ember.compile(mod, params, target="host").load()
    seconds = time.perf_counter() - start
    kinds = conv_kinds(mod, params)
    model.set_num_threads(args.threads)
    best = min((model.profile(repeat=10, warmup=3) for _ in range(args.rounds)),
               key=lambda p: p.total_ms)  # fmt: skip
    totals: dict[str, float] = collections.defaultdict(float)
    for row in best.rows:
        other = re.sub(r"_[0-9a-f]{6,}.*$", "", row.kernel)[:40]
        totals[kinds.get(row.kernel, other)] += row.ms
    print(
        f"{args.model}, {args.threads} thread(s): {best.total_ms:.3f} ms (compile {seconds:.1f} s)"
    )
    for kind, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<45} {ms:8.3f} ms")
    if args.kind:
        for row in best.rows:
            kind = kinds.get(row.kernel, "")
            if args.kind in kind:
                print(
                    f"  {row.name[:40]:<40} {kind:<24} {row.ms:7.3f} ms {row.gflops:6.1f} GFLOP/s"
                )


if __name__ == "__main__":
    main()
