"""compute_at at a stage inside whose loops a reader is attached (TVM's attach path).

A producer read only by a cache_write stage (itself computed inside the output's loops)
can be placed at any of the output's loops around that reader; bound inference sizes it
to what every reader inside one iteration needs.
"""

from __future__ import annotations

import numpy as np
import pytest
from te_testing import run_both

import ember
from ember import te
from ember.errors import ScheduleError
from ember.tir.functor import allocated_buffers


def _allocations(func) -> dict[str, tuple[int, ...]]:
    return {b.name: tuple(int(d.value) for d in b.shape) for b in allocated_buffers(func.body)}


def _packed_matmul(n: int, m: int, k: int, nr: int = 8, per_task: int = 2):
    """C = A @ B through packedB[m / nr, k, nr]; C.local (cache_write) at C's panel loop,
    packedB at C's outer column-block loop, which only C.local reads."""
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    packed = te.compute((m // nr, k, nr), lambda x, y, z: B[y, x * nr + z], name="packedB")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute(
        (n, m), lambda i, j: te.sum(A[i, r] * packed[j // nr, r, j % nr], axis=r), name="C"
    )
    s = te.create_schedule(C.op)
    CC = s.cache_write(C, "local")
    jo, ji = s[C].split(C.op.axis[1], factor=nr)
    joo, joi = s[C].split(jo, factor=per_task)
    io, ii = s[C].split(C.op.axis[0], factor=4)
    s[C].reorder(joo, io, joi, ii, ji)
    s[CC].compute_at(s[C], joi)
    return s, (A, B, C), (packed, CC), (joo, io, joi)


@pytest.mark.parametrize("shape", [(16, 32, 5), (12, 40, 7)])  # 40 / 16: a partial block
def test_pack_at_outer_loop_of_the_output(shape, rng):
    n, m, k = shape
    s, (A, B, C), (packed, _), (joo, _, _) = _packed_matmul(n, m, k)
    s[packed].compute_at(s[C], joo)
    s[C].parallel(joo)
    f = ember.lower(s, [A, B, C], simple_mode=True)
    if m % 16 == 0:  # two 8-column panels per iteration of joo, not all m / 8 of them
        assert _allocations(f)["packedB"] == (2, k, 8)
    a = rng.standard_normal((n, k)).astype("float32")
    b = rng.standard_normal((k, m)).astype("float32")
    run_both(s, [A, B, C], [a, b], rtol=1e-4, expect=a @ b)


def test_pack_at_the_readers_own_loop(rng):
    """Attached at the same loop as its reader: computed first, one panel per iteration."""
    n, m, k = 8, 32, 6
    s, (A, B, C), (packed, _), (_, _, joi) = _packed_matmul(n, m, k)
    s[packed].compute_at(s[C], joi)
    f = ember.lower(s, [A, B, C], simple_mode=True)
    assert _allocations(f)["packedB"] == (1, k, 8)
    a = rng.standard_normal((n, k)).astype("float32")
    b = rng.standard_normal((k, m)).astype("float32")
    run_both(s, [A, B, C], [a, b], rtol=1e-4, expect=a @ b)


def test_region_covers_the_parent_and_the_attached_reader(rng):
    """D reads P[i] itself and through T (attached inside D), which reads P[i + 1]."""
    A = te.placeholder((17,), "float32", name="A")
    P = te.compute((17,), lambda i: A[i] * 3.0, name="P")
    T = te.compute((16,), lambda i: P[i + 1] - 1.0, name="T")
    D = te.compute((16,), lambda i: T[i] + P[i], name="D")
    s = te.create_schedule(D.op)
    io, ii = s[D].split(D.op.axis[0], factor=4)
    s[T].compute_at(s[D], ii)
    s[P].compute_at(s[D], io)
    f = ember.lower(s, [A, D], simple_mode=True)
    assert _allocations(f)["P"] == (5,)  # [io*4, io*4 + 5)
    a = rng.standard_normal(17).astype("float32")
    p = a * 3.0
    run_both(s, [A, D], [a], expect=(p[1:] - 1.0) + p[:16])


def test_chain_of_two_attachments(rng):
    """P is read by Q, Q is computed inside R, R inside D: P at D's outer loop."""
    A = te.placeholder((6, 8), "float32", name="A")
    P = te.compute((6, 8), lambda i, j: A[i, j] + 1.0, name="P")
    Q = te.compute((6, 8), lambda i, j: P[i, j] * 2.0, name="Q")
    R = te.compute((6, 8), lambda i, j: Q[i, j] - 3.0, name="R")
    D = te.compute((6, 8), lambda i, j: R[i, j] * R[i, j], name="D")
    s = te.create_schedule(D.op)
    i, j = D.op.axis
    jo, ji = s[D].split(j, factor=4)
    s[D].reorder(i, jo, ji)
    s[R].compute_at(s[D], jo)
    s[Q].compute_at(s[R], R.op.axis[1])
    s[P].compute_at(s[D], i)
    f = ember.lower(s, [A, D], simple_mode=True)
    assert _allocations(f)["P"] == (1, 8)  # one row of P per iteration of i
    a = rng.standard_normal((6, 8)).astype("float32")
    r = (a + 1.0) * 2.0 - 3.0
    run_both(s, [A, D], [a], expect=r * r)


def test_reader_attached_outside_the_loop_is_an_error():
    s, (A, B, C), (packed, CC), (joo, io, joi) = _packed_matmul(8, 32, 4)
    s[CC].compute_at(s[C], joo)  # the reader now runs outside io / joi
    s[packed].compute_at(s[C], joi)
    with pytest.raises(
        ScheduleError,
        match=r"stage 'packedB': computed at stage 'C', but \['C.local'\] also read it "
        r"outside loop 'j.outer.inner'",
    ):
        ember.lower(s, [A, B, C])


def _row_sums():
    """C[i] = sum_j P[i, j]; C.local (the reduction, not inlinable) is the only reader of P."""
    A = te.placeholder((8, 4), "float32", name="A")
    P = te.compute((8, 4), lambda i, j: A[i, j] * 2.0, name="P")
    r = te.reduce_axis((0, 4), name="r")
    C = te.compute((8,), lambda i: te.sum(P[i, r], axis=r), name="C")
    s = te.create_schedule(C.op)
    return s, A, P, C, s.cache_write(C, "local")


def test_compute_at_before_the_reader_is_attached_is_an_error():
    s, A, P, C, CC = _row_sums()
    with pytest.raises(
        ScheduleError,
        match=r"stage 'P': compute_at: stage 'C' does not read 'P', and no stage that reads "
        r"it is attached inside its loops",
    ):
        s[P].compute_at(s[C], C.op.axis[0])
    io, ii = s[C].split(C.op.axis[0], factor=2)
    s[CC].compute_at(s[C], ii)
    s[P].compute_at(s[C], io)  # now it can: two rows of P per iteration of io
    assert _allocations(ember.lower(s, [A, C], simple_mode=True))["P"] == (2, 4)
    a = np.arange(32, dtype="float32").reshape(8, 4)
    run_both(s, [A, C], [a], expect=(a * 2.0).sum(axis=1))


def test_reader_moved_back_to_the_root_is_an_error():
    s, A, P, C, CC = _row_sums()
    s[CC].compute_at(s[C], C.op.axis[0])
    s[P].compute_at(s[C], C.op.axis[0])
    s[CC].compute_root()
    with pytest.raises(ScheduleError, match=r"stage 'P': computed at stage 'C', which does not"):
        ember.lower(s, [A, C])
