"""ResNet-50's hottest conv kernels at one thread, as a share of the single-core FMA peak.

    python benchmarks/conv_peak.py [--model resnet50] [--top 3] [--rounds 200] [--direct]

One run compiles the zoo model (random weights, ``target="host"``), then alternates
``rounds`` times between a few short bursts of the FMA peak loop of ``peak.py`` and one
profiled inference at one thread (``Model.profile``: a clock read around every kernel
call). A kernel is one distinct compiled conv (its calls summed per inference); the
hottest are those with the most time per inference. GFLOP/s and % of peak are medians
over the rounds (per kernel call, then summed over the kernel's calls), and the peak is
the median of short bursts in the same rounds: on a shared 2-core machine both move with
the neighbours' load, and short bursts (~2 ms) mostly dodge preemption where one long
timed loop would not. "best" is the fastest round of each call against the fastest
burst: what the kernel does undisturbed.

Only direct convolutions (``nn.conv2d_nchwc`` kernels) are ranked: the 3x3 stride-1 convs
that ``compile`` runs with Winograd (ember.graph.passes.winograd) do fewer multiplies than
their direct-conv flop count, so no share of the peak means anything for them. ``--direct``
compiles every conv as a direct conv (no Winograd), which ranks ResNet-50's 3x3 layers too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402
from peak import ACCUMULATORS  # noqa: E402
from peak import build as build_peak  # noqa: E402

BURST_ITERS = 50_000
"""FMA-loop iterations per peak burst: about 2 ms at 16 lanes."""


def describe_convs(mod: Any, params: dict[str, np.ndarray]) -> dict[str, str]:
    """Kernel symbol -> "3x3 256->256 14x14 s1" for each conv kernel of the model."""
    from ember.codegen.c import c_symbol
    from ember.driver.compiler import kernel_graph
    from ember.graph.ir import Call
    from ember.graph.passes.fuse_ops import kernels
    from ember.graph.structural import workload_key
    from ember.graph.visitor import post_order
    from ember.target import Target

    _, fused = kernel_graph(mod, params, Target.parse("host"))
    names = {}
    for call in kernels(fused):
        func = call.op
        symbol = c_symbol(f"{func.name[:48]}_{workload_key(func)}")
        for node in post_order(func.body):
            if isinstance(node, Call) and getattr(node.op, "name", "") == "nn.conv2d_nchwc":
                _, cb, h, w, ib = node.args[0].type.shape
                ob, _, kh, kw, _, o = node.args[1].type.shape
                out = node.type.shape
                stride = node.attrs.strides[0]
                epilogue = func.name.removeprefix("fused_nn_conv2d_nchwc").strip("_") or "-"
                names[symbol] = (
                    f"{kh}x{kw} {cb * ib}->{ob * o} {h}x{w}->{out[2]}x{out[3]} s{stride} "
                    f"+{epilogue}"
                )
    return names


def no_winograd() -> Any:
    """A context in which ``compile`` keeps every conv direct (when ember has Winograd)."""
    try:
        from ember.graph.passes.winograd import use_rule
    except ImportError:  # an ember without the Winograd pass: every conv is direct anyway
        return nullcontext()
    return use_rule(lambda *shape: None)


def peak_burst(fn: Callable[[int], float], lanes: int) -> float:
    """GFLOP/s of one short run of peak.py's FMA loop."""
    start = time.perf_counter()
    fn(BURST_ITERS)
    return BURST_ITERS * ACCUMULATORS * lanes * 2 / (time.perf_counter() - start) / 1e9


def profile_seconds(model: Any, steps: list[dict]) -> np.ndarray:
    """Seconds of each kernel call (in AOT step order) of one profiled inference."""
    rows = {(r.name, r.kernel): r.ms * 1e-3 for r in model.profile(repeat=1, warmup=0).rows}
    return np.array([rows[(s.get("name") or s["kernel"], s["kernel"])] for s in steps])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tuning-log", default=None)
    parser.add_argument(
        "--direct", action="store_true", help="no Winograd: every conv a direct conv"
    )
    args = parser.parse_args()

    import ember
    from ember.target import Target
    from ember.testing import zoo

    mod, params = zoo.get(args.model)
    with no_winograd() if args.direct else nullcontext():
        model = ember.compile(mod, params, target="host", tuning_log=args.tuning_log).load()
        convs = describe_convs(mod, params)
    model.set_num_threads(args.threads)
    lanes = Target.parse("host").vector_lanes("float32")
    peak_fn = getattr(build_peak(), f"fma_peak_{lanes}")

    model.profile(repeat=3, warmup=2)  # warm caches and the thread pool
    steps = model.metadata["steps"]
    peaks: list[float] = []
    seconds = np.zeros((args.rounds, len(steps)))
    for r in range(args.rounds):
        peaks += [peak_burst(peak_fn, lanes) for _ in range(3)]
        seconds[r] = profile_seconds(model, steps)
    peak = statistics.median(peaks)
    # Median per kernel call over the rounds, then summed over a kernel's calls: a
    # preemption hits one call of one round, not the kernel's total.
    med = np.median(seconds, axis=0)
    best = seconds.min(axis=0)
    total = dict.fromkeys(convs, 0.0)
    fastest = dict.fromkeys(convs, 0.0)
    flops = dict.fromkeys(convs, 0)
    calls = dict.fromkeys(convs, 0)
    for step, t, b in zip(steps, med, best):
        if step["kernel"] in convs:
            total[step["kernel"]] += float(t)
            fastest[step["kernel"]] += float(b)
            flops[step["kernel"]] += int(step["flops"])
            calls[step["kernel"]] += 1
    hottest = sorted((k for k in convs if calls[k]), key=lambda k: -total[k])[: args.top]
    rows = [[f"FMA peak, {lanes} lanes (short bursts)", "", "", f"{peak:.1f}", "100%", ""]]
    for k in hottest:
        gflops = flops[k] / total[k] / 1e9
        top = flops[k] / fastest[k] / 1e9 / max(peaks)
        ms = f"{total[k] * 1e3:.2f}"
        rows.append(
            [convs[k], str(calls[k]), ms, f"{gflops:.1f}", f"{gflops / peak:.0%}", f"{top:.0%}"]
        )
    kind = "direct convs only (no Winograd)" if args.direct else "as compiled"
    print(header(f"{args.model}: hottest conv kernels, {args.threads} thread(s), {kind}"))
    print(
        f"{args.rounds} rounds; model {float(med.sum()) * 1e3:.1f} ms (sum of the calls' "
        f"medians); peak burst max {max(peaks):.1f} GFLOP/s\n"
    )
    head = ["kernel (conv + epilogue)", "calls", "ms / inference", "GFLOP/s", "% of peak", "best"]
    print(table(rows, head))


if __name__ == "__main__":
    main()
