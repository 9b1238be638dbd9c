"""vectorize_loops on loops with loops inside: what runs on vectors, what is scalarized
(run lane by lane), and what keeps the whole loop serial; evaluator equality and C."""

import numpy as np
import pytest

import ember
from ember.tir import BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer, seq
from ember.tir.evaluator import evaluate
from ember.tir.expr import BufferLoad, FloorMod, Select, Var, const
from ember.tir.passes import lower_pipeline, vectorize_loops


def _same_result(f, g, *shapes):
    rng = np.random.default_rng()
    ins = [rng.standard_normal(s).astype("float32") for s in shapes]
    a = [x.copy() for x in ins]
    b = [x.copy() for x in ins]
    evaluate(f, *a)
    evaluate(g, *b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    return a


def _loop(var, extent, body, kind=ForKind.SERIAL, lo=0):
    return For(var, const(lo), const(extent) if isinstance(extent, int) else extent, kind, body)


def _triangle():
    """``for j (vectorized 8): for k in (0, j + 1): B[j] += A[j*8 + k]``: the inner loop's
    extent depends on the lane."""
    A, B = decl_buffer((64,), "float32", "A"), decl_buffer((8,), "float32", "B")
    j, k = Var("j"), Var("k")
    update = BufferStore(B, BufferLoad(B, (j,)) + BufferLoad(A, (j * 8 + k,)), (j,))
    body = _loop(j, 8, _loop(k, j + 1, update), ForKind.VECTORIZED)
    return PrimFunc("triangle", (A, B), body)


def test_inner_loop_with_lane_dependent_bounds_is_scalarized():
    # B[i, j] = sum(A[i, j*8 : j*8 + j + 1]): the zeroing runs on vectors, the triangle's
    # k loop (extent j + 1) lane by lane, inside the same i loop.
    A, B = decl_buffer((8, 64), "float32", "A"), decl_buffer((8, 8), "float32", "B")
    i, j, k = Var("i"), Var("j"), Var("k")
    zero = BufferStore(B, const(0.0), (i, j))
    tri = BufferStore(B, BufferLoad(B, (i, j)) + BufferLoad(A, (i, j * 8 + k)), (i, j))
    body = _loop(j, 8, _loop(i, 8, seq(zero, _loop(k, j + 1, tri))), ForKind.VECTORIZED)
    f = PrimFunc("tri", (A, B), body)
    g = lower_pipeline(f)
    assert "vectorize_fallback" not in g.attrs
    text = str(g)
    assert "B[ramp(i*8, 1, 8)] = broadcast(0.0f, 8)" in text
    assert "for j.s in range(0, 8):" in text and "for k in range(0, j.s + 1):" in text
    a = np.random.default_rng().standard_normal((8, 64)).astype("float32")
    want = np.array([[a[r, c * 8 : c * 9 + 1].sum() for c in range(8)] for r in range(8)])
    for func in (f, g):
        got = np.zeros((8, 8), "float32")
        evaluate(func, a, got)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    got = np.zeros((8, 8), "float32")
    ember.build(g, target="host")(a, got)  # the lane loop compiles
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_the_whole_body_scalarized_is_the_serial_loop():
    g = lower_pipeline(_triangle())
    assert g.attrs["vectorize_fallback"] == [
        ("j", "the bounds of inner loop 'k' depend on the loop variable")
    ]
    _same_result(_triangle(), g, (64,), (8,))


def test_non_monotone_guard_inside_an_inner_loop_is_scalarized():
    A, B = decl_buffer((4, 8), "float32", "A"), decl_buffer((4, 8), "float32", "B")
    i, j = Var("i"), Var("j")
    even = IfThenElse(
        FloorMod(i + j, const(2)).equal(0),
        BufferStore(B, BufferLoad(A, (i, j)) * 2.0, (i, j)),
    )
    copy = BufferStore(B, BufferLoad(A, (i, j)), (i, j))
    f = PrimFunc("even", (A, B), _loop(j, 8, _loop(i, 4, seq(copy, even)), ForKind.VECTORIZED))
    g = lower_pipeline(f)
    assert "vectorize_fallback" not in g.attrs
    text = str(g)
    assert "B[ramp(i*8, 1, 8)] = A[ramp(i*8, 1, 8)]" in text
    assert "for j.s in range(0, 8):" in text
    _same_result(f, g, (4, 8), (4, 8))


def test_lanes_meeting_across_inner_iterations_keep_the_loop_serial():
    # Lane j writes B[j + k]: lane 0 at k=1 and lane 1 at k=0 write the same element, in
    # the opposite order on vectors.
    A, B = decl_buffer((8,), "float32", "A"), decl_buffer((12,), "float32", "B")
    j, k = Var("j"), Var("k")
    store = BufferStore(B, BufferLoad(A, (j,)) + const(1.0), (j + k,))
    f = PrimFunc("shift", (A, B), _loop(j, 8, _loop(k, 4, store), ForKind.VECTORIZED))
    g = vectorize_loops(f)
    assert g.attrs["vectorize_fallback"] == [
        ("j", "'B' is written at a location another lane may write")
    ]
    _same_result(f, g, (8,), (12,))


def test_lanes_kept_apart_by_the_inner_loop_stride_vectorize():
    # Lane j writes B[k*8 + j]: the inner loop moves by whole rows, lanes never meet.
    A, B = decl_buffer((8,), "float32", "A"), decl_buffer((32,), "float32", "B")
    j, k = Var("j"), Var("k")
    store = BufferStore(B, BufferLoad(A, (j,)) + BufferLoad(B, (k * 8 + j,)), (k * 8 + j,))
    f = PrimFunc("rows", (A, B), _loop(j, 8, _loop(k, 4, store), ForKind.VECTORIZED))
    g = vectorize_loops(f)
    assert "vectorize_fallback" not in g.attrs
    _same_result(f, g, (8,), (32,))


@pytest.mark.parametrize("kind", [ForKind.PARALLEL, ForKind.THREAD_BINDING])
def test_inner_loop_that_lanes_cannot_run(kind):
    A = decl_buffer((8, 4), "float32", "A")
    j, k = Var("j"), Var("k")
    store = BufferStore(A, const(1.0), (j, k))
    f = PrimFunc("p", (A,), _loop(j, 8, _loop(k, 4, store, kind), ForKind.VECTORIZED))
    g = vectorize_loops(f)
    assert g.attrs["vectorize_fallback"] == [
        ("j", f"the inner loop 'k' is {kind.value}, which vector lanes cannot run")
    ]


def test_a_body_with_nothing_left_on_vectors_stays_serial():
    # Every statement would run lane by lane: vectorizing would only interchange loops.
    A, B = decl_buffer((4, 8), "float32", "A"), decl_buffer((4, 8), "float32", "B")
    i, j = Var("i"), Var("j")
    even = IfThenElse(
        FloorMod(i + j, const(2)).equal(0), BufferStore(B, BufferLoad(A, (i, j)), (i, j))
    )
    f = PrimFunc("even", (A, B), _loop(j, 8, _loop(i, 4, even), ForKind.VECTORIZED))
    g = vectorize_loops(f)
    assert g.attrs["vectorize_fallback"] == [("j", "no statement of the body can run on vectors")]
    _same_result(f, g, (4, 8), (4, 8))


def test_select_on_the_lane_between_lane_invariant_values():
    # Padding at a vector tile: the condition is per lane, both branches are the same for
    # all lanes. It is a vector blend of two broadcasts (it used to keep the loop serial
    # with a "lane count mismatch").
    A, B = decl_buffer((4,), "float32", "A"), decl_buffer((2, 4), "float32", "B")
    i, j = Var("i"), Var("j")
    value = Select(j >= 1, BufferLoad(A, (i,)), const(0.0))
    f = PrimFunc(
        "pad", (A, B), _loop(i, 2, _loop(j, 4, BufferStore(B, value, (i, j)), ForKind.VECTORIZED))
    )
    g = lower_pipeline(f)
    assert "vectorize_fallback" not in g.attrs
    assert "select(ramp(0, 1, 4) >= broadcast(1, 4), broadcast(A[i], 4)" in str(g)
    _same_result(f, g, (4,), (2, 4))
