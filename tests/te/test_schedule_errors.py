"""Every schedule / lowering mistake a user can make raises a clear error naming stage and axis."""

from __future__ import annotations

import pytest

import ember
from ember import te
from ember.errors import LoweringError, ScheduleError


def _matmul(n=8, m=8, k=8):
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    return A, B, C


def test_split_non_leaf_axis():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"stage 'C': split: axis 'i' was already split"):
        s[C].split(C.op.axis[0], factor=2)


def test_split_bad_factor_and_both_args():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"factor must be a positive int, got 0"):
        s[C].split(C.op.axis[0], factor=0)
    with pytest.raises(ScheduleError, match=r"exactly one of factor= or nparts="):
        s[C].split(C.op.axis[0], factor=2, nparts=2)


def test_axis_of_another_stage():
    A, B, C = _matmul()
    D = te.compute((8, 8), lambda i, j: C[i, j] + 1, name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"stage 'D': reorder: axis 'i' does not belong"):
        s[D].reorder(C.op.axis[0], D.op.axis[0])
    with pytest.raises(ScheduleError, match=r"expects an IterVar"):
        s[D].split("i", factor=2)


def test_reorder_duplicate_axis():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match=r"listed twice"):
        s[C].reorder(i, i)


def test_fuse_non_adjacent_and_mixed_kinds():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    (r,) = C.op.reduce_axis
    s[C].reorder(i, r, j)
    with pytest.raises(ScheduleError, match=r"fuse: axes \['i', 'j'\] are not adjacent"):
        s[C].fuse(i, j)
    with pytest.raises(ScheduleError, match=r"cannot fuse a reduction axis"):
        s[C].fuse(i, r)


def test_vectorize_and_parallel_on_reduction_axis():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    (r,) = C.op.reduce_axis
    with pytest.raises(ScheduleError, match=r"stage 'C': vectorize: axis 'r' is a reduction"):
        s[C].vectorize(r)
    with pytest.raises(ScheduleError, match=r"stage 'C': parallel: axis 'r' is a reduction"):
        s[C].parallel(r)


def test_vectorize_axis_with_a_parallel_loop_inside_rejected_at_lowering():
    # Loops inside a vectorized axis run on vectors (TVM's semantics); a parallel one
    # cannot: the message names both loops and says why.
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    s[C].vectorize(C.op.axis[0])
    s[C].parallel(C.op.axis[1])
    with pytest.raises(
        ScheduleError,
        match=r"vectorized axis 'i' has the parallel loop 'j' inside it: threads cannot start "
        r"inside the vector lanes of one thread\n  hint: reorder so 'j' is outside 'i'",
    ):
        ember.lower(s, [A, B, C])


def test_conflicting_loop_kinds():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    s[C].parallel(C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"already marked parallel"):
        s[C].unroll(C.op.axis[0])


def test_bind_needs_thread_axis():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"bind: the second argument must be a te.thread_axis"):
        s[C].bind(C.op.axis[0], C.op.axis[1])


def test_compute_at_stage_that_does_not_consume():
    A = te.placeholder((8,), "float32", name="A")
    B = te.compute((8,), lambda i: A[i] + 1, name="B")
    C = te.compute((8,), lambda i: A[i] * 2, name="C")
    D = te.compute((8,), lambda i: B[i] + C[i], name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"stage 'B': compute_at: stage 'C' does not read 'B'"):
        s[B].compute_at(s[C], C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"compute_at: axis 'i' is not an axis of stage 'D'"):
        s[B].compute_at(s[D], C.op.axis[0])


def test_compute_at_axis_split_afterwards():
    A = te.placeholder((8,), "float32", name="A")
    B = te.compute((8,), lambda i: A[i] + 1, name="B")
    C = te.compute((8,), lambda i: B[i] * 2, name="C")
    s = te.create_schedule(C.op)
    s[B].compute_at(s[C], C.op.axis[0])
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"axis 'i' of stage 'C' is no longer a loop"):
        ember.lower(s, [A, C])


def test_compute_at_with_second_reader():
    A = te.placeholder((8,), "float32", name="A")
    B = te.compute((8,), lambda i: A[i] + 1, name="B")
    C = te.compute((8,), lambda i: B[i] * 2, name="C")
    D = te.compute((8,), lambda i: B[i] + C[i], name="D")
    s = te.create_schedule(D.op)
    s[B].compute_at(s[C], C.op.axis[0])
    with pytest.raises(ScheduleError, match=r"stage 'B': computed at stage 'C', but \['D'\] also"):
        ember.lower(s, [A, D])


def test_inline_reduction_and_output():
    A, B, C = _matmul()
    D = te.compute((8, 8), lambda i, j: C[i, j] + 1, name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"stage 'C': compute_inline: a reduction cannot"):
        s[C].compute_inline()
    with pytest.raises(ScheduleError, match=r"stage 'D': compute_inline: this is an output"):
        s[D].compute_inline()
    with pytest.raises(ScheduleError, match=r"stage 'A': compute_inline on a placeholder"):
        s[A].compute_inline()


def test_inline_of_an_argument():
    A = te.placeholder((4,), "float32", name="A")
    B = te.compute((4,), lambda i: A[i] + 1, name="B")
    C = te.compute((4,), lambda i: B[i] * 2, name="C")
    s = te.create_schedule(C.op)
    s[B].compute_inline()
    with pytest.raises(ScheduleError, match=r"stage 'B': compute_inline of a tensor that is a"):
        ember.lower(s, [A, B, C])


def test_cache_read_errors():
    A, B, C = _matmul()
    D = te.compute((8, 8), lambda i, j: C[i, j] + 1, name="D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"cache_read: stage 'D' does not read 'A'"):
        s.cache_read(A, "local", [D])
    other = te.placeholder((3,), name="other")
    with pytest.raises(ScheduleError, match=r"is not part of this schedule"):
        s[other]


def test_cache_write_after_scheduling():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"cache_write: stage 'C' is already scheduled"):
        s.cache_write(C, "local")


def test_storage_align_errors():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match=r"storage_align: axis 'r' is not a root data axis"):
        s[C].storage_align(C.op.reduce_axis[0], 8, 1)
    with pytest.raises(ScheduleError, match=r"0 <= offset < factor"):
        s[C].storage_align(C.op.axis[0], 8, 9)


def test_lowering_argument_errors():
    A, B, C = _matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(LoweringError, match=r"placeholder 'B' is read but not among the arguments"):
        ember.lower(s, [A, C])
    with pytest.raises(LoweringError, match=r"output 'C' is not among the arguments"):
        ember.lower(s, [A, B])
    with pytest.raises(LoweringError, match=r"tensor 'A' is listed twice"):
        ember.lower(s, [A, A, B, C])
    with pytest.raises(LoweringError, match=r"arguments must be tensors"):
        ember.lower(s, [A, B, "C"])


def test_expression_errors():
    A = te.placeholder((4, 4), "float32", name="A")
    with pytest.raises(
        LoweringError, match=r"tensor 'A' has 2 dimension\(s\) but is indexed with 1"
    ):
        te.compute((4,), lambda i: A[i], name="B")
    r = te.reduce_axis((0, 4), name="r")
    with pytest.raises(LoweringError, match=r"a reduction must be the whole body"):
        te.compute((4,), lambda i: te.sum(A[i, r], axis=r) * 2, name="B")
    with pytest.raises(LoweringError, match=r"te.exp needs a floating-point argument"):
        te.exp(te.const(1))
    with pytest.raises(LoweringError, match=r"axis .* is not a reduction axis"):
        te.compute((4,), lambda i: te.sum(A[i, 0], axis=i), name="B")
    with pytest.raises(LoweringError, match=r"has a dimension of -1"):
        te.placeholder((4, -1), name="Z")
    with pytest.raises(LoweringError, match=r"no truth value"):
        te.compute((4,), lambda i: A[i, 0] if i > 1 else A[0, 0], name="B")
