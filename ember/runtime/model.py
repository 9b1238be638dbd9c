"""Load and run a compiled model: numpy and ctypes only, no compiler.

m = ember.load("resnet18.ember")
outs = m.run({"data": x})          # list of numpy arrays
print(m.benchmark(repeat=50))      # {"median_ms": ..., "p90_ms": ..., ...}
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import EmberRuntimeError
from ember.runtime.artifact import PARAM_ALIGNMENT, read_artifact, require_dtypes
from ember.runtime.cpu import check_target_record
from ember.runtime.profile import profile_run

_ABI_VERSION = 1


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def __str__(self) -> str:
        return f"{self.name}: {self.shape} {self.dtype}"


def _aligned_empty(nbytes: int, alignment: int = PARAM_ALIGNMENT) -> np.ndarray:
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start : start + nbytes]


def _env_threads() -> int:
    """The thread count the environment asks for: ``EMBER_NUM_THREADS``, else
    ``OMP_NUM_THREADS`` (its first entry: ``"4,2"`` is 4 at the outer level, as OpenMP
    reads it), else 0 (no limit: every usable core).

    Read here, not from ember.config, so the runtime imports nothing beyond numpy; ember.config
    reads them the same way for the compiler's in-process kernels.

    >>> os.environ["OMP_NUM_THREADS"] = "1"; _env_threads()  # doctest: +SKIP
    1
    """
    for name in ("EMBER_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").split(",")[0].strip()
        if not text:
            continue
        try:
            count = int(text)
        except ValueError:
            count = -1
        if count < 0 or (count == 0 and name == "OMP_NUM_THREADS"):
            raise EmberRuntimeError(
                f"{name}={os.environ[name]!r} is not a thread count",
                hint="set it to a positive integer, or unset it to use every core"
                + (" (EMBER_NUM_THREADS=0 means no limit)" if name == "EMBER_NUM_THREADS" else ""),
            )
        if count > 0:
            return count
        return 0  # EMBER_NUM_THREADS=0: no limit, whatever OMP_NUM_THREADS says
    return 0


def _library_path(lib_bytes: bytes) -> Path:
    """Write the library to a per-content file once (dlopen needs a path)."""
    digest = hashlib.sha256(lib_bytes).hexdigest()[:24]
    base = Path(
        os.environ.get("EMBER_RUNTIME_DIR") or Path(tempfile.gettempdir()) / "ember-runtime"
    )
    base.mkdir(parents=True, exist_ok=True)
    lib_path = base / f"model-{digest}.so"
    if not lib_path.exists():
        tmp = lib_path.with_name(f"{lib_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(lib_bytes)
        tmp.replace(lib_path)
    return lib_path


def _thread_setter(lib: Any) -> Any:
    """The library's ``ember_set_num_threads(n)`` (its thread pool's team for the calling
    thread; OpenMP's for a library built with the OpenMP dialect), or a no-op for a
    library without parallel kernels."""
    try:
        fn = lib.ember_set_num_threads
    except AttributeError:
        return lambda n: None
    fn.argtypes = [ctypes.c_int32]
    fn.restype = None
    return fn


def _cores() -> int:
    """Cores this process may run on (honours taskset / cgroup CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Model:
    """A loaded artifact. ``run`` takes a dict of input arrays and returns the outputs.

    ``run`` may be called from several threads at once: each call gets its own
    workspace, and the threads of the kernels' parallel loops are divided among the
    calls in flight (two concurrent runs on a 4-thread model use 2 threads each), so a
    caller that runs inferences in parallel does not oversubscribe the cores.
    """

    def __init__(self, path: str | Path) -> None:
        path = str(path)
        contents = read_artifact(path)
        meta = contents.metadata
        check_target_record(meta.get("target", {}), path)
        self.path = path
        self.metadata = meta
        self.inputs = [TensorInfo(t["name"], tuple(t["shape"]), t["dtype"]) for t in meta["inputs"]]
        self.outputs = [
            TensorInfo(t["name"], tuple(t["shape"]), t["dtype"]) for t in meta["outputs"]
        ]
        dtypes = {t["dtype"] for t in (*meta["inputs"], *meta["outputs"], *meta["params"])}
        require_dtypes(dtypes, repr(path))
        try:
            self._lib = ctypes.CDLL(str(_library_path(contents.lib_bytes)))
        except OSError as err:
            raise EmberRuntimeError(f"{path!r}: cannot load model.so: {err}") from None
        self._lib.ember_run.restype = ctypes.c_int32
        self._lib.ember_run.argtypes = [ctypes.c_void_p] * 4
        self._lib.ember_abi_version.restype = ctypes.c_int32
        if self._lib.ember_abi_version() != _ABI_VERSION:
            raise EmberRuntimeError(f"{path!r}: model.so has another ABI version")
        self._set_threads = _thread_setter(self._lib)

        # Weights: one aligned block, each param a view at its offset.
        blob = _aligned_empty(len(contents.params_blob))
        blob[:] = np.frombuffer(contents.params_blob, dtype=np.uint8)
        self._params_blob = blob
        self._param_ptrs = (ctypes.c_void_p * max(len(meta["params"]), 1))(
            *[blob.ctypes.data + p["offset"] for p in meta["params"]]
        )
        self._workspace_bytes = max(int(meta["workspace_bytes"]), 1)
        self._free_workspaces = [_aligned_empty(self._workspace_bytes)]
        self._lock = threading.Lock()
        self._in_flight = 0
        # Threads per run: set_num_threads, else EMBER_NUM_THREADS, else OMP_NUM_THREADS,
        # else all usable cores.
        self._num_threads = _env_threads() or _cores()

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"Model({self.path!r}; inputs {ins}; outputs {outs})"

    def _check_inputs(self, inputs: dict[str, Any]) -> list[np.ndarray]:
        if not isinstance(inputs, dict):
            raise EmberRuntimeError(
                f"run() takes a dict of input name to array, got {type(inputs).__name__}",
                hint=f"e.g. m.run({{{self.inputs[0].name!r}: x}})" if self.inputs else None,
            )
        expected = [i.name for i in self.inputs]
        unknown = sorted(set(inputs) - set(expected))
        missing = [n for n in expected if n not in inputs]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
            if unknown:
                parts.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            raise EmberRuntimeError(
                "; ".join(parts) + f"; the model's inputs are: {', '.join(map(str, self.inputs))}"
            )
        arrays = []
        for info in self.inputs:
            value = inputs[info.name]
            array = np.asarray(value)
            if isinstance(value, list | tuple | float | int):
                array = array.astype(info.dtype)
            if array.shape != info.shape:
                raise EmberRuntimeError(
                    f"input {info.name!r} has shape {array.shape}; the model was compiled for "
                    f"{info.shape}",
                    hint="recompile with the new shape (--input) or reshape the data",
                )
            if str(array.dtype) != info.dtype:
                raise EmberRuntimeError(
                    f"input {info.name!r} has dtype {array.dtype}; the model expects {info.dtype}",
                    hint=f"pass x.astype({info.dtype!r})",
                )
            arrays.append(np.ascontiguousarray(array))
        return arrays

    def set_num_threads(self, n: int) -> None:
        """Threads for the kernels' parallel loops, e.g. to match another runtime.

        Applies to every later ``run`` of this model, from any thread; concurrent runs
        share these threads (see the class docstring)."""
        if not isinstance(n, int) or n < 1:
            raise EmberRuntimeError(f"set_num_threads needs a positive count, got {n!r}")
        self._num_threads = n

    @property
    def num_threads(self) -> int:
        """Threads one run uses when it is the only one in flight."""
        return self._num_threads

    def run(self, inputs: dict[str, Any]) -> list[np.ndarray]:
        """Run one inference; returns the outputs in the model's order. Thread-safe."""
        arrays = self._check_inputs(inputs)
        outs = [np.empty(o.shape, dtype=o.dtype) for o in self.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[o.ctypes.data for o in outs])
        with self._lock:
            self._in_flight += 1
            threads = max(1, self._num_threads // self._in_flight)
            if self._free_workspaces:
                workspace = self._free_workspaces.pop()
            else:
                workspace = _aligned_empty(self._workspace_bytes)
        try:
            # The thread count is per calling thread: set it on this one each run.
            self._set_threads(threads)
            status = self._lib.ember_run(in_ptrs, out_ptrs, self._param_ptrs, workspace.ctypes.data)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._free_workspaces.append(workspace)
        if status != 0:
            raise EmberRuntimeError(f"{self.path!r}: kernel {status} reported an error")
        return outs

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """An input dict for timing: standard normal floats, zeros for other dtypes."""
        rng = np.random.default_rng(seed)
        return {
            i.name: rng.standard_normal(i.shape).astype(i.dtype)
            if _is_float(i.dtype)
            else np.zeros(i.shape, i.dtype)
            for i in self.inputs
        }

    def benchmark(self, repeat: int = 50, warmup: int = 5, inputs: dict | None = None) -> dict:
        """Median / p90 / min latency in ms over ``repeat`` runs on random (or given) inputs."""
        if inputs is None:
            inputs = self.random_inputs()
        for _ in range(warmup):
            self.run(inputs)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            self.run(inputs)
            times.append((time.perf_counter() - start) * 1e3)
        t = np.array(times)
        return {
            "median_ms": float(np.median(t)),
            "p90_ms": float(np.percentile(t, 90)),
            "min_ms": float(t.min()),
            "repeat": repeat,
        }

    def profile(self, repeat: int = 20, warmup: int = 3, inputs: dict | None = None) -> Any:
        """Per-kernel median time, GFLOP/s and share of one inference (x86 helper).

        >>> print(m.profile(repeat=10))   # doctest: +SKIP
        """
        steps = self.metadata.get("steps")
        if steps is None:
            raise EmberRuntimeError(
                f"{self.path!r} has no per-kernel metadata to profile",
                hint="recompile it with this version of ember",
            )
        if inputs is None:
            inputs = self.random_inputs()
        arrays = self._check_inputs(inputs)
        outs = [np.empty(o.shape, dtype=o.dtype) for o in self.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[o.ctypes.data for o in outs])
        workspace = _aligned_empty(self._workspace_bytes)  # its own: runs may go on beside it
        self._set_threads(self._num_threads)
        args = (in_ptrs, out_ptrs, self._param_ptrs, workspace.ctypes.data)
        return profile_run(self._lib, steps, args, repeat, warmup)


def _is_float(dtype: str) -> bool:
    """float16/32/64 and bfloat16 (whose numpy kind is 'V', a custom type)."""
    return dtype == "bfloat16" or np.dtype(dtype).kind == "f"


def load(path: str | Path) -> Model:
    """Load an artifact written by ``ember.compile(...).export(path)``."""
    return Model(path)
