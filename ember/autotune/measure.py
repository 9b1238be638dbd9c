"""Measure configs: build in parallel worker processes, run each in its own process.

    measure = LocalMeasure(task, n_parallel=2, repeat=3, timeout=10)
    results = measure([MeasureInput(task, task.config_space.get(i)) for i in (0, 5, 9)])
    results[0].cost, results[0].error        # median seconds, or None / {"kind", "message"}

A candidate that fails to instantiate or compile, crashes (even a segfault), runs past
its timeout, or gives an answer that differs from the default schedule's (on fresh
random inputs) is a :class:`MeasureResult` with an ``error`` and infinite cost, never a
fast one. :class:`Runner` is the interface other devices plug into (``LocalRunner``
runs on this machine).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.spawn
import os
import pickle
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.autotune import _child
from ember.codegen.c import codegen_c
from ember.codegen.dialect import dialect_for
from ember.dispatch.space import ConfigEntity, FallbackConfig
from ember.dispatch.task import Task
from ember.driver.toolchain import compile_shared
from ember.errors import BuildError, EmberError, EmberRuntimeError
from ember.te.lower import lower
from ember.te.tensor import PlaceholderOp

KERNEL_NAME = "tuning_candidate"
"""The C symbol of every tuning candidate (same name -> identical configs hit the cache)."""

ERROR_KINDS = (
    "instantiate_error",  # the template or lowering rejected the config
    "compile_error",  # the C compiler failed
    "build_timeout",
    "build_crash",  # the build worker process died
    "runtime_error",  # the kernel returned an error status or could not load
    "runtime_crash",  # the measuring process died (segfault, abort)
    "run_timeout",
    "wrong_answer",  # differs from the default schedule's output
)


@dataclass(frozen=True)
class MeasureInput:
    """One config of one task to measure."""

    task: Task
    config: ConfigEntity


@dataclass
class MeasureResult:
    """Seconds per run (``costs``, one per repeat) or an ``error`` {"kind", "message"}."""

    costs: list[float]
    error: dict[str, str] | None = None
    timestamp: float = field(default_factory=time.time)

    @property
    def cost(self) -> float:
        """Median seconds, or infinity for an error."""
        return statistics.median(self.costs) if self.costs and self.error is None else float("inf")

    @staticmethod
    def failed(kind: str, message: str) -> MeasureResult:
        return MeasureResult([], {"kind": kind, "message": message[:2000]})


@dataclass
class BuildResult:
    """A compiled candidate (a shared library and how to call it), or why it failed."""

    lib_path: str | None
    arg_specs: list[tuple[list[int], str]] = field(default_factory=list)
    output_indices: list[int] = field(default_factory=list)
    error: tuple[str, str] | None = None
    seconds: float = 0.0


def build_config(task: Task, index: int) -> BuildResult:
    """Instantiate, lower and compile one config (``index == -1``: the default schedule).

    Runs in a builder worker process; every failure becomes a BuildResult error.
    """
    start = time.perf_counter()
    try:
        cfg = FallbackConfig() if index < 0 else task.config_space.get(index)
        s, tensors = task.instantiate(cfg)
        func = lower(s, tensors, name=KERNEL_NAME)
        source = codegen_c([func], dialect_for(task.target)).get_source()
    except Exception as err:  # any template/lowering failure belongs to this config
        return BuildResult(None, error=("instantiate_error", f"{type(err).__name__}: {err}"))
    try:
        path, _hit = compile_shared(source, task.target)
    except BuildError as err:
        return BuildResult(None, error=("compile_error", str(err)))
    except EmberError as err:
        return BuildResult(None, error=("compile_error", f"{type(err).__name__}: {err}"))
    specs = [([int(d.value) for d in t.shape], t.dtype) for t in tensors]
    outputs = [k for k, t in enumerate(tensors) if not isinstance(t.op, PlaceholderOp)]
    return BuildResult(str(path), specs, outputs, seconds=time.perf_counter() - start)


class LocalBuilder:
    """Builds candidates in ``n_parallel`` spawned worker processes (kept between batches)."""

    def __init__(self, n_parallel: int | None = None, timeout: float = 60.0) -> None:
        self.n_parallel = max(1, n_parallel or os.cpu_count() or 1)
        self.timeout = timeout
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.n_parallel, mp_context=ctx)
        return self._pool

    def _reset(self) -> None:
        if self._pool is not None:
            procs = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:  # a build stuck past its timeout would block the next batch
                if p.is_alive():
                    p.kill()
            self._pool = None

    def build(self, task: Task, indices: list[int]) -> list[BuildResult]:
        pool = self._get_pool()
        futures = [pool.submit(build_config, task, i) for i in indices]
        results: list[BuildResult] = []
        broken = False
        deadline = time.monotonic() + self.timeout
        for fut in futures:
            try:
                results.append(fut.result(timeout=max(deadline - time.monotonic(), 0.1)))
            except FutureTimeout:
                results.append(BuildResult(None, error=("build_timeout", "build ran too long")))
                broken = True
            except BrokenProcessPool:
                results.append(BuildResult(None, error=("build_crash", "a build worker died")))
                broken = True
        if broken:
            self._reset()
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Runner:
    """Runs built candidates on a device. Subclass for other devices (remote boards, GPUs).

    ``prepare(task, reference)`` gets the default schedule's build; ``run`` returns one
    MeasureResult per build result, errors included.
    """

    def prepare(self, task: Task, reference: BuildResult) -> None:
        raise NotImplementedError

    def run(self, builds: list[BuildResult]) -> list[MeasureResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


MAIN_PROBE_TIMEOUT = 120.0
"""Seconds to wait for a re-import of the main script (it may load a model first)."""

# What a starting worker does before it runs anything of ember's: take the parent's
# sys.path, argv and folder, then import the main script or module as ``__mp_main__``
# while flagged as starting (``spawn._main`` sets the same flag).
_MAIN_PROBE = """\
import pickle, sys
from multiprocessing import process, spawn
data = pickle.load(sys.stdin.buffer)
process.current_process()._inheriting = True
spawn.prepare(data)
"""

# CPython's error when a starting worker tries to start a process of its own.
_STARTS_PROCESSES = "finished its bootstrapping phase"


def main_reimport_error(
    what: str, method: str = "spawn", timeout: float = MAIN_PROBE_TIMEOUT
) -> str | None:
    """Why ``what`` (worker processes started by ``method`` that died while starting) died,
    when the cause is the main script: the 'spawn' and 'forkserver' start methods run the
    parent's main script again in every worker before anything else, so its top-level
    code runs there too, and a script that tunes at top level starts tuning again in each.

    Re-imports the main script (or ``python -m`` module) the way a starting worker does,
    in a fresh interpreter, and returns what went wrong, or None when it imports cleanly
    (the workers died of something else), when there is no main script to re-import (an
    interactive session, ``python -c``, a package's ``__main__``) or when the import
    outlasts ``timeout`` seconds.
    """
    data = multiprocessing.spawn.get_preparation_data("ember-main-probe")
    path, name = data.get("init_main_from_path"), data.get("init_main_from_name")
    if name is not None and (name == "__main__" or name.endswith(".__main__")):
        return None  # spawn never re-imports these
    if path is None and name is None:
        return None
    data.pop("authkey", None)  # the probe joins no process tree
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _MAIN_PROBE],
            input=pickle.dumps(data),
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode == 0:
        return None
    main = f"script {path}" if path is not None else f"module {name}"
    again = (
        f"{what} died while starting: each one runs the main {main} again (Python's "
        f"'{method}' start method imports it in every worker)"
    )
    stderr = probe.stderr.decode(errors="replace")
    if _STARTS_PROCESSES in stderr:
        return (
            f"{again}, which starts tuning when it is imported, so each worker tried to "
            f"start workers of its own"
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"{again}, and importing it there failed: " + (
        lines[-1] if lines else f"exit status {probe.returncode}"
    )


MAIN_GUARD_HINT = (
    'put the code that tunes under `if __name__ == "__main__":` in the script '
    "(workers import the script, and skip that block); see docs/tuning.md"
)


class LocalRunner(Runner):
    """Runs each candidate in its own process on this machine (forked from a server that has
    numpy loaded), with a timeout; checks answers against the default schedule once.

    With ``interleave`` (the default), every sample of a candidate is paired with a sample
    of the default schedule taken right next to it in the same process, and the cost is
    their ratio times the default's seconds per call (measured once in ``prepare``): the
    machine's drift, 20-30% over fractions of a second on a shared host, is common to
    both and cancels, so configs are ranked by a much steadier number (see ``_child``).
    """

    def __init__(
        self,
        repeat: int = 3,
        timeout: float = 10.0,
        min_repeat_seconds: float = 0.01,
        max_number: int = 1000,
        check_correctness: bool = True,
        rtol: float = 1e-4,
        interleave: bool = True,
    ) -> None:
        self.repeat = repeat
        self.interleave = interleave
        self.reference: dict[str, Any] | None = None
        """{"lib_path", "seconds"} of the default schedule once ``prepare`` has run."""
        self.timeout = timeout
        self.min_repeat_seconds = min_repeat_seconds
        self.max_number = max_number
        self.check = check_correctness
        self.rtol = rtol
        self._ctx = multiprocessing.get_context("forkserver")
        # The server imports the child module once; each measurement forks from it, so the
        # timeout covers the kernel run, not interpreter start-up and imports.
        self._ctx.set_forkserver_preload(["ember.autotune._child"])
        self._tmp = tempfile.TemporaryDirectory(prefix="ember-tune-")
        self._npz = str(Path(self._tmp.name) / "reference.npz")

    def _spawn(self, kind: str, job: dict[str, Any]) -> dict[str, Any]:
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child.entry, args=(kind, job, child), daemon=True)
        proc.start()
        child.close()
        out = None
        if parent.poll(self.timeout):
            try:
                out = parent.recv()
            except EOFError:  # the child died before answering
                out = None
        proc.join(timeout=1.0 if out is not None else 0.1)
        if proc.is_alive():
            proc.kill()
            proc.join()
            if out is None:
                return {"error": ("run_timeout", f"no answer within {self.timeout:g} s")}
        parent.close()
        if out is None:
            code = proc.exitcode or 0
            what = _signal_name(code) if code < 0 else f"exit status {code}"
            return {"error": ("runtime_crash", f"the measuring process died ({what})")}
        return out

    def _job(self, build: BuildResult) -> dict[str, Any]:
        return {
            "lib_path": build.lib_path,
            "symbol": KERNEL_NAME,
            "arg_specs": build.arg_specs,
            "output_indices": build.output_indices,
            "npz": self._npz,
            "check": self.check,
            "rtol": self.rtol,
            "repeat": self.repeat,
            "min_repeat_seconds": self.min_repeat_seconds,
            "max_number": self.max_number,
            "reference": self.reference if self.interleave else None,
        }

    def prepare(self, task: Task, reference: BuildResult) -> None:
        if reference.error is not None and reference.error[0] == "build_crash":
            why = main_reimport_error("the build worker processes", "spawn")
            if why is not None:
                raise BuildError(f"tuning {task.name}{task.args}: {why}", hint=MAIN_GUARD_HINT)
        if reference.error is not None:
            raise BuildError(
                f"tuning {task.name}{task.args}: the default schedule does not build "
                f"({reference.error[0]}): {reference.error[1]}",
                hint="fix the template's fallback path first",
            )
        self.reference = None
        out = self._spawn("reference", self._job(reference))
        if out["error"] is not None and out["error"][0] == "runtime_crash":
            why = main_reimport_error("the measuring processes", "forkserver")
            if why is not None:
                raise EmberRuntimeError(
                    f"tuning {task.name}{task.args}: {why}", hint=MAIN_GUARD_HINT
                )
        if out["error"] is not None:
            raise EmberRuntimeError(
                f"tuning {task.name}{task.args}: the default schedule failed to run "
                f"({out['error'][0]}): {out['error'][1]}"
            )
        self.reference = {"lib_path": reference.lib_path, "seconds": float(out["seconds"])}

    def run(self, builds: list[BuildResult]) -> list[MeasureResult]:
        results = []
        for b in builds:
            if b.error is not None:
                results.append(MeasureResult.failed(*b.error))
                continue
            out = self._spawn("measure", self._job(b))
            if out["error"] is not None:
                results.append(MeasureResult.failed(*out["error"]))
            else:
                results.append(MeasureResult(list(out["costs"])))
        return results

    def close(self) -> None:
        self._tmp.cleanup()


class LocalMeasure:
    """``measure(inputs) -> results`` for one task: a builder and a runner together.

    The default schedule is built and run first; its output on fresh random inputs is the
    reference every candidate is checked against. Its build is kept (``default_build``)
    for callers that time the default again, so it is lowered once per task.
    """

    def __init__(
        self,
        task: Task,
        builder: LocalBuilder | None = None,
        runner: Runner | None = None,
        **runner_options: Any,
    ) -> None:
        self.task = task
        self.builder = builder or LocalBuilder()
        self.runner = runner or LocalRunner(**runner_options)
        (self.default_build,) = self.builder.build(task, [-1])
        self.runner.prepare(task, self.default_build)

    def __call__(self, inputs: list[MeasureInput]) -> list[MeasureResult]:
        builds = self.builder.build(self.task, [inp.config.index for inp in inputs])
        return self.runner.run(builds)

    def close(self) -> None:
        self.builder.close()
        self.runner.close()

    def __enter__(self) -> LocalMeasure:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "ERROR_KINDS",
    "BuildResult",
    "LocalBuilder",
    "LocalMeasure",
    "LocalRunner",
    "MeasureInput",
    "MeasureResult",
    "Runner",
    "build_config",
]
