"""What one isolated measurement process does: load a kernel library, check its answer, time it.

Imports only numpy and ctypes (the runner forks this from a small server process), so a
kernel that crashes takes only its own process down.

Timing against a reference: on a shared machine a kernel's speed drifts by 20-30% from
one tenth of a second to the next, while two kernels timed back to back see nearly the
same conditions. So with ``job["reference"]`` (the default schedule's library and its
seconds per call), samples alternate candidate / reference and each cost is the pair's
ratio times the reference's seconds: the drift common to the pair cancels.
"""

from __future__ import annotations

import ctypes
import math
import statistics
import time
from typing import Any

import numpy as np


def _load(lib_path: str, symbol: str) -> Any:
    lib = ctypes.CDLL(lib_path)
    fn = getattr(lib, symbol)
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    fn.restype = ctypes.c_int32
    return lib, fn


ALIGNMENT = 64
"""Byte alignment of every argument buffer: the runtime's (ember.runtime.artifact
PARAM_ALIGNMENT). numpy's own allocations are 16-byte aligned; a tuned ResNet-18 conv
timed against its default schedule on 16-byte aligned arguments ran at 1.11-1.29x the
default's time in 8 fresh processes, and at 0.98-1.12x on 64-byte aligned ones: 64-byte
vector loads that straddle cache lines cost some loop orders more than others, so a
config must be timed on the alignment it will run on."""


def aligned(shape: Any, dtype: Any) -> np.ndarray:
    """An uninitialized array whose data starts on an ``ALIGNMENT``-byte boundary."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = (-raw.ctypes.data) % ALIGNMENT
    return raw[start : start + nbytes].view(dt).reshape(shape)


def _argv(arrays: list[np.ndarray]) -> Any:
    return (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])


def make_reference(job: dict[str, Any]) -> dict[str, Any]:
    """Run the default kernel on fresh random inputs; save inputs and outputs to ``job["npz"]``."""
    _lib, fn = _load(job["lib_path"], job["symbol"])
    rng = np.random.default_rng()
    arrays = []
    for k, (shape, dtype) in enumerate(job["arg_specs"]):
        a = aligned(shape, dtype)
        if k in job["output_indices"]:
            a[...] = 0
        elif np.issubdtype(np.dtype(dtype), np.floating):
            a[...] = rng.uniform(-1, 1, size=shape)
        else:
            a[...] = rng.integers(-8, 8, size=shape)
        arrays.append(a)
    argv = _argv(arrays)
    rc = fn(argv)
    if rc != 0:
        return {"error": ("runtime_error", f"the default kernel returned status {rc}")}
    np.savez(job["npz"], *arrays)
    number = _calls_per_sample(fn, argv, job)
    costs = [_sample(fn, argv, number) for _ in range(max(job["repeat"], REFERENCE_SAMPLES))]
    return {"error": None, "seconds": statistics.median(costs)}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Check the candidate against the reference once, then time it; a dict of costs or error."""
    _lib, fn = _load(job["lib_path"], job["symbol"])
    ref = np.load(job["npz"])
    arrays = []
    for k, (shape, dtype) in enumerate(job["arg_specs"]):
        a = aligned(shape, dtype)
        a[...] = ref[f"arr_{k}"]
        arrays.append(a)
    expected = {k: arrays[k].copy() for k in job["output_indices"]}
    for k in job["output_indices"]:
        arrays[k].fill(np.nan if np.issubdtype(arrays[k].dtype, np.floating) else 0)
    argv = _argv(arrays)
    start = time.perf_counter()
    rc = fn(argv)
    first = time.perf_counter() - start
    if rc != 0:
        return {"error": ("runtime_error", f"the kernel returned status {rc}")}
    if job["check"]:
        for k, want in expected.items():
            got = arrays[k]
            scale = float(np.max(np.abs(want))) if want.size else 0.0
            atol = job["rtol"] * max(scale, 1.0)
            if not np.allclose(got, want, rtol=job["rtol"], atol=atol, equal_nan=False):
                bad = np.abs(got.astype(np.float64) - want.astype(np.float64))
                worst = float(np.nanmax(bad)) if np.isfinite(bad).any() else float("nan")
                return {
                    "error": (
                        "wrong_answer",
                        f"output {k} differs from the default schedule's output (max abs "
                        f"difference {worst:.3g}; {int(np.sum(~np.isclose(got, want)))} of "
                        f"{want.size} elements)",
                    )
                }
    number = _calls_per_sample(fn, argv, job, first)
    ref = job.get("reference")
    if ref is None:
        costs = [_sample(fn, argv, number) for _ in range(job["repeat"])]
        return {"error": None, "costs": costs, "median": statistics.median(costs)}
    _ref_lib, ref_fn = _load(ref["lib_path"], job["symbol"])
    ref_number = _calls_per_sample(ref_fn, argv, job)
    ratios = []
    for k in range(job["repeat"]):
        # Alternate which of the pair runs first, so a drift within a pair cancels too.
        if k % 2:
            r = _sample(ref_fn, argv, ref_number)
            c = _sample(fn, argv, number)
        else:
            c = _sample(fn, argv, number)
            r = _sample(ref_fn, argv, ref_number)
        ratios.append(c / r)
    costs = [x * ref["seconds"] for x in ratios]
    return {"error": None, "costs": costs, "median": statistics.median(costs)}


REFERENCE_SAMPLES = 15
"""Samples of the reference's own time (its seconds per call scale every ratio)."""


def _calls_per_sample(fn: Any, argv: Any, job: dict[str, Any], first: float | None = None) -> int:
    """Enough back-to-back calls that one sample lasts ``min_repeat_seconds``."""
    if first is None:
        start = time.perf_counter()
        fn(argv)
        first = time.perf_counter() - start
    return max(1, min(job["max_number"], math.ceil(job["min_repeat_seconds"] / max(first, 1e-7))))


def _sample(fn: Any, argv: Any, number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn(argv)
    return (time.perf_counter() - start) / number


def entry(kind: str, job: dict[str, Any], conn: Any) -> None:
    """Process target: run ``kind`` ("measure" or "reference") and send the answer back."""
    try:
        out = measure(job) if kind == "measure" else make_reference(job)
    except Exception as err:  # reported to the parent as this candidate's error
        out = {"error": ("runtime_error", f"{type(err).__name__}: {err}")}
    conn.send(out)
    conn.close()
