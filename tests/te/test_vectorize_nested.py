"""vectorize on a loop with loops inside it (TVM's semantics): the inner loops run on
vectors. Each schedule runs through the TIR evaluator (before and after the passes) and
the compiled C kernel against numpy, on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from te_testing import random_array, run_both

import ember
from ember import te
from ember.errors import ScheduleError
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.functor import post_order


def _matmul(n, m, k):
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    r = te.reduce_axis((0, k), name="k")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def _vector_loops(func) -> list[S.For]:
    """Serial loops of the lowered ``func`` whose body stores vectors: the inner loops
    of a vectorized loop that now run on vectors."""
    found = []

    def visit(n):
        if isinstance(n, S.For):
            stores = []
            post_order(n.body, lambda x: stores.append(x) if isinstance(x, S.BufferStore) else 0)
            if any(E.dtype_lanes(st.value.dtype) > 1 for st in stores):
                found.append(n)

    post_order(func.body, visit)
    return found


def _check_vectorized(s, args, inner_loop: str) -> None:
    func = ember.lower(s, args)
    assert "vectorize_fallback" not in func.attrs, func.attrs.get("vectorize_fallback")
    assert inner_loop in [f.loop_var.name for f in _vector_loops(func)], str(func)


def test_matmul_reduction_innermost_under_vectorized_ji(rng):
    A, B, C = _matmul(16, 32, 24)
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    io, ii = s[C].split(i, factor=4)
    jo, ji = s[C].split(j, factor=8)
    s[C].reorder(io, jo, ii, ji, C.op.reduce_axis[0])
    s[C].vectorize(ji)
    _check_vectorized(s, [A, B, C], "k")
    text = str(ember.lower(s, [A, B, C]))
    # The accumulation of a vector of C inside the serial k loop.
    assert "for k in range(0, 24):" in text
    assert "C[ramp(i.outer*128 + i.inner*32 + j.outer*8, 1, 8)] = C[ramp(" in text
    a, b = random_array((16, 24), "float32", rng), random_array((24, 32), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def test_non_dividing_split_vectorized_over_reduction(rng):
    # 20 % 8 != 0: the tail tile's guard depends on the lane; full tiles run as vectors,
    # the partial one lane by lane, and no lane reads or writes past the arrays.
    A, B, C = _matmul(5, 20, 9)
    s = te.create_schedule(C.op)
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    s[C].reorder(C.op.axis[0], jo, ji, C.op.reduce_axis[0])
    s[C].vectorize(ji)
    _check_vectorized(s, [A, B, C], "k")
    a, b = random_array((5, 9), "float32", rng), random_array((9, 20), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def _padded_conv(n, ci, h, w, co, kernel):
    A = te.placeholder((n, ci, h, w), "float32", name="A")
    W = te.placeholder((co, ci, kernel, kernel), "float32", name="W")
    pad = kernel // 2
    P = te.compute(
        (n, ci, h + 2 * pad, w + 2 * pad),
        lambda b, c, y, x: te.if_then_else(
            te.all(y >= pad, y < h + pad, x >= pad, x < w + pad), A[b, c, y - pad, x - pad], 0.0
        ),
        name="P",
    )
    rc = te.reduce_axis((0, ci), name="rc")
    ry = te.reduce_axis((0, kernel), name="ry")
    rx = te.reduce_axis((0, kernel), name="rx")
    C = te.compute(
        (n, co, h, w),
        lambda b, f, y, x: te.sum(P[b, rc, y + ry, x + rx] * W[f, rc, ry, rx], axis=[rc, ry, rx]),
        name="C",
    )
    return A, W, P, C


def _conv_ref(a, w):
    kernel = w.shape[2]
    pad = kernel // 2
    h, wd = a.shape[2:]
    ap = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((a.shape[0], w.shape[0], h, wd), "float32")
    for dy in range(kernel):
        for dx in range(kernel):
            out += np.einsum("nchw,fc->nfhw", ap[:, :, dy : dy + h, dx : dx + wd], w[:, :, dy, dx])
    return out


@pytest.mark.parametrize("width", [16, 13])
def test_padded_conv_w_inner_vectorized_over_reduction_loops(width, rng):
    # The padding select depends on the lane (x) and on rx: a vector select whose
    # branches read clamped (in-bounds) elements of A.
    A, W, P, C = _padded_conv(1, 3, 6, width, 4, 3)
    s = te.create_schedule(C.op)
    s[P].compute_inline()
    b, f, y, x = C.op.axis
    xo, xi = s[C].split(x, factor=8)
    s[C].reorder(b, f, y, xo, xi, *C.op.reduce_axis)
    s[C].vectorize(xi)
    _check_vectorized(s, [A, W, C], "rx")
    a = random_array((1, 3, 6, width), "float32", rng)
    w = random_array((4, 3, 3, 3), "float32", rng)
    run_both(s, [A, W, C], [a, w], expect=_conv_ref(a, w), rtol=1e-4)


def test_reduction_with_a_lane_dependent_select(rng):
    # A lower-triangular product: the select's condition depends on the lane j and on k.
    n, m = 6, 16
    A = te.placeholder((n, m), "float32", name="A")
    B = te.placeholder((m, m), "float32", name="B")
    k = te.reduce_axis((0, m), name="k")
    C = te.compute(
        (n, m),
        lambda i, j: te.sum(te.if_then_else(k <= j, A[i, k], 0.0) * B[k, j], axis=k),
        name="C",
    )
    s = te.create_schedule(C.op)
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    s[C].reorder(C.op.axis[0], jo, ji, k)
    s[C].vectorize(ji)
    _check_vectorized(s, [A, B, C], "k")
    a, b = random_array((n, m), "float32", rng), random_array((m, m), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ np.triu(b), rtol=1e-4)


def test_nested_serial_loops_over_a_vector_accumulator(rng):
    # cache_write's local accumulator, one vector of it per (i, j.outer), summed over two
    # nested serial loops (the split reduction) inside the vectorized axis.
    A, B, C = _matmul(8, 16, 12)
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    i, j = C.op.axis
    jo, ji = s[C].split(j, factor=8)
    s[C].vectorize(ji)
    s[CC].compute_at(s[C], jo)
    ci, cj = s[CC].op.axis
    (ck,) = s[CC].op.reduce_axis
    ko, ki = s[CC].split(ck, factor=4)
    cjo, cji = s[CC].split(cj, factor=8)
    s[CC].reorder(ci, cjo, cji, ko, ki)
    s[CC].vectorize(cji)
    func = ember.lower(s, [A, B, C])
    assert "vectorize_fallback" not in func.attrs
    assert {"k.outer", "k.inner"} <= {f.loop_var.name for f in _vector_loops(func)}
    a, b = random_array((8, 12), "float32", rng), random_array((12, 16), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def test_vectorized_outer_axis_of_a_matrix(rng):
    # Vectorizing i with j and k inside: C's lanes are a column (stride m), loads of A
    # gather a column, B is broadcast.
    A, B, C = _matmul(8, 5, 7)
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[0])
    _check_vectorized(s, [A, B, C], "j")
    a, b = random_array((8, 7), "float32", rng), random_array((7, 5), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


def test_lane_dependent_tail_guard_inside_an_inner_loop_is_scalarized(rng):
    # x = x.outer*4 + x.inner with x.outer vectorized and 30 % 4 != 0: the guard sits
    # inside the x.inner loop and differs per lane; where not every lane passes it, the
    # guarded store runs lane by lane (a serial loop over the lanes).
    A = te.placeholder((30,), "float32", name="A")
    B = te.compute((30,), lambda x: A[x] * 2.0 + 1.0, name="B")
    s = te.create_schedule(B.op)
    xo, xi = s[B].split(B.op.axis[0], factor=4)
    s[B].vectorize(xo)
    func = ember.lower(s, [A, B])
    assert "vectorize_fallback" not in func.attrs
    assert "for x.outer.s in range(0, 8):" in str(func)
    a = random_array((30,), "float32", rng)
    run_both(s, [A, B], [a], expect=a * 2 + 1)


def test_stage_computed_inside_the_vectorized_loop_gets_scratch_per_lane(rng):
    # P is computed at C's vectorized axis: each lane needs its own row of P, so the
    # scratch buffer is widened by the lane count (TVM's rule).
    n, m, K = 4, 8, 6
    A = te.placeholder((n, K), "float32", name="A")
    B = te.placeholder((K, m), "float32", name="B")
    P = te.compute((n, m, K), lambda i, j, k: A[i, k] * B[k, j], name="P")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((n, m), lambda i, j: te.sum(P[i, j, k], axis=k), name="C")
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[1])
    s[P].compute_at(s[C], C.op.axis[1])
    func = ember.lower(s, [A, B, C])
    assert "vectorize_fallback" not in func.attrs
    assert "P = allocate(float32[48], 'global')" in str(func)
    a, b = random_array((n, K), "float32", rng), random_array((K, m), "float32", rng)
    run_both(s, [A, B, C], [a, b], expect=a @ b, rtol=1e-4)


@pytest.mark.parametrize(
    "mark,kind", [("parallel", "parallel"), ("vectorize", "vectorized")], ids=["par", "vec"]
)
def test_loop_inside_a_vectorized_axis_that_cannot_run_in_lanes(mark, kind):
    A, B, C = _matmul(8, 16, 4)
    s = te.create_schedule(C.op)
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    s[C].reorder(jo, ji, C.op.axis[0])
    s[C].vectorize(ji)
    getattr(s[C], mark)(C.op.axis[0])
    with pytest.raises(
        ScheduleError,
        match=rf"stage 'C': vectorized axis 'j.inner' has the {kind} loop 'i' inside it: ",
    ):
        ember.lower(s, [A, B, C])
