"""Extern stages (a C function computes a tensor) and tensorize (a loop nest becomes a call)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import te
from ember.errors import ScheduleError
from ember.tir.evaluator import evaluate

SCALE_C = """
static void scale_rows(const float* x, float* y, int32_t rows, int32_t cols, float alpha) {
  for (int32_t i = 0; i < rows; ++i)
    for (int32_t j = 0; j < cols; ++j) y[i * cols + j] = alpha * x[i * cols + j] + (float)i;
}
"""


def _scale_rows_py(x, y, rows, cols, alpha):
    rows, cols = int(rows), int(cols)
    xs = x.array[x.offset : x.offset + rows * cols].reshape(rows, cols)
    y.array[y.offset : y.offset + rows * cols] = (alpha * xs + np.arange(rows)[:, None]).ravel()


def test_extern_c_function_between_computes(rng):
    A = te.placeholder((4, 6), "float32", name="A")
    A1 = te.compute((4, 6), lambda i, j: A[i, j] - 1, name="A1")
    E = te.extern(
        (4, 6),
        [A1],
        lambda ins, outs: te.call_extern(
            "void",
            "scale_rows",
            te.access_ptr(ins[0]),
            te.access_ptr(outs[0]),
            4,
            6,
            te.const(3.0),
        ),
        name="E",
        c_prelude=SCALE_C,
    )
    F = te.compute((4, 6), lambda i, j: E[i, j] * 2, name="F")
    s = te.create_schedule(F.op)
    a = rng.standard_normal((4, 6)).astype("float32")
    want = (3 * (a - 1) + np.arange(4)[:, None]) * 2
    func = ember.lower(s, [A, F])
    assert func.attrs["c_prelude"] == [SCALE_C]
    out = np.zeros_like(a)
    evaluate(func, a, out, externs={"scale_rows": _scale_rows_py})
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    mod = ember.build(s, [A, F], name="with_extern")
    out = np.zeros_like(a)
    mod(a, out)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


GEMM_C = """
static void gemm_acc(const float* a, const float* b, float* c, int32_t m, int32_t n,
                     int32_t k, int32_t lda, int32_t ldb, int32_t ldc, int32_t reset) {
  for (int32_t i = 0; i < m; ++i)
    for (int32_t j = 0; j < n; ++j) {
      float acc = reset ? 0.0f : c[i * ldc + j];
      for (int32_t p = 0; p < k; ++p) acc += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] = acc;
    }
}
static void gemm_zero(float* c, int32_t m, int32_t n, int32_t ldc) {
  for (int32_t i = 0; i < m; ++i)
    for (int32_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0f;
}
"""


def _gemm_intrin(mb: int, nb: int, kb: int) -> te.TensorIntrin:
    a = te.placeholder((mb, kb), "float32", name="a")
    b = te.placeholder((kb, nb), "float32", name="b")
    r = te.reduce_axis((0, kb), name="r")
    c = te.compute((mb, nb), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="c")

    def impl(ins, outs):
        aa, bb = ins
        (cc,) = outs

        def gemm(reset: int):
            return te.call_extern(
                "void",
                "gemm_acc",
                aa.access_ptr(),
                bb.access_ptr(),
                cc.access_ptr(),
                mb,
                nb,
                kb,
                aa.strides[0],
                bb.strides[0],
                cc.strides[0],
                reset,
            )

        zero = te.call_extern("void", "gemm_zero", cc.access_ptr(), mb, nb, cc.strides[0])
        return gemm(1), zero, gemm(0)

    return te.decl_tensor_intrin(c.op, impl, name="gemm", c_prelude=GEMM_C)


def _matmul(n, m, k):
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


@pytest.mark.parametrize("reduction_outside", [False, True])
def test_tensorize_gemm(reduction_outside, rng):
    A, B, C = _matmul(8, 12, 16)
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 4)
    (r,) = C.op.reduce_axis
    if reduction_outside:
        ko, ki = s[C].split(r, factor=8)
        s[C].reorder(io, jo, ko, ii, ji, ki)
        intrin = _gemm_intrin(4, 4, 8)
    else:
        s[C].reorder(io, jo, ii, ji, r)
        intrin = _gemm_intrin(4, 4, 16)
    s[C].parallel(io)
    s[C].tensorize(ii, intrin)
    a = rng.standard_normal((8, 16)).astype("float32")
    b = rng.standard_normal((16, 12)).astype("float32")
    text = str(ember.lower(s, [A, B, C], simple_mode=True))
    assert "gemm_acc(" in text
    mod = ember.build(s, [A, B, C], name="tensorized")
    c = np.zeros((8, 12), "float32")
    mod(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_tensorize_shape_mismatch():
    A, B, C = _matmul(8, 8, 8)
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 2, 4)
    s[C].tensorize(ii, _gemm_intrin(4, 4, 8))
    with pytest.raises(
        ScheduleError,
        match=r"stage 'C': tensorize at 'i.inner' with 'gemm'.*"
        r"cover data-parallel extents \[\('i', 2\), \('j', 4\)\]",
    ):
        ember.lower(s, [A, B, C])


def test_tensorize_expression_mismatch():
    A = te.placeholder((8, 8), "float32", name="A")
    B = te.placeholder((8, 8), "float32", name="B")
    r = te.reduce_axis((0, 8), name="r")
    C = te.compute((8, 8), lambda i, j: te.sum(A[i, r] + B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 4)
    s[C].tensorize(ii, _gemm_intrin(4, 4, 8))
    with pytest.raises(
        ScheduleError, match=r"does not compute what the intrinsic does \(Add vs Mul"
    ):
        ember.lower(s, [A, B, C])


def test_tensorize_needs_update_when_reduction_outside():
    A, B, C = _matmul(8, 8, 16)
    a = te.placeholder((4, 4), "float32", name="a")
    b = te.placeholder((4, 8), "float32", name="b")
    r = te.reduce_axis((0, 4), name="r")
    c = te.compute((4, 8), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="c")
    whole_only = te.decl_tensor_intrin(
        c.op, lambda ins, outs: te.call_extern("void", "f", ins[0].access_ptr()), name="whole"
    )
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(C.op.axis[0], C.op.axis[1], 4, 8)
    ko, ki = s[C].split(C.op.reduce_axis[0], factor=4)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    s[C].tensorize(ii, whole_only)
    with pytest.raises(ScheduleError, match=r"needs an update part"):
        ember.lower(s, [A, B, C])
    with pytest.raises(ScheduleError, match=r"expected a TensorIntrin"):
        s[C].tensorize(ii, "gemm")
