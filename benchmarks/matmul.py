"""Matmul with tensor expressions: from the naive loop nest to a packed, register-blocked,
vectorized, parallel kernel, measured against numpy's matmul (OpenBLAS) in the same run.

    python benchmarks/matmul.py            # 1024^3 and 512^3, fp32, 1 and 2 threads
    python benchmarks/matmul.py --steps    # also every step of docs/tutorials/custom_operator.md

Prints GFLOP/s (median of repeated runs) per schedule and the ratio to numpy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import ember
from ember import te

# Register block of the micro-kernel: MR rows of C by NR columns (NR a multiple of the
# vector width) stay in registers across the whole K loop.
MR = 6
NR = 32
# K is cut into KC-long panels so an MR x KC slice of A and a KC x NR panel of B stay in L1/L2.
KC = 256
# Rows of A per parallel task: large enough to reuse each packed B panel from L2.
MC = 48


def matmul_compute(n: int, m: int, k: int) -> tuple[te.Tensor, te.Tensor, te.Tensor]:
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def schedule_naive(n: int, m: int, k: int):
    A, B, C = matmul_compute(n, m, k)
    return te.create_schedule(C.op), [A, B, C]


def schedule_tiled(n: int, m: int, k: int):
    """Step 2: tile i and j, split k, reorder so the inner loops walk B and C rows."""
    A, B, C = matmul_compute(n, m, k)
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 32, 32)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=4)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    return s, [A, B, C]


def schedule_packed(n: int, m: int, k: int, parallel: bool = True):
    """Steps 3-5: pack B into [m/NR, k, NR] panels, accumulate an MR x NR block of C in a
    local buffer (registers), vectorize NR, unroll MR, block K, parallelize the outer loop."""
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    packed = te.compute((m // NR, k, NR), lambda x, y, z: B[y, x * NR + z], name="packedB")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute(
        (n, m),
        lambda i, j: te.sum(A[i, r] * packed[j // NR, r, j % NR], axis=r),
        name="C",
    )
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], MR, NR)
    s[C].vectorize(ji)
    s[CC].compute_at(s[C], jo)
    ic, jc = s[CC].op.axis
    (kc,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(kc, factor=KC)
    s[CC].reorder(ko, ki, ic, jc)
    s[CC].unroll(ic)
    s[CC].vectorize(jc)
    x, y, z = s[packed].op.axis
    s[packed].vectorize(z)
    if parallel:
        s[packed].parallel(x)
        s[C].parallel(io)
    return s, [A, B, C]


STEPS: dict[str, Callable] = {
    "naive": schedule_naive,
    "tiled+vectorized": schedule_tiled,
    "packed+register-blocked (1 thread)": lambda n, m, k: schedule_packed(n, m, k, False),
    "packed+register-blocked+parallel": schedule_packed,
}


def gflops(n: int, m: int, k: int, seconds: float) -> float:
    return 2.0 * n * m * k / seconds / 1e9


def time_numpy(a: np.ndarray, b: np.ndarray, repeat: int) -> float:
    a @ b
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def time_kernel(mod, a: np.ndarray, b: np.ndarray, c: np.ndarray, repeat: int) -> float:
    run = mod.time_evaluator(mod.entry.name, number=1, repeat=repeat)
    return run(a, b, c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", action="store_true", help="time every tutorial step too")
    parser.add_argument("--sizes", default="1024,512")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    print(f"{'size':>6} {'schedule':<40} {'threads':>7} {'GFLOP/s':>9} {'numpy':>9} {'ratio':>6}")
    for size in sizes:
        n = m = k = size
        a = rng.standard_normal((n, k), dtype=np.float32)
        b = rng.standard_normal((k, m), dtype=np.float32)
        steps = STEPS if args.steps else {"packed+register-blocked+parallel": schedule_packed}
        for label, make in steps.items():
            s, tensors = make(n, m, k)
            mod = ember.build(s, tensors, name="matmul")
            c = np.zeros((n, m), np.float32)
            mod(a, b, c)
            np.testing.assert_allclose(c, a @ b, rtol=1e-3, atol=1e-3)
            threads = [1, 2] if "parallel" in label else [1]
            for t in threads:
                _set_threads(mod, t)
                rep = 1 if label == "naive" else args.repeat
                sec = time_kernel(mod, a, b, c, rep)
                ref = _numpy_time(a, b, t, args.repeat)
                print(
                    f"{size:>6} {label:<40} {t:>7} {gflops(n, m, k, sec):>9.1f} "
                    f"{gflops(n, m, k, ref):>9.1f} {ref / sec:>6.2f}",
                    flush=True,
                )


def _set_threads(mod, n: int) -> None:
    fn = getattr(mod._lib, "ember_set_num_threads", None)
    if fn is not None:
        import ctypes

        fn.argtypes = [ctypes.c_int32]
        fn(n)


def _numpy_time(a: np.ndarray, b: np.ndarray, threads: int, repeat: int) -> float:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl numpy uses its default thread count
        return time_numpy(a, b, repeat)
    with threadpool_limits(limits=threads, user_api="blas"):
        return time_numpy(a, b, repeat)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    main()
