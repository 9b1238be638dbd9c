"""Timing for the graph tuner: fused kernels one by one, and whole models side by side.

    timer = KernelTimer(Target.parse("host"), threads=1)
    seconds = timer.measure([func_a, func_b])      # primitive functions (fused kernels)
    ms = model_latencies({"default": m1, "tuned": m2}, threads=1)   # median ms each

A kernel is generated exactly as :func:`ember.compile` generates it (the op strategy's
schedule, or the best record of the dispatch context given to the timer), compiled into
its own cached shared library and timed in this process on random inputs; times are
cached by workload key, so a kernel shared by several convs or plans is timed once.
"""

from __future__ import annotations

import ctypes
import math
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ember.autotune._child import aligned
from ember.codegen.c import c_symbol
from ember.dispatch.context import DispatchContext
from ember.driver import lower_kernel
from ember.driver.toolchain import compile_shared
from ember.errors import EmberRuntimeError
from ember.graph.ir import Function, TupleType
from ember.graph.structural import workload_key
from ember.runtime.model import _thread_setter
from ember.target import Target

MIN_SAMPLE_SECONDS = 0.002
"""Back-to-back calls per timing sample last at least this long (timer resolution, and a
kernel of a few microseconds is dominated by call overhead otherwise)."""

SAMPLES = 5
"""Timing samples per kernel and pass; their median is the pass's time."""

PASSES = 3
"""Passes over all new kernels, round robin; a kernel's time is its fastest pass. Other
jobs on a shared machine only ever slow a kernel down, and load comes and goes over
seconds, so the fastest pass is the best estimate of the kernel's own time and a
kernel does not win or lose by when it happened to be timed."""


class _Borrowed(DispatchContext):
    """Answers from another context's records without adding to its tuned/untuned counts."""

    def __init__(self, outer: DispatchContext) -> None:
        super().__init__()
        self.outer = outer

    def query(self, task: Any) -> Any:
        return self.outer.query(task)


def _arrays(func: Function, rng: np.random.Generator) -> tuple[list[np.ndarray], Any]:
    """Random inputs and empty outputs in the kernel ABI order (params, then results),
    aligned as the runtime aligns them (see ember.autotune._child.ALIGNMENT)."""
    arrays = []
    for p in func.params:
        t = p.type
        a = aligned(t.shape, t.dtype)
        a[...] = rng.uniform(-1, 1, t.shape) if np.dtype(t.dtype).kind == "f" else 0
        arrays.append(a)
    rets = func.ret_type.fields if isinstance(func.ret_type, TupleType) else (func.ret_type,)
    for t in rets:
        a = aligned(t.shape, t.dtype)
        a[...] = 0
        arrays.append(a)
    argv = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    return arrays, argv


class KernelTimer:
    """Seconds per call of fused kernels, cached by workload key.

    ``dispatch``: a tuning log's context (``apply_history_best``) whose best records pick
    the kernels' schedules, as they would in compile; ``threads``: OpenMP threads.
    """

    def __init__(
        self,
        target: Target,
        threads: int,
        dispatch: DispatchContext | None = None,
        n_parallel: int = 2,
    ) -> None:
        self.target = target
        self.threads = threads
        self.dispatch = dispatch
        self.n_parallel = max(1, n_parallel)
        self.cache: dict[str, float] = {}
        self.compile_seconds = 0.0
        self.timing_seconds = 0.0

    def cost(self, func: Function) -> float:
        """Seconds per call of one kernel (measured on first use)."""
        return self.measure([func])[0]

    def measure(self, funcs: Iterable[Function]) -> list[float]:
        """Seconds per call of each kernel; the new ones are compiled in parallel first."""
        funcs = list(funcs)
        keys = [workload_key(f) for f in funcs]
        todo: dict[str, Function] = {}
        for k, f in zip(keys, funcs):
            if k not in self.cache:
                todo.setdefault(k, f)
        if todo:
            start = time.perf_counter()
            names = {k: c_symbol(f"graph_tuner_{k}") for k in todo}
            schedules = _Borrowed(self.dispatch) if self.dispatch is not None else None
            sources = {
                k: lower_kernel(f, names[k], self.target, schedules) for k, f in todo.items()
            }
            with ThreadPoolExecutor(self.n_parallel) as pool:
                paths = dict(
                    zip(
                        sources,
                        pool.map(lambda s: compile_shared(s, self.target)[0], sources.values()),
                    )
                )
            self.compile_seconds += time.perf_counter() - start
            start = time.perf_counter()
            runners = {k: self._runner(f, str(paths[k]), names[k]) for k, f in todo.items()}
            for _ in range(PASSES):
                for k, run in runners.items():
                    self.cache[k] = min(self.cache.get(k, math.inf), run())
            self.timing_seconds += time.perf_counter() - start
        return [self.cache[k] for k in keys]

    def _runner(self, func: Function, lib_path: str, symbol: str) -> Callable[[], float]:
        """Load one kernel and return a function timing it once (median seconds per call)."""
        lib = ctypes.CDLL(lib_path)
        fn = getattr(lib, symbol)
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = ctypes.c_int32
        arrays, argv = _arrays(func, np.random.default_rng(0))
        set_threads = _thread_setter(lib)
        set_threads(self.threads)
        start = time.perf_counter()
        status = fn(argv)  # warm-up (page faults, pool threads start)
        first = time.perf_counter() - start
        if status != 0:
            raise EmberRuntimeError(
                f"graph tuner: kernel {func.name} returned status {status} while being timed"
            )
        number = max(1, math.ceil(MIN_SAMPLE_SECONDS / max(first, 1e-7)))

        def run() -> float:
            set_threads(self.threads)
            fn(argv)  # untimed: brings this kernel's data and code back into cache
            samples = []
            for _ in range(SAMPLES):
                start = time.perf_counter()
                for _ in range(number):
                    fn(argv)
                samples.append((time.perf_counter() - start) / number)
            _ = (lib, arrays)  # the library and buffers live as long as the runner
            return statistics.median(samples)

        return run


def model_latencies(models: dict[str, Any], threads: int, rounds: int = 8, runs: int = 5) -> dict:
    """Median ms per run of each loaded model (:class:`ember.runtime.Model`), timed in
    alternating blocks of ``runs`` on the same random input so slow phases of a shared
    machine hit every model alike.

    >>> model_latencies({"default": m1, "tuned": m2}, threads=1)   # doctest: +SKIP
    {'default': 12.1, 'tuned': 11.4}
    """
    inputs = next(iter(models.values())).random_inputs()
    for m in models.values():
        m.set_num_threads(threads)
        m.run(inputs)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, m in models.items():
            m.run(inputs)  # untimed: wakes this model's threads, warms its caches
            for _ in range(runs):
                start = time.perf_counter()
                m.run(inputs)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


__all__ = ["KernelTimer", "model_latencies"]
