"""This machine's single-thread FP32 FMA peak and memory bandwidth (what kernels aim at).

    python benchmarks/peak.py [--seconds 0.3] [--repeat 5]

The peak kernel is C compiled here (-O3 -march=native): ACCUMULATORS independent chains
of 8-lane (AVX2) and 16-lane (AVX-512) vector multiply-adds, enough to hide the FMA
latency, so the loop is bound by FMA throughput (2 per cycle on Zen 3 and recent
Xeons). Bandwidth is a STREAM-like triad (a = b + s * c) over arrays much larger than
the last-level cache. Medians of ``repeat`` runs: the machine is shared, so report
the numbers with the date.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

ACCUMULATORS = 12
"""Independent FMA chains: latency 4-5 cycles x 2 FMA units needs at least 10."""


def _fma_function(lanes: int) -> str:
    return f"""
typedef float v{lanes} __attribute__((vector_size({lanes * 4})));
double fma_peak_{lanes}(int64_t iters) {{
  v{lanes} acc[{ACCUMULATORS}];
  /* Distinct start values: identical chains would be merged by the compiler into one
     FMA per iteration, which runs at the FMA latency and is then counted 12 times
     (a "peak" 1.5x the real one). */
  for (int k = 0; k < {ACCUMULATORS}; k++) acc[k] = (v{lanes}){{0}} + (float)(k + 1);
  v{lanes} x = (v{lanes}){{0}} + 1.0000001f, y = (v{lanes}){{0}} + 1e-7f;
  for (int64_t i = 0; i < iters; i++) {{
    __asm__ volatile("" : "+v"(x));  /* keep the loop from being folded */
    #pragma GCC unroll {ACCUMULATORS}
    for (int k = 0; k < {ACCUMULATORS}; k++) acc[k] = acc[k] * x + y;
  }}
  v{lanes} s = {{0}};
  for (int k = 0; k < {ACCUMULATORS}; k++) s += acc[k];
  return s[0];
}}
"""


SOURCE = (
    "#include <stdint.h>\n"
    + _fma_function(8)
    + _fma_function(16)
    + """
void triad(float* restrict a, const float* restrict b, const float* restrict c, float s,
           int64_t n) {
  for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""
)


def build() -> ctypes.CDLL:
    tmp = Path(tempfile.mkdtemp(prefix="ember-peak-"))
    (tmp / "peak.c").write_text(SOURCE)
    cmd = ["cc", "-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC"]
    subprocess.run([*cmd, str(tmp / "peak.c"), "-o", str(tmp / "peak.so")], check=True)
    lib = ctypes.CDLL(str(tmp / "peak.so"))
    for lanes in (8, 16):
        fn = getattr(lib, f"fma_peak_{lanes}")
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.c_int64]
    lib.triad.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_int64]
    return lib


def fma_gflops(lib: ctypes.CDLL, seconds: float, lanes: int = 8) -> float:
    """Single-thread FMA throughput in GFLOP/s (2 FLOPs per lane per FMA); ``lanes`` 8 is
    AVX2 (ymm), 16 is AVX-512 (zmm; on a CPU without it GCC splits it into two ymm)."""
    fn = getattr(lib, f"fma_peak_{lanes}")
    iters = 1_000_000
    while True:
        start = time.perf_counter()
        fn(iters)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return iters * ACCUMULATORS * lanes * 2 / elapsed / 1e9
        iters *= 2


def triad_gbs(lib: ctypes.CDLL, n: int = 1 << 25) -> float:
    """Triad bandwidth in GB/s (two reads and one write of n float32)."""
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    lib.triad(a.ctypes.data, b.ctypes.data, c.ctypes.data, 0.5, n)  # touch the pages
    start = time.perf_counter()
    lib.triad(a.ctypes.data, b.ctypes.data, c.ctypes.data, 0.5, n)
    return 3 * 4 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lib = build()
    rows = []
    for lanes in (8, 16):
        peaks = [fma_gflops(lib, args.seconds, lanes) for _ in range(args.repeat)]
        label = f"FMA peak, {lanes} lanes (GFLOP/s)"
        rows.append([label, f"{statistics.median(peaks):.1f}", f"{max(peaks):.1f}"])
    bws = [triad_gbs(lib) for _ in range(args.repeat)]
    rows.append(["triad bandwidth (GB/s)", f"{statistics.median(bws):.1f}", f"{max(bws):.1f}"])
    print(header("FP32 peak and memory bandwidth, 1 thread"))
    print(table(rows, ["measure", "median", "best"]))


if __name__ == "__main__":
    main()
