"""partition_selects and the vectorizer's select handling: before/after IR and evaluator
equality on fresh random inputs."""

import numpy as np
import pytest

from ember.tir import BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer
from ember.tir import expr as E
from ember.tir.evaluator import evaluate
from ember.tir.expr import BufferLoad, FloorDiv, FloorMod, Var, const
from ember.tir.functor import post_order
from ember.tir.passes import (
    flatten_storage,
    lower_pipeline,
    partition_selects,
    simplify_func,
    vectorize_loops,
)


def _count(node, kind) -> int:
    n = 0

    def visit(x):
        nonlocal n
        n += isinstance(x, kind)

    post_order(node, visit)
    return n


def _run(f, shapes, dtype="float32"):
    rng = np.random.default_rng()
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    evaluate(f, *arrays)
    return arrays


def _concat_func(sizes, width, kind=ForKind.SERIAL, fused=False):
    """out[c, w] = concat(inputs along c)[c, w], written as lowering writes it: a select
    chain with every read clamped into its input."""
    total = sum(sizes)
    ins = [decl_buffer((n, width), "float32", f"X{k}") for k, n in enumerate(sizes)]
    out = decl_buffer((total, width), "float32", "Y")
    c, w, f = Var("c"), Var("w"), Var("f")
    if fused:
        c_idx, w_idx = FloorDiv(f, const(width)), FloorMod(f, const(width))
    else:
        c_idx, w_idx = c, w
    value = None
    off = 0
    for buf, n in zip(ins, sizes, strict=True):
        row = E.max_(E.min_(c_idx - off, const(n - 1)), const(0))
        read = BufferLoad(buf, (row, w_idx))
        value = read if value is None else E.select(c_idx < off, value, read)
        off += n
    store = BufferStore(out, value, (c_idx, w_idx))
    if fused:
        body = For(f, const(0), const(total * width), kind, store)
    else:
        body = For(
            c, const(0), const(total), kind, For(w, const(0), const(width), ForKind.SERIAL, store)
        )
    return PrimFunc("concat", (*ins, out), body), [(n, width) for n in sizes] + [(total, width)]


def _expected(arrays):
    return np.concatenate(arrays[:-1], axis=0)


@pytest.mark.parametrize("sizes", [(3, 5), (4, 1, 6), (2, 3, 5, 7, 1)])
def test_serial_concat_loop_splits_into_copy_loops(sizes):
    f, shapes = _concat_func(sizes, width=6)
    g = partition_selects(simplify_func(flatten_storage(f)))
    text = str(g)
    assert _count(g.body, E.Select) == 0
    assert _count(g.body, E.Min) == 0 and _count(g.body, E.Max) == 0, text
    assert text.count("for c in range(") == len(sizes)
    got = _run(g, shapes)
    np.testing.assert_array_equal(got[-1], _expected(got))


def test_parallel_fused_concat_becomes_one_region_with_a_branch_tree():
    f, shapes = _concat_func((4, 2, 2, 3), width=5, kind=ForKind.PARALLEL, fused=True)
    g = partition_selects(simplify_func(flatten_storage(f)))
    assert _count(g.body, E.Select) == 0
    # One parallel loop (one barrier), log2(4) = 2 levels of range tests on f // 5.
    assert isinstance(g.body, For) and g.body.kind is ForKind.PARALLEL
    assert str(g).splitlines()[2:4] == ["    if f < 30:", "      if f < 20:"]
    assert _count(g.body, IfThenElse) == 3
    got = _run(g, shapes)
    np.testing.assert_array_equal(got[-1], _expected(got))


def test_pipeline_keeps_concat_results():
    f, shapes = _concat_func((3, 6, 2), width=13)
    g = lower_pipeline(f)
    assert _count(g.body, E.Select) == 0
    a = _run(f, shapes)  # fresh random inputs, out computed by the unpartitioned loop
    b = [x.copy() for x in a]
    b[-1][:] = np.nan  # the partitioned loop must write every element again
    evaluate(g, *b)
    np.testing.assert_array_equal(a[-1], b[-1])
    np.testing.assert_array_equal(a[-1], _expected(a))


def test_condition_not_decided_by_ranges_leaves_loop_alone():
    # Parity changes every iteration: no range of k decides it, so nothing is split.
    A = decl_buffer((16,), "float32", "A")
    B = decl_buffer((16,), "float32", "B")
    k = Var("k")
    value = E.select(FloorMod(k, const(2)).equal(0), BufferLoad(A, (k,)), const(0.0))
    f = PrimFunc(
        "even", (A, B), For(k, const(0), const(16), ForKind.SERIAL, BufferStore(B, value, (k,)))
    )
    assert partition_selects(f) is f


def test_padding_rows_split_on_a_serial_row_loop():
    # out[y, x] = y in [1, 5) ? A[y - 1, x] : 0 -- the top and bottom padding rows split off.
    A = decl_buffer((4, 3), "float32", "A")
    B = decl_buffer((6, 3), "float32", "B")
    y, x = Var("y"), Var("x")
    row = E.max_(E.min_(y - 1, const(3)), const(0))
    value = E.select(E.And(y >= 1, y < 5), BufferLoad(A, (row, x)), const(0.0))
    body = For(
        y,
        const(0),
        const(6),
        ForKind.SERIAL,
        For(x, const(0), const(3), ForKind.SERIAL, BufferStore(B, value, (y, x))),
    )
    f = PrimFunc("pad", (A, B), body)
    g = partition_selects(simplify_func(flatten_storage(f)))
    assert _count(g.body, E.Select) == 0
    got = _run(g, [(4, 3), (6, 3)])
    want = np.zeros((6, 3), np.float32)
    want[1:5] = got[0]
    np.testing.assert_array_equal(got[1], want)


def test_vectorizer_keeps_a_lane_uniform_condition_scalar():
    # The condition depends on the row only: the vector code picks whole vectors.
    A = decl_buffer((4, 8), "float32", "A")
    B = decl_buffer((4, 8), "float32", "B")
    i, j = Var("i"), Var("j")
    value = E.select(FloorMod(i, const(2)).equal(0), BufferLoad(A, (i, j)), const(-1.0))
    body = For(
        i,
        const(0),
        const(4),
        ForKind.SERIAL,
        For(j, const(0), const(8), ForKind.VECTORIZED, BufferStore(B, value, (i, j))),
    )
    f = PrimFunc("rows", (A, B), body)
    g = vectorize_loops(simplify_func(flatten_storage(f)))
    assert "vectorize_fallback" not in g.attrs
    assert "select(i%2 == 0, A[ramp(i*8, 1, 8)], broadcast(-1.0f, 8))" in str(g)
    got = _run(g, [(4, 8), (4, 8)])
    want = np.where((np.arange(4) % 2 == 0)[:, None], got[0], -1.0)
    np.testing.assert_array_equal(got[1], want)


def test_vectorizer_drops_clamps_the_tail_guard_proves():
    # A split of 13 by 8 with a clamped read (lowering's select-branch clamp): inside the
    # whole-tile test the clamp is a no-op, so the full tile reads one contiguous vector.
    A = decl_buffer((13,), "float32", "A")
    B = decl_buffer((13,), "float32", "B")
    o, i = Var("o"), Var("i")
    j = o * 8 + i
    store = IfThenElse(j < 13, BufferStore(B, BufferLoad(A, (E.min_(j, const(12)),)) * 2.0, (j,)))
    body = For(
        o,
        const(0),
        const(2),
        ForKind.PARALLEL,
        For(i, const(0), const(8), ForKind.VECTORIZED, store),
    )
    f = PrimFunc("tail", (A, B), body)
    g = vectorize_loops(simplify_func(flatten_storage(f)))
    assert "B[ramp(o*8, 1, 8)] = A[ramp(o*8, 1, 8)]*broadcast(2.0f, 8)" in str(g)
    got = _run(g, [(13,), (13,)])
    np.testing.assert_array_equal(got[1], got[0] * 2)
