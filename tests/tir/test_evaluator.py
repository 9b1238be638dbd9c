"""The loop IR evaluator against numpy on hand-built loop IR (N-D, flat, vector)."""

import numpy as np
import pytest

from ember.errors import EmberRuntimeError, LoweringError
from ember.tir import BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer, seq
from ember.tir.evaluator import evaluate
from ember.tir.expr import (
    Broadcast,
    BufferLoad,
    Call,
    Cast,
    FloorDiv,
    FloorMod,
    Ramp,
    Var,
    const,
    max_,
    select,
)
from ember.tir.stmt import Allocate


def _rng():
    return np.random.default_rng()


def test_nd_elementwise_and_reduction():
    n, m = 5, 7
    A = decl_buffer((n, m), "float32", "A")
    B = decl_buffer((n,), "float32", "B")
    i, j = Var("i"), Var("j")
    body = For(
        i,
        const(0),
        const(n),
        ForKind.SERIAL,
        seq(
            BufferStore(B, const(0.0), (i,)),
            For(
                j,
                const(0),
                const(m),
                ForKind.SERIAL,
                BufferStore(
                    B, BufferLoad(B, (i,)) + Call("float32", "exp", (BufferLoad(A, (i, j)),)), (i,)
                ),
            ),
        ),
    )
    a = _rng().standard_normal((n, m)).astype("float32")
    b = np.zeros(n, "float32")
    evaluate(PrimFunc("f", (A, B), body), a, b)
    np.testing.assert_allclose(b, np.exp(a).sum(1), rtol=1e-5)


def test_flat_vector_code_and_select():
    A = decl_buffer((16,), "float32", "A")
    B = decl_buffer((16,), "float32", "B")
    i = Var("i")
    ramp = Ramp(i * 8, const(1), 8)
    val = BufferLoad(A, (ramp,))
    body = For(
        i,
        const(0),
        const(2),
        ForKind.SERIAL,
        BufferStore(
            B, select(val > Broadcast(const(0.0), 8), val, val * Broadcast(const(0.1), 8)), (ramp,)
        ),
    )
    a = _rng().standard_normal(16).astype("float32")
    b = np.zeros(16, "float32")
    evaluate(PrimFunc("leaky", (A, B), body), a, b)
    np.testing.assert_allclose(b, np.where(a > 0, a, a * np.float32(0.1)), rtol=1e-6)


def test_integer_semantics_floor_and_wrap():
    A = decl_buffer((8,), "int32", "A")
    B = decl_buffer((8, 3), "int32", "B")
    C = decl_buffer((8,), "int8", "C")
    i = Var("i")
    x = BufferLoad(A, (i,))
    body = For(
        i,
        const(0),
        const(8),
        ForKind.SERIAL,
        seq(
            BufferStore(B, FloorDiv(x, const(3)), (i, const(0))),
            BufferStore(B, FloorMod(x, const(-3)), (i, const(1))),
            BufferStore(B, x / const(3), (i, const(2))),  # C division truncates
            BufferStore(C, Cast("int8", x), (i,)),
        ),
    )
    a = np.array([-7, -3, -1, 0, 1, 5, 200, 300], "int32")
    b = np.zeros((8, 3), "int32")
    c = np.zeros(8, "int8")
    evaluate(PrimFunc("ints", (A, B, C), body), a, b, c)
    np.testing.assert_array_equal(b[:, 0], a // 3)
    np.testing.assert_array_equal(b[:, 1], np.mod(a, -3))
    np.testing.assert_array_equal(b[:, 2], np.trunc(a / 3).astype("int32"))
    np.testing.assert_array_equal(c, a.astype("int8"))


def test_allocate_strided_guard_and_max():
    A = decl_buffer((6,), "float32", "A")
    B = decl_buffer((6,), "float32", "B")
    T = decl_buffer((3, 2), "float32", "T", scope="local")
    i = Var("i")
    body = Allocate(
        T,
        seq(
            For(
                i,
                const(0),
                const(6),
                ForKind.SERIAL,
                BufferStore(
                    T,
                    max_(BufferLoad(A, (i,)), const(0.0)),
                    (FloorDiv(i, const(2)), FloorMod(i, const(2))),
                ),
            ),
            For(
                i,
                const(0),
                const(8),
                ForKind.SERIAL,
                IfThenElse(
                    i < 6,
                    BufferStore(
                        B, BufferLoad(T, (FloorDiv(i, const(2)), FloorMod(i, const(2)))), (i,)
                    ),
                ),
            ),
        ),
    )
    a = _rng().standard_normal(6).astype("float32")
    b = np.zeros(6, "float32")
    evaluate(PrimFunc("relu", (A, B), body), a, b)
    np.testing.assert_allclose(b, np.maximum(a, 0))


def test_read_before_write_of_scratch_shows_nan():
    B = decl_buffer((4,), "float32", "B")
    T = decl_buffer((4,), "float32", "T")
    i = Var("i")
    body = Allocate(
        T, For(i, const(0), const(4), ForKind.SERIAL, BufferStore(B, BufferLoad(T, (i,)), (i,)))
    )
    b = np.zeros(4, "float32")
    evaluate(PrimFunc("bad", (B,), body), b)
    assert np.isnan(b).all()


def test_errors():
    A = decl_buffer((4,), "float32", "A")
    i = Var("i")
    f = PrimFunc(
        "oob", (A,), For(i, const(0), const(5), ForKind.SERIAL, BufferStore(A, const(1.0), (i,)))
    )
    with pytest.raises(EmberRuntimeError, match="out-of-bounds access of buffer 'A'"):
        evaluate(f, np.zeros(4, "float32"))
    with pytest.raises(EmberRuntimeError, match="expected shape"):
        evaluate(f, np.zeros(3, "float32"))
    with pytest.raises(EmberRuntimeError, match="expected 1 array"):
        evaluate(f, np.zeros(4, "float32"), np.zeros(4, "float32"))
    g = PrimFunc("ext", (A,), BufferStore(A, Call("float32", "my_fn", (const(1.0),)), (const(0),)))
    with pytest.raises(LoweringError, match="extern function 'my_fn'"):
        evaluate(g, np.zeros(4, "float32"))
    a = np.zeros(4, "float32")
    evaluate(g, a, externs={"my_fn": lambda x: x * 3})
    assert a[0] == 3
