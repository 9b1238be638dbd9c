"""C code generation + native build of hand-built loop IR, checked against numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from ember.codegen.c import codegen_c
from ember.errors import BuildError
from ember.tir import AttrStmt, BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer, seq
from ember.tir.expr import BufferLoad, Call, Cast, FloorDiv, FloorMod, SizeVar, Var, const, max_
from ember.tir.passes import lower_pipeline
from ember.tir.stmt import Allocate, Evaluate

rng = np.random.default_rng()


def _map(name, n, fn, dtype="float32", out_dtype=None, kind=ForKind.SERIAL, factor=None):
    """B[i] = fn(A[i]) over n elements, optionally split by ``factor`` with a marked inner loop."""
    A = decl_buffer((n,), dtype, "A")
    B = decl_buffer((n,), out_dtype or dtype, "B")
    if factor is None:
        i = Var("i")
        body = For(i, const(0), const(n), kind, BufferStore(B, fn(BufferLoad(A, (i,))), (i,)))
    else:
        io, ii = Var("i.outer"), Var("i.inner")
        idx = io * factor + ii
        store = BufferStore(B, fn(BufferLoad(A, (idx,))), (idx,))
        if n % factor:
            store = IfThenElse(idx < n, store)
        body = For(
            io,
            const(0),
            const(-(-n // factor)),
            ForKind.SERIAL,
            For(ii, const(0), const(factor), kind, store),
        )
    return PrimFunc(name, (A, B), body)


def _run(func, *inputs, out_shape, out_dtype):
    mod = ember.build([func])
    out = np.zeros(out_shape, out_dtype)
    mod[func.name](*inputs, out)
    return out, mod


@pytest.mark.parametrize("n,factor", [(64, 8), (67, 8), (12, 12)])
def test_vectorized_loop_dividing_and_not(n, factor):
    f = _map("affine", n, lambda x: x * 2.5 + 1.0, kind=ForKind.VECTORIZED, factor=factor)
    a = rng.standard_normal(n).astype("float32")
    out, mod = _run(f, a, out_shape=(n,), out_dtype="float32")
    np.testing.assert_allclose(out, a * 2.5 + 1.0, rtol=1e-5, atol=1e-6)  # FMA-contracted
    if n % factor == 0:
        assert "ember_store_float32x" in mod.get_source()


def test_parallel_unrolled_intrinsics_select():
    n = 256
    f = _map(
        "act",
        n,
        lambda x: (
            max_(Call("float32", "tanh", (x,)), Call("float32", "exp", (x,)) * 0.0)
            + Call("float32", "sigmoid", (x,))
        ),
        kind=ForKind.PARALLEL,
    )
    a = rng.standard_normal(n).astype("float32")
    out, mod = _run(f, a, out_shape=(n,), out_dtype="float32")
    np.testing.assert_allclose(
        out, np.maximum(np.tanh(a), 0) + 1 / (1 + np.exp(-a)), rtol=1e-5, atol=1e-6
    )
    assert "ember_parallel_for(" in mod.get_source()
    g = _map("unr", 16, lambda x: Call("float32", "sqrt", (x,)), kind=ForKind.UNROLLED, factor=4)
    a = rng.random(16).astype("float32")
    out, mod = _run(g, a, out_shape=(16,), out_dtype="float32")
    np.testing.assert_allclose(out, np.sqrt(a), rtol=1e-6)
    assert "for (int32_t i_inner" not in mod.get_source()


def test_vector_intrinsic_and_gather():
    n = 32
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    io, ii = Var("io"), Var("ii")
    idx = io * 8 + ii
    body = For(
        io,
        const(0),
        const(4),
        ForKind.SERIAL,
        For(
            ii,
            const(0),
            const(8),
            ForKind.VECTORIZED,
            BufferStore(
                B, Call("float32", "exp", (BufferLoad(A, (FloorMod(idx * 5, const(n)),)),)), (idx,)
            ),
        ),
    )
    f = PrimFunc("gather_exp", (A, B), body)
    assert "vectorize_fallback" not in lower_pipeline(f).attrs
    a = rng.standard_normal(n).astype("float32")
    out, _ = _run(f, a, out_shape=(n,), out_dtype="float32")
    np.testing.assert_allclose(out, np.exp(a[(np.arange(n) * 5) % n]), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_integer_ops_and_popcount(dtype):
    n = 40
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -1000), min(info.max, 1000), n).astype(dtype)
    f = _map("pc", n, lambda x: Call(dtype, "popcount", (x,)), dtype=dtype)
    out, _ = _run(f, a, out_shape=(n,), out_dtype=dtype)
    bits = np.dtype(dtype).itemsize * 8
    want = np.array([bin(int(v) & (2**bits - 1)).count("1") for v in a], dtype)
    np.testing.assert_array_equal(out, want)
    # floor division/modulo on negatives, C truncating division, vectorized
    g = _map(
        "divs",
        n,
        lambda x: FloorDiv(x, const(3, dtype)) + FloorMod(x, const(7, dtype)) + x / const(2, dtype),
        dtype=dtype,
        kind=ForKind.VECTORIZED,
        factor=8,
    )
    out, _ = _run(g, a, out_shape=(n,), out_dtype=dtype)
    with np.errstate(over="ignore"):
        want = (a // 3 + np.mod(a, 7) + np.trunc(a / 2).astype(dtype)).astype(dtype)
    np.testing.assert_array_equal(out, want)


def test_float16_and_cast():
    n = 24
    f = _map(
        "half",
        n,
        lambda x: Cast("float16", Cast("float32", x) * 2.0),
        dtype="float16",
        kind=ForKind.VECTORIZED,
        factor=8,
    )
    a = rng.standard_normal(n).astype("float16")
    out, _ = _run(f, a, out_shape=(n,), out_dtype="float16")
    np.testing.assert_allclose(out, (a.astype("float32") * 2).astype("float16"), rtol=1e-3)
    g = _map(
        "f2i",
        n,
        lambda x: Cast("int32", x * 10.0),
        out_dtype="int32",
        kind=ForKind.VECTORIZED,
        factor=8,
    )
    a = rng.standard_normal(n).astype("float32")
    out, _ = _run(g, a, out_shape=(n,), out_dtype="int32")
    np.testing.assert_array_equal(out, np.trunc(a * np.float32(10)).astype("int32"))


@pytest.mark.parametrize("size", [16, 20000])  # stack scratch, heap scratch
def test_allocate_scratch(size):
    A = decl_buffer((size,), "float32", "A")
    B = decl_buffer((size,), "float32", "B")
    T = decl_buffer((size,), "float32", "T", scope="global")
    i = Var("i")
    body = Allocate(
        T,
        seq(
            For(
                i,
                const(0),
                const(size),
                ForKind.SERIAL,
                BufferStore(T, BufferLoad(A, (i,)) + 1.0, (i,)),
            ),
            For(
                i,
                const(0),
                const(size),
                ForKind.SERIAL,
                BufferStore(B, BufferLoad(T, (size - 1 - i,)), (i,)),
            ),
        ),
    )
    a = rng.standard_normal(size).astype("float32")
    out, mod = _run(
        PrimFunc(f"scratch{size}", (A, B), body), a, out_shape=(size,), out_dtype="float32"
    )
    np.testing.assert_allclose(out, a[::-1] + 1, rtol=1e-6)
    assert ("ember_alloc" in mod.get_source()) == (size * 4 > 32 * 1024)


def test_nested_parallel_and_pragma_unroll_and_symbolic_shape():
    n = SizeVar("n")
    A = decl_buffer((n, 8), "float32", "A")
    B = decl_buffer((n, 8), "float32", "B")
    i, j = Var("i"), Var("j")
    body = For(
        i,
        const(0),
        n,
        ForKind.PARALLEL,
        AttrStmt(
            None,
            "pragma_unroll",
            4,
            For(
                j,
                const(0),
                const(8),
                ForKind.PARALLEL,
                BufferStore(B, BufferLoad(A, (i, j)) * 3.0, (i, j)),
            ),
        ),
    )
    f = PrimFunc("sym", (A, B), body)
    mod = ember.build([f])
    src = mod.get_source()
    assert src.count(", &_env);") == 1 and "#pragma GCC unroll 4" in src  # one pool call
    for rows in (3, 5):
        a = rng.standard_normal((rows, 8)).astype("float32")
        out = np.zeros_like(a)
        mod["sym"](a, out)
        np.testing.assert_allclose(out, a * 3, rtol=1e-6)


def test_source_is_readable_and_errors():
    f = lower_pipeline(_map("scale", 64, lambda x: x * 2.0, kind=ForKind.VECTORIZED, factor=8))
    src = codegen_c([f]).get_source()
    assert src.startswith("/* Generated by ember")
    assert "typedef float float32x8 __attribute__((vector_size(32)));" in src
    assert "float* restrict A" in src and "for (int32_t i_outer = 0; i_outer < 8; ++i_outer)" in src
    with pytest.raises(BuildError, match="accessed with 2 indices|stored with 2 indices"):
        A = decl_buffer((2, 2), "float32", "A")
        codegen_c([PrimFunc("nd", (A,), BufferStore(A, const(0.0), (const(0), const(0))))])
    with pytest.raises(BuildError, match="two functions share the name"):
        codegen_c([f, f])
    with pytest.raises(BuildError, match="kernel name 'exp' clashes with a C library"):
        codegen_c([_map("exp", 4, lambda x: x)])


def test_extern_call_with_address_of_and_prelude():
    # A tensorize-style intrinsic: a C helper that processes 4 elements through pointers.
    n = 16
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    io = Var("io")
    call = Call(
        "int32",
        "add_one_x4",
        (
            Call("handle", "tir.address_of", (BufferLoad(A, (io * 4,)),)),
            Call("handle", "tir.address_of", (BufferLoad(B, (io * 4,)),)),
        ),
    )
    f = PrimFunc("ext", (A, B), For(io, const(0), const(n // 4), ForKind.SERIAL, Evaluate(call)))
    f.attrs["c_prelude"] = [
        "static int32_t add_one_x4(const float* x, float* y) {\n"
        "  for (int k = 0; k < 4; ++k) y[k] = x[k] + 1.0f;\n  return 0;\n}"
    ]
    a = rng.standard_normal(n).astype("float32")
    out, mod = _run(f, a, out_shape=(n,), out_dtype="float32")
    np.testing.assert_allclose(out, a + 1)
    assert "add_one_x4(&A[io * 4], &B[io * 4]);" in mod.get_source()


def test_backend_errors():
    A = decl_buffer((4,), "float32", "A")
    t = Var("t")
    gpu = PrimFunc(
        "gpu",
        (A,),
        For(
            t,
            const(0),
            const(4),
            ForKind.THREAD_BINDING,
            BufferStore(A, const(0.0), (t,)),
            "threadIdx.x",
        ),
    )
    with pytest.raises(BuildError, match="bound to GPU thread axis 'threadIdx.x'"):
        codegen_c([gpu])
    free = PrimFunc("free_var", (A,), BufferStore(A, const(0.0), (Var("q"),)))
    with pytest.raises(BuildError, match="variable 'q' is used outside the scope"):
        codegen_c([free])


def test_vector_compare_into_bool_and_min_on_ints():
    n = 32
    f = _map("pos", n, lambda x: x > 0.0, out_dtype="bool", kind=ForKind.VECTORIZED, factor=8)
    a = rng.standard_normal(n).astype("float32")
    out, _ = _run(f, a, out_shape=(n,), out_dtype="bool")
    np.testing.assert_array_equal(out, a > 0)
    from ember.tir.expr import min_

    g = _map(
        "clip",
        n,
        lambda x: min_(max_(x, const(-5)), const(5)),
        dtype="int32",
        kind=ForKind.VECTORIZED,
        factor=16,
    )
    a = rng.integers(-20, 20, n).astype("int32")
    out, _ = _run(g, a, out_shape=(n,), out_dtype="int32")
    np.testing.assert_array_equal(out, np.clip(a, -5, 5))


def test_let_assert_and_unsigned():
    from ember.errors import EmberRuntimeError
    from ember.tir.expr import Let
    from ember.tir.stmt import AssertStmt, LetStmt

    n = 16
    A = decl_buffer((n,), "uint32", "A")
    B = decl_buffer((n,), "uint32", "B")
    i, t, u = Var("i"), Var("t", "uint32"), Var("u", "uint32")
    x = BufferLoad(A, (i,))
    body = For(
        i,
        const(0),
        const(n),
        ForKind.SERIAL,
        LetStmt(
            t,
            x * const(3, "uint32"),
            AssertStmt(
                x < const(1000, "uint32"),
                "A must be below 1000",
                BufferStore(
                    B, Let(u, t + const(1, "uint32"), u * u) ^ (x >> const(1, "uint32")), (i,)
                ),
            ),
        ),
    )
    mod = ember.build([PrimFunc("lets", (A, B), body)])
    a = rng.integers(0, 1000, n).astype("uint32")
    out = np.zeros(n, "uint32")
    mod["lets"](a, out)
    np.testing.assert_array_equal(out, ((a * 3 + 1) * (a * 3 + 1)) ^ (a >> 1))
    a[3] = 5000
    with pytest.raises(EmberRuntimeError, match="kernel 'lets' failed"):
        mod["lets"](a, out)


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 40),
    factor=st.sampled_from([1, 3, 4, 8, 16]),
    kind=st.sampled_from([ForKind.VECTORIZED, ForKind.UNROLLED, ForKind.PARALLEL]),
    dtype=st.sampled_from(["float32", "int32", "int8"]),
)
def test_compiled_split_loops_match_the_evaluator(n, factor, kind, dtype):
    from ember.tir.evaluator import evaluate

    f = _map(
        "random_split",
        n,
        lambda x: max_(x * 3, x + 1) - FloorDiv(x, const(2, dtype)),
        dtype=dtype,
        kind=kind,
        factor=factor,
    )
    if dtype == "float32":
        a = rng.standard_normal(n).astype(dtype)
    else:
        a = rng.integers(-40, 40, n).astype(dtype)
    want = np.zeros(n, dtype)
    evaluate(f, a, want)
    out, _ = _run(f, a, out_shape=(n,), out_dtype=dtype)
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_float_floor_division_and_bool_casts_parenthesize_their_operands():
    # floorf(a / b) and (x != 0) once dropped the parentheses compound operands need.
    n = 8
    A = decl_buffer((n,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    i = Var("i")
    x = BufferLoad(A, (i,))
    f = PrimFunc(
        "fdiv",
        (A, B),
        For(
            i, const(0), const(n), ForKind.SERIAL, BufferStore(B, FloorDiv(x + 7.0, x + 2.0), (i,))
        ),
    )
    a = np.arange(n, dtype="float32")
    out, mod = _run(f, a, out_shape=(n,), out_dtype="float32")
    np.testing.assert_array_equal(out, np.floor((a + 7) / (a + 2)))
    assert "floorf((A[i] + 7.0f) / (A[i] + 2.0f))" in mod.get_source()
    from ember.tir.expr import BitAnd

    g = _map(
        "band", n, lambda v: Cast("bool", BitAnd(v, const(2))), dtype="int32", out_dtype="bool"
    )
    a = np.arange(n, dtype="int32")
    out, mod = _run(g, a, out_shape=(n,), out_dtype="bool")
    np.testing.assert_array_equal(out, (a & 2) != 0)
    assert "((A[i] & 2) != 0)" in mod.get_source()
