"""Every tensor-expression primitive and schedule primitive against numpy, through the
TIR evaluator (before and after the loop IR passes) and the compiled C kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from te_testing import random_array, run_both

import ember
from ember import te
from ember.tir import stmt as S
from ember.tir.expr import SizeVar
from ember.tir.functor import post_order


def _matmul(n=12, m=10, k=7, dtype="float32"):
    A = te.placeholder((n, k), dtype, name="A")
    B = te.placeholder((k, m), dtype, name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def _nodes(func, cls):
    out = []
    post_order(func.body, lambda n: out.append(n) if isinstance(n, cls) else None)
    return out


# ----------------------------------------------------------------------------- elementwise


@pytest.mark.parametrize(
    "name,fn,ref,lo",
    [
        ("exp", te.exp, np.exp, -2),
        ("log", te.log, np.log, 0.1),
        ("sqrt", te.sqrt, np.sqrt, 0.1),
        ("rsqrt", te.rsqrt, lambda x: 1 / np.sqrt(x), 0.1),
        ("tanh", te.tanh, np.tanh, -2),
        ("sigmoid", te.sigmoid, lambda x: 1 / (1 + np.exp(-x)), -3),
        ("erf", te.erf, np.vectorize(math.erf), -2),
        ("abs", te.abs, np.abs, -2),
        ("floor", te.floor, np.floor, -3),
        ("ceil", te.ceil, np.ceil, -3),
        ("round", te.round, np.rint, -3),
        ("pow", lambda x: te.pow(x, 1.5), lambda x: np.power(x, 1.5), 0.1),
    ],
)
def test_float_intrinsics(name, fn, ref, lo, rng):
    A = te.placeholder((3, 17), "float32", name="A")
    B = te.compute(A.shape, lambda i, j: fn(A[i, j]), name="B")
    s = te.create_schedule(B.op)
    jo, ji = s[B].split(B.op.axis[1], factor=8)
    s[B].vectorize(ji)
    a = rng.uniform(lo, 3, (3, 17)).astype("float32")
    run_both(s, [A, B], [a], expect=ref(a).astype("float32"), rtol=2e-5)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "uint32"])
def test_integer_ops(dtype, rng):
    A = te.placeholder((4, 9), dtype, name="A")
    Bt = te.placeholder((4, 9), dtype, name="Bt")
    C = te.compute(
        A.shape, lambda i, j: ((A[i, j] & Bt[i, j]) | (A[i, j] ^ 3)) + (Bt[i, j] >> 1), name="C"
    )
    D = te.compute(A.shape, lambda i, j: te.popcount(C[i, j]) + (A[i, j] << 2), name="D")
    s = te.create_schedule(D.op)
    a, b = random_array((4, 9), dtype, rng), random_array((4, 9), dtype, rng)
    b = np.abs(b).astype(dtype)
    c = (a & b) | (a ^ np.array(3, dtype))
    c = (c + (b >> np.array(1, dtype))).astype(dtype)
    pop = np.vectorize(lambda v: bin(int(v) & (2 ** (8 * np.dtype(dtype).itemsize) - 1)).count("1"))
    d = (pop(c).astype(dtype) + (a << np.array(2, dtype))).astype(dtype)
    run_both(s, [A, Bt, D], [a, b], expect=d)


def test_casts_compare_and_select(rng):
    A = te.placeholder((5, 6), "int8", name="A")
    B = te.compute(
        A.shape,
        lambda i, j: te.if_then_else(
            te.all(A[i, j] > 0, j < 4), A[i, j].astype("float32") * 0.5, te.const(-1.0)
        ),
        name="B",
    )
    C = te.compute(A.shape, lambda i, j: te.any(B[i, j] < 0, i.equal(2)).astype("int32"), name="C")
    s = te.create_schedule(C.op)
    a = random_array((5, 6), "int8", rng)
    j = np.arange(6)[None, :]
    b = np.where((a > 0) & (j < 4), a.astype("float32") * 0.5, -1.0)
    c = ((b < 0) | (np.arange(5)[:, None] == 2)).astype("int32")
    run_both(s, [A, C], [a], expect=c)


def test_float16_and_int8_to_int32_reduction(rng):
    A = te.placeholder((6, 8), "int8", name="A")
    r = te.reduce_axis((0, 8), name="r")
    B = te.compute((6,), lambda i: te.sum(A[i, r].astype("int32"), axis=r), name="B")
    H = te.placeholder((6,), "float16", name="H")
    C = te.compute((6,), lambda i: H[i] * te.const(2.0, "float16"), name="C")
    s = te.create_schedule([B.op, C.op])
    a, h = random_array((6, 8), "int8", rng), random_array((6,), "float16", rng)
    out = run_both(s, [A, H, B, C], [a, h])
    np.testing.assert_array_equal(out[0], a.astype("int32").sum(1))
    np.testing.assert_allclose(out[1], h * 2, rtol=1e-3)


# ----------------------------------------------------------------------------- reductions


def test_sum_max_min_where_and_custom_reducer(rng):
    A = te.placeholder((5, 7), "float32", name="A")
    r = te.reduce_axis((0, 7), name="r")
    Smax = te.compute((5,), lambda i: te.max(A[i, r], axis=r), name="Smax")
    Smin = te.compute((5,), lambda i: te.min(A[i, r], axis=r, where=r > 1), name="Smin")
    product = te.comm_reducer(lambda x, y: x * y, lambda t: te.const(1, t), name="product")
    Prod = te.compute((5,), lambda i: product(A[i, r], axis=r), name="Prod")
    s = te.create_schedule([Smax.op, Smin.op, Prod.op])
    a = rng.uniform(0.5, 1.5, (5, 7)).astype("float32")
    run_both(
        s, [A, Smax, Smin, Prod], [a], expect=[a.max(1), a[:, 2:].min(1), a.prod(1)], rtol=1e-5
    )


def test_two_axis_reduction_split_non_dividing(rng):
    A = te.placeholder((4, 5, 6), "float32", name="A")
    r1 = te.reduce_axis((0, 5), name="r1")
    r2 = te.reduce_axis((0, 6), name="r2")
    B = te.compute((4,), lambda i: te.sum(A[i, r1, r2], axis=[r1, r2]), name="B")
    s = te.create_schedule(B.op)
    r2o, r2i = s[B].split(r2, factor=4)
    s[B].reorder(r2o, B.op.axis[0], r1, r2i)
    s[B].unroll(r2i)
    a = random_array((4, 5, 6), "float32", rng)
    run_both(s, [A, B], [a], expect=a.sum((1, 2)), rtol=1e-5)


def test_zero_extent_axes_run_no_iterations(rng):
    """Empty tensors: a loop of extent 0 runs no iteration (so nothing reads or writes out
    of bounds), and a reduction over an empty axis gives the reducer's identity."""
    A = te.placeholder((3, 0), "float32", name="A")
    r = te.reduce_axis((0, 0), name="r")
    total = te.compute((3,), lambda i: te.sum(A[i, r], axis=r), name="total")
    peak = te.compute((3,), lambda i: te.max(A[i, r], axis=r), name="peak")
    doubled = te.compute((3, 0), lambda i, j: A[i, j] * 2, name="doubled")
    s = te.create_schedule([total.op, peak.op, doubled.op])
    fused = s[doubled].fuse(*doubled.op.axis)
    outer, inner = s[doubled].split(fused, factor=8)
    s[doubled].vectorize(inner)
    s[doubled].parallel(outer)
    a = np.zeros((3, 0), "float32")
    run_both(
        s,
        [A, total, peak, doubled],
        [a],
        expect=[np.zeros(3, "float32"), np.full(3, -np.inf, "float32"), a],
    )


# ----------------------------------------------------------------------------- loop structure


@pytest.mark.parametrize("factor", [4, 5, 12, 16])
def test_matmul_split_reorder_vectorize_parallel(factor, rng):
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=factor)
    jo, ji = s[C].split(C.op.axis[1], nparts=3)
    s[C].reorder(io, jo, C.op.reduce_axis[0], ii, ji)
    s[C].parallel(io)
    s[C].vectorize(ji)
    a, b = random_array((12, 7), "float32", rng), random_array((7, 10), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def test_tile_fuse_unroll_pragma(rng):
    A, B, C = _matmul(16, 12, 5)
    s = te.create_schedule(C.op)
    xo, yo, xi, yi = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 6)
    f = s[C].fuse(xo, yo)
    s[C].parallel(f)
    s[C].unroll(xi)
    s[C].pragma(f, "auto_unroll_max_step", 16)
    func = ember.lower(s, [A, B, C], simple_mode=True)
    attrs = _nodes(func, S.AttrStmt)
    assert [a.key for a in attrs] == ["pragma_auto_unroll_max_step"] and attrs[0].value == 16
    kinds = {f.kind for f in _nodes(func, S.For)}
    assert S.ForKind.PARALLEL in kinds and S.ForKind.UNROLLED in kinds
    a, b = random_array((16, 5), "float32", rng), random_array((5, 12), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def test_fuse_then_split_non_dividing(rng):
    A = te.placeholder((3, 5, 7), "float32", name="A")
    B = te.compute(A.shape, lambda i, j, k: A[i, j, k] * 2 + 1, name="B")
    s = te.create_schedule(B.op)
    f = s[B].fuse(*B.op.axis)
    fo, fi = s[B].split(f, factor=8)
    s[B].vectorize(fi)
    s[B].parallel(fo)
    a = random_array((3, 5, 7), "float32", rng)
    run_both(s, [A, B], [a], expect=a * 2 + 1)


def test_bind_gives_thread_binding_loops():
    A = te.placeholder((64,), "float32", name="A")
    B = te.compute((64,), lambda i: A[i] + 1, name="B")
    s = te.create_schedule(B.op)
    bx, tx = s[B].split(B.op.axis[0], factor=16)
    s[B].bind(bx, te.thread_axis("blockIdx.x"))
    s[B].bind(tx, te.thread_axis("threadIdx.x"))
    func = ember.lower(s, [A, B], simple_mode=True)
    loops = _nodes(func, S.For)
    assert {(f.kind, f.thread_tag, f.extent.value) for f in loops} == {
        (S.ForKind.THREAD_BINDING, "blockIdx.x", 4),
        (S.ForKind.THREAD_BINDING, "threadIdx.x", 16),
    }


# ----------------------------------------------------------------------------- placement


def test_compute_at_stencil_region_and_result(rng):
    A = te.placeholder((20,), "float32", name="A")
    B = te.compute(
        (22,), lambda i: te.if_then_else(te.all(i >= 1, i < 21), A[i - 1], 0.0), name="B"
    )
    C = te.compute((20,), lambda i: B[i] + B[i + 1] + B[i + 2], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=6)
    s[B].compute_at(s[C], io)
    func = ember.lower(s, [A, C], simple_mode=True)
    (alloc,) = _nodes(func, S.Allocate)
    assert [d.value for d in alloc.buffer.shape] == [8]  # 6 outputs need 6 + 2 inputs
    a = random_array((20,), "float32", rng)
    p = np.pad(a, 1)
    run_both(s, [A, C], [a], expect=p[:-2] + p[1:-1] + p[2:])


def test_inline_cache_read_cache_write_nested_compute_at(rng):
    n, m, k = 9, 10, 7
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    A2 = te.compute((n, k), lambda i, j: A[i, j] * 2, name="A2")
    B2 = te.compute((k, m), lambda i, j: B[i, j] + 1, name="B2")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A2[i, r] * B2[r, j], axis=r), name="C")
    D = te.compute((n, m), lambda i, j: te.exp(C[i, j] * 0.01), name="D")
    s = te.create_schedule(D.op)
    s[A2].compute_inline()
    CC = s.cache_write(C, "local")
    xo, yo, xi, yi = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 5)
    s[CC].compute_at(s[C], yo)
    BB = s.cache_read(B2, "local", [CC])
    ko, ki = s[CC].split(s[CC].op.reduce_axis[0], factor=3)
    s[BB].compute_at(s[CC], ko)
    s[C].compute_at(s[D], D.op.axis[0])
    func = ember.lower(s, [A, B, D], simple_mode=True)
    scopes = {a.buffer.name: a.buffer.scope for a in _nodes(func, S.Allocate)}
    assert scopes == {"B2": "global", "C": "global", "C.local": "local", "B2.local": "local"}
    a, b = random_array((n, k), "float32", rng), random_array((k, m), "float32", rng)
    run_both(s, [A, B, D], [a, b], expect=np.exp((2 * a) @ (b + 1) * 0.01), rtol=1e-5)


def test_compute_root_undoes_inline(rng):
    A = te.placeholder((6,), "float32", name="A")
    B = te.compute((6,), lambda i: A[i] + 1, name="B")
    C = te.compute((6,), lambda i: B[i] * 2, name="C")
    s = te.create_schedule(C.op)
    s[B].compute_inline()
    assert not _nodes(ember.lower(s, [A, C], simple_mode=True), S.Allocate)
    s[B].compute_root()
    assert len(_nodes(ember.lower(s, [A, C], simple_mode=True), S.Allocate)) == 1
    a = random_array((6,), "float32", rng)
    run_both(s, [A, C], [a], expect=(a + 1) * 2)


def test_storage_align_pads_strides(rng):
    A = te.placeholder((8, 8), "float32", name="A")
    B = te.compute((8, 8), lambda i, j: A[i, j] + 1, name="B")
    C = te.compute((8, 8), lambda i, j: B[j, i] * 3, name="C")
    s = te.create_schedule(C.op)
    s[B].storage_align(B.op.axis[0], 16, 4)
    func = ember.lower(s, [A, C], simple_mode=True)
    (alloc,) = _nodes(func, S.Allocate)
    assert [st.value for st in alloc.buffer.strides] == [20, 1]
    a = random_array((8, 8), "float32", rng)
    run_both(s, [A, C], [a], expect=(a.T + 1) * 3)


def test_intermediate_tensor_as_argument(rng):
    A = te.placeholder((5,), "float32", name="A")
    B = te.compute((5,), lambda i: A[i] + 1, name="B")
    C = te.compute((5,), lambda i: B[i] * B[i], name="C")
    s = te.create_schedule(C.op)
    a = random_array((5,), "float32", rng)
    run_both(s, [A, B, C], [a], expect=[a + 1, (a + 1) ** 2])


def test_multi_output_compute(rng):
    A = te.placeholder((4, 3), "float32", name="A")
    X, Y = te.compute((4, 3), lambda i, j: (A[i, j] + 1, A[i, j] * 2), name="XY")
    s = te.create_schedule(X.op)
    a = random_array((4, 3), "float32", rng)
    run_both(s, [A, X, Y], [a], expect=[a + 1, a * 2])


def test_printed_ir_is_readable():
    A, B, C = _matmul(8, 8, 4)
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    text = str(ember.lower(s, [A, B, C], simple_mode=True))
    assert "for i.outer in range(0, 2):" in text
    assert (
        "C[i.outer*4 + i.inner, j] = C[i.outer*4 + i.inner, j] + A[i.outer*4 + i.inner, r]*B[r, j]"
        in text
    )


def test_compute_at_stage_that_is_also_an_argument(rng):
    A = te.placeholder((10,), "float32", name="A")
    B = te.compute((10,), lambda i: A[i] * 3, name="B")
    C = te.compute((10,), lambda i: B[i] + 1, name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[B].compute_at(s[C], io)
    a = random_array((10,), "float32", rng)
    run_both(s, [A, B, C], [a], expect=[a * 3, a * 3 + 1])


def test_compute_at_reversed_strided_and_modular_reads(rng):
    n = 11
    A = te.placeholder((2 * n,), "float32", name="A")
    P = te.compute((2 * n,), lambda i: A[i] * 2, name="P")
    C = te.compute((n,), lambda i: P[2 * i] + P[2 * n - 1 - i] + P[i % 3], name="C")
    s = te.create_schedule(C.op)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[P].compute_at(s[C], io)
    a = random_array((2 * n,), "float32", rng)
    p = a * 2
    i = np.arange(n)
    run_both(s, [A, C], [a], expect=p[2 * i] + p[2 * n - 1 - i] + p[i % 3])


def test_symbolic_shape_is_rejected_and_numpy_ints_accepted():
    n = SizeVar("n")
    A = te.placeholder((n,), "float32", name="A")
    B = te.compute((n,), lambda i: A[i] + 1, name="B")
    with pytest.raises(ember.errors.LoweringError, match=r"dimension of argument 'A' is n"):
        ember.lower(te.create_schedule(B.op), [A, B])
    A2 = te.placeholder((np.int64(4),), "float32", name="A2")
    B2 = te.compute((4,), lambda i: A2[np.int64(3) - i], name="B2")
    assert str(ember.lower(te.create_schedule(B2.op), [A2, B2], simple_mode=True))


def test_compute_at_through_an_inlined_stage(rng):
    A = te.placeholder((9,), "float32", name="A")
    P = te.compute((9,), lambda i: A[i] + 1, name="P")
    Q = te.compute((9,), lambda i: P[i] * 2, name="Q")
    C = te.compute((8,), lambda i: Q[i] + Q[i + 1], name="C")
    s = te.create_schedule(C.op)
    s[Q].compute_inline()
    io, ii = s[C].split(C.op.axis[0], factor=3)
    s[P].compute_at(s[C], io)
    a = random_array((9,), "float32", rng)
    q = (a + 1) * 2
    run_both(s, [A, C], [a], expect=q[:-1] + q[1:])


def test_bool_tensors(rng):
    A = te.placeholder((3, 5), "float32", name="A")
    M = te.placeholder((3, 5), "bool", name="M")
    P = te.compute((3, 5), lambda i, j: te.all(A[i, j] > 0, M[i, j]), name="P")
    Q = te.compute((3, 5), lambda i, j: te.if_then_else(P[i, j], A[i, j], -A[i, j]), name="Q")
    s = te.create_schedule([P.op, Q.op])
    a = random_array((3, 5), "float32", rng)
    m = random_array((3, 5), "bool", rng)
    p = (a > 0) & m
    run_both(s, [A, M, P, Q], [a, m], expect=[p, np.where(p, a, -a)])
