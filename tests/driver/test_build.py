"""Building and loading kernels: cache, compile errors, argument checks, targets."""

import numpy as np
import pytest

import ember
from ember.driver import toolchain
from ember.errors import BuildError, EmberRuntimeError, TargetError
from ember.target import Target
from ember.tir import BufferStore, For, ForKind, PrimFunc, decl_buffer
from ember.tir.expr import BufferLoad, Call, Var, const


def _add(name="add", n=64, m=64, bias=1.0):
    A = decl_buffer((n, m), "float32", "A")
    B = decl_buffer((n, m), "float32", "B")
    C = decl_buffer((n, m), "float32", "C")
    i, j = Var("i"), Var("j")
    body = For(
        i,
        const(0),
        const(n),
        ForKind.SERIAL,
        For(
            j,
            const(0),
            const(m),
            ForKind.SERIAL,
            BufferStore(C, BufferLoad(A, (i, j)) + BufferLoad(B, (i, j)) + bias, (i, j)),
        ),
    )
    return PrimFunc(name, (A, B, C), body)


def test_second_build_hits_the_cache():
    bias = float(np.random.default_rng().integers(1, 10**6))  # a kernel no earlier run has built
    compiles = toolchain.stats["compiles"]
    m1 = ember.build([_add(bias=bias)])
    m2 = ember.build([_add(bias=bias)])
    assert (m1.cache_hit, m2.cache_hit) == (False, True)
    assert toolchain.stats["compiles"] == compiles + 1
    a, b = np.ones((64, 64), "float32"), np.full((64, 64), 2, "float32")
    c = np.zeros_like(a)
    m2.entry(a, b, c)
    np.testing.assert_allclose(c, 3 + bias)
    t = m2.time_evaluator("add", number=3, repeat=3)(a, b, c)
    assert 0 < t < 1


def test_compile_error_has_stderr_and_source_path():
    A = decl_buffer((4,), "float32", "A")
    f = PrimFunc(
        "bad", (A,), BufferStore(A, Call("float32", "no_such_function_xyz", ()), (const(0),))
    )
    f.attrs["c_prelude"] = ["this is not C;"]
    with pytest.raises(BuildError, match=r"(?s)the C compiler failed.*error.*kept at .*\.c"):
        ember.build([f])


def test_argument_checks():
    mod = ember.build([_add()])
    a = np.zeros((64, 64), "float32")
    b = np.zeros((64, 64), "float32")
    with pytest.raises(
        EmberRuntimeError,
        match=r"argument 2 'C': expected shape \(64, 64\) float32, got \(64, 32\) float32",
    ):
        mod["add"](a, b, np.zeros((64, 32), "float32"))
    with pytest.raises(
        EmberRuntimeError,
        match=r"argument 1 'B': expected shape \(64, 64\) float32, got \(64, 64\) float64",
    ):
        mod["add"](a, b.astype("float64"), np.zeros_like(a))
    with pytest.raises(EmberRuntimeError, match="takes 3 array"):
        mod["add"](a, b)
    with pytest.raises(EmberRuntimeError, match="not C-contiguous"):
        mod["add"](a, np.zeros((64, 64), "float32").T, np.zeros_like(a))
    ro = np.zeros_like(a)
    ro.flags.writeable = False
    with pytest.raises(EmberRuntimeError, match="read-only"):
        mod["add"](a, b, ro)
    with pytest.raises(EmberRuntimeError, match="overlap"):
        mod["add"](a, b, a)
    with pytest.raises(EmberRuntimeError, match="expected a numpy array"):
        mod["add"](a, b, [1, 2])
    with pytest.raises(EmberRuntimeError, match="no kernel 'sub'"):
        mod["sub"]


def test_targets():
    assert Target.parse("host").cflags == ("-march=native",)
    assert Target.parse("llvm -mcpu=skylake").cflags == ("-march=skylake",)
    assert Target.parse("c").cflags == ()
    with pytest.raises(TargetError, match="unknown target 'tpu'"):
        Target.parse("tpu")
    with pytest.raises(TargetError, match="unknown target option '-foo=1'"):
        Target.parse("host -foo=1")
    with pytest.raises(TargetError, match="cannot generate code for cuda targets yet"):
        ember.build([_add()], target="cuda -arch=sm_90")


def test_separately_generated_kernels_link_into_one_library(tmp_path):
    from ember.codegen.c import codegen_c
    from ember.driver.module import Module

    f1, f2 = _add("add_one", bias=1.0), _add("add_two", bias=2.0)
    from ember.tir.passes import lower_pipeline

    f1, f2 = lower_pipeline(f1), lower_pipeline(f2)
    second = tmp_path / "second.c"
    second.write_text(codegen_c([f2]).get_source())
    first = codegen_c([f1]).get_source()
    path, _ = toolchain.compile_shared(first, Target.parse("host"), extra_sources=(str(second),))
    mod = Module(path, [f1, f2], first, cache_hit=False)
    a, b = np.ones((64, 64), "float32"), np.ones((64, 64), "float32")
    for name, want in (("add_one", 3.0), ("add_two", 4.0)):
        c = np.zeros_like(a)
        mod[name](a, b, c)
        np.testing.assert_allclose(c, want)
