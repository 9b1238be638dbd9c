"""A compiled, loaded kernel library: call kernels on numpy arrays without copying.

    mod = build_module([func])
    mod["matmul"](a, b, c)         # or mod.entry(a, b, c) for the first kernel
    t = mod.time_evaluator("matmul", number=10, repeat=5)(a, b, c)   # median seconds

Every call checks each argument's type, shape, dtype, C-contiguity and (for all
buffers, since any may be written) writeability, and that no two arrays overlap
(the kernels take ``restrict`` pointers), then passes the data pointers.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ember import config as config_module
from ember.codegen.c import c_symbol, shape_vars
from ember.errors import EmberRuntimeError
from ember.tir import expr as E
from ember.tir.evaluator import np_dtype
from ember.tir.stmt import PrimFunc


class Kernel:
    """One callable entry point of a loaded library."""

    def __init__(self, fn: ctypes._CFuncPtr, func: PrimFunc) -> None:
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = ctypes.c_int32
        self._fn = fn
        self.name = func.name
        self.params = func.params
        self.shape_vars = shape_vars(func)
        self._dtypes = [np_dtype(b.dtype) for b in func.params]

    def _check(self, arrays: tuple[np.ndarray, ...]) -> list[int]:
        if len(arrays) != len(self.params):
            names = ", ".join(b.name for b in self.params)
            raise EmberRuntimeError(
                f"kernel {self.name!r} takes {len(self.params)} array(s) ({names}), "
                f"got {len(arrays)}"
            )
        env: dict[E.Var, int] = {}
        for k, (buf, arr, dt) in enumerate(zip(self.params, arrays, self._dtypes, strict=True)):
            where = f"kernel {self.name!r}: argument {k} {buf.name!r}"
            if not isinstance(arr, np.ndarray):
                raise EmberRuntimeError(
                    f"{where}: expected a numpy array, got {type(arr).__name__}"
                )
            for dim, n in zip(buf.shape, arr.shape, strict=False):
                if isinstance(dim, E.Var):
                    if env.setdefault(dim, n) != n:
                        raise EmberRuntimeError(
                            f"{where}: dimension {dim.name} is {env[dim]} in an earlier argument "
                            f"but {n} here"
                        )
            shape = tuple(
                env.get(d, -1) if isinstance(d, E.Var) else int(d.value) for d in buf.shape
            )
            if arr.shape != shape or arr.dtype != dt:
                want = (
                    "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
                )
                raise EmberRuntimeError(
                    f"{where}: expected shape {want} {buf.dtype}, got {arr.shape} {arr.dtype}",
                    hint="convert with np.ascontiguousarray(x, dtype=...) / reshape",
                )
            if not arr.flags.c_contiguous:
                raise EmberRuntimeError(
                    f"{where}: the array is not C-contiguous (a transposed or sliced view?)",
                    hint="pass np.ascontiguousarray(x)",
                )
            if not arr.flags.writeable:
                raise EmberRuntimeError(
                    f"{where}: the array is read-only", hint="pass a writeable copy (x.copy())"
                )
        for a in range(len(arrays)):
            for b in range(a + 1, len(arrays)):
                if arrays[a].size and arrays[b].size and np.may_share_memory(arrays[a], arrays[b]):
                    raise EmberRuntimeError(
                        f"kernel {self.name!r}: arguments {a} {self.params[a].name!r} and "
                        f"{b} {self.params[b].name!r} overlap in memory",
                        hint="kernels do not work in place; pass separate arrays",
                    )
        return [env[v] for v in self.shape_vars]

    def pack(self, *arrays: np.ndarray) -> tuple[ctypes.Array, list[ctypes.c_int32]]:
        """Check ``arrays`` and build the ``void** args`` array (keep the ints alive with it)."""
        sizes = self._check(arrays)
        ints = [ctypes.c_int32(n) for n in sizes]
        ptrs = [a.ctypes.data for a in arrays] + [ctypes.addressof(i) for i in ints]
        return (ctypes.c_void_p * max(len(ptrs), 1))(*ptrs), ints

    def __call__(self, *arrays: np.ndarray) -> None:
        argv, _ints = self.pack(*arrays)
        rc = self._fn(argv)
        if rc != 0:
            raise EmberRuntimeError(
                f"kernel {self.name!r} failed (status {rc}); see stderr for the assertion"
            )


class Module:
    """A loaded shared library of kernels (see the module docstring)."""

    def __init__(
        self, lib_path: Path, funcs: list[PrimFunc], source: str, *, cache_hit: bool
    ) -> None:
        self.lib_path = Path(lib_path)
        self.cache_hit = cache_hit
        self._source = source
        self._lib = ctypes.CDLL(str(lib_path))
        threads = config_module.config.num_threads  # read at load time (tests change it)
        if threads > 0 and hasattr(self._lib, "ember_set_num_threads"):
            self._lib.ember_set_num_threads.argtypes = [ctypes.c_int32]
            self._lib.ember_set_num_threads(threads)
        self.kernels: dict[str, Kernel] = {}
        for f in funcs:
            self.kernels[f.name] = Kernel(getattr(self._lib, c_symbol(f.name)), f)

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self.kernels[name]
        except KeyError:
            raise EmberRuntimeError(
                f"the module has no kernel {name!r}", hint=f"kernels: {', '.join(self.kernels)}"
            ) from None

    @property
    def entry(self) -> Kernel:
        """The first kernel (a one-kernel module's only one)."""
        return next(iter(self.kernels.values()))

    def __call__(self, *arrays: np.ndarray) -> None:
        self.entry(*arrays)

    def get_source(self) -> str:
        """The generated C source."""
        return self._source

    def time_evaluator(self, name: str, number: int = 10, repeat: int = 5) -> Callable[..., float]:
        """A function of the kernel's arrays returning the median seconds of one call.

        Each of ``repeat`` measurements times ``number`` back-to-back calls (after one warm-up);
        arguments are checked once, so the time is the kernel's alone.
        """
        kernel = self[name]

        def run(*arrays: np.ndarray) -> float:
            kernel(*arrays)
            argv, _ints = kernel.pack(*arrays)
            fn = kernel._fn
            samples = []
            for _ in range(max(repeat, 1)):
                start = time.perf_counter()
                for _ in range(max(number, 1)):
                    fn(argv)
                samples.append((time.perf_counter() - start) / max(number, 1))
            return statistics.median(samples)

        return run
