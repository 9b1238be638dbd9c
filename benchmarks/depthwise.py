"""Depthwise and grouped blocked conv kernels alone: GFLOP/s and share of the FMA peak.

    python benchmarks/depthwise.py [--rounds 30] [--grouped] [--only 7x7]

Each row is one ``nn.conv2d_nchwc`` (+ bias + relu, as the nets fuse them) at a shape the
zoo's nets run at 224x224 (MobileNetV2 / EfficientNet-B0 / MobileNetV3 depthwise 3x3 and
5x5, ConvNeXt-Tiny's 7x7 pad 3; ``--grouped``: RegNetY-800MF's grouped 3x3 with group
width 16), built through the op strategy for the host (``target="host"``) and timed at
one thread (``EMBER_NUM_THREADS=1``): the minimum over ``rounds`` rounds of
``Module.time_evaluator``'s median, since the machine is shared. The peak is the fastest
of short bursts of ``peak.py``'s FMA loop at the host's vector width, measured between
the rounds. A
depthwise conv does one FMA per loaded input vector and weight vector, so its ceiling is
the load ports, not the FMA units: the column to compare is "% of peak" between the
window sizes and strides, against the 3x3 stride-1 rows.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("EMBER_NUM_THREADS", "1")  # read once, when ember is imported
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402
from peak import ACCUMULATORS, _fma_function  # noqa: E402

BURST_ITERS = 50_000
"""FMA-loop iterations per peak burst: about 2 ms at 8 lanes."""

DEPTHWISE = [
    # (net, channels, input size, kernel, stride)
    ("MobileNetV2", 144, 56, 3, 1),
    ("MobileNetV2", 384, 14, 3, 1),
    ("MobileNetV2", 96, 112, 3, 2),
    ("MobileNetV2", 192, 28, 3, 2),
    ("EfficientNet-B0", 240, 28, 5, 1),
    ("EfficientNet-B0", 672, 14, 5, 1),
    ("EfficientNet-B0", 144, 56, 5, 2),
    ("EfficientNet-B0", 672, 14, 5, 2),
    ("MobileNetV3-L", 72, 56, 5, 2),
    ("MobileNetV3-L", 960, 7, 5, 1),
    ("ConvNeXt-T", 96, 56, 7, 1),
    ("ConvNeXt-T", 192, 28, 7, 1),
    ("ConvNeXt-T", 384, 14, 7, 1),
    ("ConvNeXt-T", 768, 7, 7, 1),
    ("(7x7 s2)", 96, 56, 7, 2),
    ("(7x7 s2)", 384, 28, 7, 2),
]

GROUPED = [
    # (net, channels, input size, kernel, stride); group width 16
    ("RegNetY-800MF", 64, 112, 3, 2),
    ("RegNetY-800MF", 144, 56, 3, 2),
    ("RegNetY-800MF", 144, 28, 3, 1),
    ("RegNetY-800MF", 320, 28, 3, 2),
    ("RegNetY-800MF", 320, 14, 3, 1),
    ("RegNetY-800MF", 784, 14, 3, 2),
    ("RegNetY-800MF", 784, 7, 3, 1),
]
GROUP_WIDTH = 16


def fma_peak(lanes: int) -> Any:
    """peak.py's FMA loop at ``lanes`` only (its ``build`` also compiles the 16-lane loop,
    whose asm constraint GCC rejects on a host without AVX-512)."""
    tmp = Path(tempfile.mkdtemp(prefix="ember-peak-"))
    (tmp / "peak.c").write_text("#include <stdint.h>\n" + _fma_function(lanes))
    cmd = ["cc", "-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC"]
    subprocess.run([*cmd, str(tmp / "peak.c"), "-o", str(tmp / "peak.so")], check=True)
    fn = getattr(ctypes.CDLL(str(tmp / "peak.so")), f"fma_peak_{lanes}")
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_int64]
    return fn


def conv_kernel(channels: int, size: int, k: int, stride: int, group_width: int) -> Any:
    """(built module, inputs, output, flops) of conv + bias + relu in NCHW[lanes]c."""
    import ember
    from ember.graph.ir import Function, TensorType, Var
    from ember.ops import call
    from ember.target import Target
    from ember.topi.strategy import schedule_primitive

    target = Target.parse("host")
    lanes = target.vector_lanes("float32")
    block = lanes if channels % lanes == 0 and group_width % lanes == 0 else 8
    groups = channels // group_width
    cg = group_width if group_width > 1 else 1
    x = Var("x", TensorType((1, channels // block, size, size, block)))
    if group_width == 1:
        wshape = (channels // block, 1, k, k, 1, block)
    else:
        wshape = (channels // block, cg // block, k, k, block, block)
    w = Var("w", TensorType(wshape))
    b = Var("b", TensorType((channels,)))
    conv = call("nn.conv2d_nchwc", x, w, b, strides=stride, padding=k // 2, groups=groups)
    y = call("nn.relu", conv)
    func = Function((x, w, b), y, {"primitive": True, "name": "k"})
    s, args = schedule_primitive(func, target)
    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal(v.type.shape).astype(np.float32) for v in (x, w, b)]
    out = np.zeros(y.type.shape, np.float32)
    flops = 2 * out.size * cg * k * k
    return mod, vals, out, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--grouped", action="store_true", help="RegNetY's grouped convs")
    parser.add_argument("--only", default="", help="rows whose kernel contains this, e.g. 7x7")
    args = parser.parse_args()

    from ember.target import Target

    lanes = Target.parse("host").vector_lanes("float32")
    peak_fn = fma_peak(lanes)
    shapes = GROUPED if args.grouped else DEPTHWISE
    width = GROUP_WIDTH if args.grouped else 1
    kernels = []
    for net, channels, size, k, stride in shapes:
        name = f"{k}x{k} s{stride}"
        if args.only in name:
            mod, vals, out, flops = conv_kernel(channels, size, k, stride, width)
            # Arguments checked once: the time is the kernel's alone (no ctypes packing).
            timer = mod.time_evaluator("k", number=5, repeat=3)
            kernels.append((net, channels, size, name, timer, vals, out, flops))
    best = [float("inf")] * len(kernels)
    peaks = []
    for _ in range(args.rounds):
        for _ in range(3):
            start = time.perf_counter()
            peak_fn(BURST_ITERS)
            peaks.append(
                BURST_ITERS * ACCUMULATORS * lanes * 2 / (time.perf_counter() - start) / 1e9
            )
        for i, (*_, timer, vals, out, _flops) in enumerate(kernels):
            best[i] = min(best[i], timer(*vals, out))
    peak = max(peaks)
    rows = [[f"FMA peak ({lanes} lanes, best burst)", "", "", "", f"{peak:.1f}", "100%"]]
    for (net, channels, size, name, *_, flops), t in zip(kernels, best):
        gflops = flops / t / 1e9
        out_size = f"{size}->{-(-size // int(name.split('s')[-1]))}"
        rows.append(
            [
                net,
                name,
                str(channels),
                out_size,
                f"{t * 1e3:.3f}",
                f"{gflops:.1f}",
                f"{gflops / peak:.0%}",
            ]
        )
    rows[0] = [rows[0][0], "", "", "", "", f"{peak:.1f}", "100%"]
    kind = f"grouped (width {GROUP_WIDTH})" if args.grouped else "depthwise"
    print(header(f"{kind} conv + bias + relu kernels, NCHW{lanes}c, 1 thread"))
    print(f"min over {args.rounds} rounds of the median of 3 x 5 calls\n")
    head = ["net", "kernel", "channels", "size", "ms", "GFLOP/s", "% of peak"]
    print(table(rows, head))


if __name__ == "__main__":
    main()
