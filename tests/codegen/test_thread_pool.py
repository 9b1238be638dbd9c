"""ember's thread pool (ember/codegen/thread_pool.py): parallel loops outlined into
functions and run in chunks; right answers with any team size, concurrent callers,
after fork, and the thread count from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import ember
from ember import te
from ember.codegen.c import codegen_c
from ember.codegen.dialect import OpenMP
from ember.te.lower import lower
from ember.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer
from ember.tir.expr import Call, Var, const


def _rows_kernel(n: int, m: int, name: str = "rows"):
    """out[i, j] = a[i, j] * 2 + i, parallel over rows, inner axis vectorized."""
    A = te.placeholder((n, m), "float32", name="A")
    B = te.compute((n, m), lambda i, j: A[i, j] * 2.0 + i.astype("float32"), name="B")
    s = te.create_schedule(B.op)
    s[B].parallel(B.op.axis[0])
    if m >= 8:
        _, ji = s[B].split(B.op.axis[1], factor=8)
        s[B].vectorize(ji)
    return s, [A, B], name


def _expected(a: np.ndarray) -> np.ndarray:
    return a * 2 + np.arange(a.shape[0], dtype=np.float32)[:, None]


def test_parallel_loop_is_outlined_with_the_variables_it_uses():
    s, args, name = _rows_kernel(24, 20)
    src = codegen_c([lower(s, args, name=name)]).get_source()
    assert "struct rows_par0_env {" in src
    assert "static inline void rows_par0_body(int64_t _begin, int64_t _end, " in src
    assert "float* restrict A" in src and "ember_parallel_for(0, 24, rows_par0, &_env);" in src
    assert "#pragma omp" not in src
    omp = codegen_c([lower(s, args, name=name)], dialect=OpenMP()).get_source()
    assert "#pragma omp parallel for schedule(guided)" in omp and "rows_par0" not in omp


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [1, 2, 5, 31, 257])
def test_any_team_size_gives_the_same_answer(n, threads):
    s, args, name = _rows_kernel(n, 24)
    f = ember.build(s, args, target="host", name=name)
    f._lib.ember_set_num_threads(threads)
    rng = np.random.default_rng()
    for _ in range(5):
        a = rng.standard_normal((n, 24)).astype("float32")
        out = np.full_like(a, np.nan)
        f(a, out)
        np.testing.assert_array_equal(out, _expected(a))


def test_concurrent_callers_each_get_their_answer():
    """Callers from several threads at once: one runs on the pool, the others run their
    loops serially; all results right, nothing hangs."""
    s, args, name = _rows_kernel(64, 48)
    f = ember.build(s, args, target="host", name=name)
    f._lib.ember_set_num_threads(4)
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(150):
            a = rng.standard_normal((64, 48)).astype("float32")
            out = np.empty_like(a)
            f(a, out)
            if not np.array_equal(out, _expected(a)):
                errors.append(f"caller {seed}: wrong result")
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert not errors, errors


_CHILD = """
import ctypes, os, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
fn = lib.thread_probe
fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
out = np.zeros(64, np.int32)
argv = (ctypes.c_void_p * 1)(out.ctypes.data)
for _ in range(5):
    assert fn(argv) == 0
    print(len(set(out.tolist())))
pid = os.fork()
if pid == 0:  # the child has no pool workers: the pool starts new ones
    for _ in range(5):
        fn(argv)
    os._exit(0 if len(set(out.tolist())) >= 1 and (out != 0).all() else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def _thread_probe() -> PrimFunc:
    """A parallel loop whose iteration i writes the id of the thread that ran it (each
    iteration busy for ~20 us, so a second thread has time to join)."""
    A = decl_buffer((64,), "int32", "A")
    i = Var("i")
    f = PrimFunc(
        "thread_probe",
        (A,),
        For(
            i,
            const(0),
            const(64),
            ForKind.PARALLEL,
            BufferStore(A, Call("int32", "probe_tid", (i,)), (i,)),
        ),
    )
    f.attrs["c_prelude"] = [
        "static int32_t probe_tid(int32_t i) {\n"
        "  volatile double x = 0; for (int k = 0; k < 20000 + i; ++k) x += k;\n"
        "  return (int32_t)syscall(SYS_gettid);\n}"
    ]
    return f


def test_num_threads_from_config_reaches_the_pool(monkeypatch):
    import dataclasses

    import ember.config

    out = np.zeros(64, "int32")
    monkeypatch.setattr(
        ember.config, "config", dataclasses.replace(ember.config.config, num_threads=1)
    )
    mod = ember.build([_thread_probe()])  # loading applies config.num_threads
    for _ in range(3):
        mod.entry(out)
        assert len(set(out.tolist())) == 1  # one thread ran every iteration
    mod._lib.ember_set_num_threads(2)
    seen = set()
    for _ in range(20):
        mod.entry(out)
        assert len(set(out.tolist())) <= 2
        seen |= set(out.tolist())
    assert 1 <= len(seen) <= 3  # the caller and at most one worker (respawned once, maybe)


def _thread_probe_library() -> str:
    return str(ember.build([_thread_probe()]).lib_path)


@pytest.mark.parametrize(
    "env, most",
    [({"EMBER_NUM_THREADS": "1"}, 1), ({"OMP_NUM_THREADS": "1"}, 1), ({"OMP_NUM_THREADS": "2"}, 2)],
)
def test_thread_count_from_the_environment_and_fork(env, most):
    """A library loaded without ember's loader (as the C runner does) takes its thread
    count from EMBER_NUM_THREADS / OMP_NUM_THREADS; a forked child runs its loops."""
    path = _thread_probe_library()
    clean = {
        k: v for k, v in os.environ.items() if k not in ("EMBER_NUM_THREADS", "OMP_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), path],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    counts = [int(c) for c in lines[:5]]
    assert all(1 <= c <= most for c in counts), counts
    assert lines[-2:] == ["child", "0"]
