"""Loop IR passes: before/after text and evaluator equality."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.tir import AttrStmt, BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer, seq
from ember.tir.evaluator import evaluate
from ember.tir.expr import BufferLoad, Call, FloorMod, Var, const
from ember.tir.passes import (
    flatten_storage,
    lower_pipeline,
    partition_loops,
    remove_no_op,
    simplify_func,
    unroll_loops,
    vectorize_loops,
)
from ember.tir.stmt import Allocate, Evaluate


def _same_result(f, g, *shapes_dtypes):
    rng = np.random.default_rng()
    ins = [rng.standard_normal(s).astype(d) for s, d in shapes_dtypes]
    a = [x.copy() for x in ins]
    b = [x.copy() for x in ins]
    evaluate(f, *a)
    evaluate(g, *b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def _elementwise(n=4, m=12, vec_extent=None):
    A = decl_buffer((n, m), "float32", "A")
    B = decl_buffer((n, m), "float32", "B")
    i, jo, ji = Var("i"), Var("j.outer"), Var("j.inner")
    factor = vec_extent or m
    j = jo * factor + ji
    store = BufferStore(B, Call("float32", "exp", (BufferLoad(A, (i, j)),)) + 1.0, (i, j))
    if m % factor:
        store = IfThenElse(j < m, store)
    body = For(
        i,
        const(0),
        const(n),
        ForKind.PARALLEL,
        For(
            jo,
            const(0),
            const(-(-m // factor)),
            ForKind.SERIAL,
            For(ji, const(0), const(factor), ForKind.VECTORIZED, store),
        ),
    )
    return PrimFunc("ew", (A, B), body)


def test_flatten_storage_text_and_values():
    f = _elementwise()
    g = flatten_storage(f)
    assert "B[i, j.outer*12 + j.inner]" in str(f)
    assert "B[i*12 + (j.outer*12 + j.inner)] = exp(A[i*12 + (j.outer*12 + j.inner)]) + 1.0f" in str(
        g
    )
    assert g.params == f.params  # callers keep the N-D view
    _same_result(f, g, ((4, 12), "float32"), ((4, 12), "float32"))


def test_flatten_strided_buffer_with_offset():
    from ember.tir import Buffer

    A = decl_buffer((3, 4), "float32", "A")
    T = Buffer(
        "T", (3, 4), "float32", strides=(const(6), const(1)), elem_offset=const(2), scope="local"
    )
    B = decl_buffer((3, 4), "float32", "B")
    i, j = Var("i"), Var("j")
    body = Allocate(
        T,
        seq(
            For(
                i,
                const(0),
                const(3),
                ForKind.SERIAL,
                For(
                    j,
                    const(0),
                    const(4),
                    ForKind.SERIAL,
                    BufferStore(T, BufferLoad(A, (i, j)) * 2.0, (i, j)),
                ),
            ),
            For(
                i,
                const(0),
                const(3),
                ForKind.SERIAL,
                For(
                    j,
                    const(0),
                    const(4),
                    ForKind.SERIAL,
                    BufferStore(B, BufferLoad(T, (i, j)), (i, j)),
                ),
            ),
        ),
    )
    f = PrimFunc("strided", (A, B), body)
    g = flatten_storage(f)
    assert "T[i*6 + j + 2]" in str(g)
    assert "T = allocate(float32[18], 'local')" in str(g)
    _same_result(f, g, ((3, 4), "float32"), ((3, 4), "float32"))


def test_vectorize_dividing_extent():
    f = lower_pipeline(_elementwise(vec_extent=4))
    text = str(f)
    assert (
        "B[ramp(i*12 + j.outer*4, 1, 4)] = "
        "exp(A[ramp(i*12 + j.outer*4, 1, 4)]) + broadcast(1.0f, 4)" in text
    )
    assert "vectorize_fallback" not in f.attrs
    _same_result(_elementwise(vec_extent=4), f, ((4, 12), "float32"), ((4, 12), "float32"))


def test_vectorize_tail_guard_splits_full_and_partial_tiles():
    # 12 % 8 != 0: a tail guard on the lane variable. On its own, vectorize_loops keeps full
    # tiles as vectors behind a whole-tile test; in the pipeline partition_loops first peels
    # the tail, which becomes a 4-lane vector.
    f = vectorize_loops(simplify_func(flatten_storage(_elementwise(vec_extent=8))))
    assert "vectorize_fallback" not in f.attrs
    assert str(f).splitlines()[3:7] == [
        "      if j.outer*8 < 12 && j.outer*8 + 7 < 12:",
        "        B[ramp(i*12 + j.outer*8, 1, 8)] = "
        "exp(A[ramp(i*12 + j.outer*8, 1, 8)]) + broadcast(1.0f, 8)",
        "      else:",
        "        for j.inner in range(0, 8):",
    ]
    g = lower_pipeline(_elementwise(vec_extent=8))
    assert str(g).splitlines()[1:] == [
        "  for i in parallel(0, 4):",
        "    B[ramp(i*12, 1, 8)] = exp(A[ramp(i*12, 1, 8)]) + broadcast(1.0f, 8)",
        "    B[ramp(i*12 + 8, 1, 4)] = exp(A[ramp(i*12 + 8, 1, 4)]) + broadcast(1.0f, 4)",
    ]
    _same_result(_elementwise(vec_extent=8), f, ((4, 12), "float32"), ((4, 12), "float32"))
    _same_result(_elementwise(vec_extent=8), g, ((4, 12), "float32"), ((4, 12), "float32"))


def test_vectorize_falls_back_on_lane_guard_and_carried_value():
    A = decl_buffer((8,), "float32", "A")
    k = Var("k")
    even = PrimFunc(
        "even",
        (A,),
        For(
            k,
            const(0),
            const(8),
            ForKind.VECTORIZED,
            IfThenElse(FloorMod(k, const(2)).equal(0), BufferStore(A, const(1.0), (k,))),
        ),
    )
    g = lower_pipeline(even)
    assert g.attrs["vectorize_fallback"] == [("k", "a guard depends on the loop variable")]
    _same_result(even, g, ((8,), "float32"))

    A = decl_buffer((8,), "float32", "A")
    S = decl_buffer((1,), "float32", "S")
    k = Var("k")
    red = PrimFunc(
        "sum",
        (A, S),
        seq(
            BufferStore(S, const(0.0), (const(0),)),
            For(
                k,
                const(0),
                const(8),
                ForKind.VECTORIZED,
                BufferStore(S, BufferLoad(S, (const(0),)) + BufferLoad(A, (k,)), (const(0),)),
            ),
        ),
    )
    g = lower_pipeline(red)
    assert "carried" in g.attrs["vectorize_fallback"][0][1]
    _same_result(red, g, ((8,), "float32"), ((1,), "float32"))


def test_vectorize_refuses_cross_lane_dependence():
    A = decl_buffer((9,), "float32", "A")
    k = Var("k")
    f = PrimFunc(
        "shift",
        (A,),
        For(
            k,
            const(0),
            const(8),
            ForKind.VECTORIZED,
            BufferStore(A, BufferLoad(A, (k,)) + 1.0, (k + 1,)),
        ),
    )
    g = vectorize_loops(f)
    assert "read at a location another lane may write" in g.attrs["vectorize_fallback"][0][1]
    _same_result(f, g, ((9,), "float32"))


def test_unroll_and_pragma():
    A = decl_buffer((4,), "float32", "A")
    k, n = Var("k"), Var("n")
    f = PrimFunc(
        "u",
        (A,),
        For(k, const(0), const(3), ForKind.UNROLLED, BufferStore(A, const(1.0) + 1.0, (k,))),
    )
    g = lower_pipeline(f)
    assert str(g).splitlines()[1:] == ["  A[0] = 2.0f", "  A[1] = 2.0f", "  A[2] = 2.0f"]
    # A symbolic extent cannot be copied: it stays a loop with a hint for the C compiler.
    h = unroll_loops(
        PrimFunc("v", (A,), For(k, const(0), n, ForKind.UNROLLED, BufferStore(A, const(1.0), (k,))))
    )
    assert "for k in range(0, n):  # pragma_unroll=0" in str(h)


def test_remove_no_op():
    A = decl_buffer((4,), "float32", "A")
    T = decl_buffer((4,), "float32", "T")
    k = Var("k")
    body = seq(
        For(k, const(0), const(4), ForKind.SERIAL, Evaluate(const(0))),
        Allocate(T, BufferStore(A, BufferLoad(A, (k * 0,)), (k * 0,))),
        AttrStmt(A, "pragma_x", 1, BufferStore(A, const(2.0), (const(1),))),
    )
    g = remove_no_op(PrimFunc("n", (A,), body))
    assert str(g).splitlines()[1:] == ["  attr [A] pragma_x = 1", "    A[1] = 2.0f"]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 30),
    factor=st.integers(1, 12),
    kind=st.sampled_from([ForKind.VECTORIZED, ForKind.UNROLLED, ForKind.PARALLEL]),
    shift=st.integers(0, 3),
    reduce=st.booleans(),
)
def test_pipeline_keeps_results_on_split_loops(n, factor, kind, shift, reduce):
    """Random split (dividing or not) + marked inner loop: the lowered IR computes the same."""
    A = decl_buffer((n + shift,), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    io, ii = Var("io"), Var("ii")
    idx = io * factor + ii
    value = BufferLoad(A, (idx + shift,)) * 2.0
    if reduce:  # B[idx] accumulates a second read: a load of the stored buffer at the same place
        value = value + BufferLoad(B, (idx,))
    body = For(
        io,
        const(0),
        const(-(-n // factor)),
        ForKind.SERIAL,
        For(ii, const(0), const(factor), kind, IfThenElse(idx < n, BufferStore(B, value, (idx,)))),
    )
    f = PrimFunc("split", (A, B), body)
    _same_result(f, lower_pipeline(f), ((n + shift,), "float32"), ((n,), "float32"))


def test_partition_loops_peels_the_tail_and_shrinks_it():
    f = flatten_storage(_elementwise(n=2, m=10, vec_extent=4))  # 10 = 4 + 4 + 2
    g = partition_loops(f)
    assert str(g).splitlines()[1:] == [
        "  for i in parallel(0, 2):",
        "    for j.outer in range(0, 2):",
        "      for j.inner in vectorized(0, 4):",
        "        B[i*10 + j.outer*4 + j.inner] = exp(A[i*10 + j.outer*4 + j.inner]) + 1.0f",
        "    for j.inner in vectorized(0, 2):",
        "      B[i*10 + j.inner + 8] = exp(A[i*10 + j.inner + 8]) + 1.0f",
    ]
    _same_result(f, g, ((2, 10), "float32"), ((2, 10), "float32"))
