"""Loop IR printer: a snapshot and minimal parentheses."""

from ember.tir import AttrStmt, BufferStore, For, ForKind, IfThenElse, PrimFunc, decl_buffer, seq
from ember.tir.expr import BufferLoad, Call, Var, const, max_
from ember.tir.printer import print_expr
from ember.tir.stmt import Allocate


def test_func_snapshot():
    A = decl_buffer((1024, 1024), "float32", "A")
    C = decl_buffer((1024, 1024), "float32", "C")
    T = decl_buffer((8,), "float32", "T", scope="local")
    io, j = Var("i.outer"), Var("j")
    body = For(
        io,
        const(0),
        const(32),
        ForKind.PARALLEL,
        Allocate(
            T,
            seq(
                For(
                    j,
                    const(0),
                    const(8),
                    ForKind.VECTORIZED,
                    BufferStore(T, max_(BufferLoad(A, (io, j)), const(0.0)), (j,)),
                ),
                IfThenElse(
                    io < 31,
                    AttrStmt(
                        None,
                        "pragma_unroll",
                        2,
                        BufferStore(
                            C, Call("float32", "exp", (BufferLoad(T, (const(0),)),)), (io, const(0))
                        ),
                    ),
                ),
            ),
        ),
    )
    assert str(PrimFunc("main", (A, C), body)) == (
        "@main(A: float32[1024, 1024], C: float32[1024, 1024])\n"
        "  for i.outer in parallel(0, 32):\n"
        "    T = allocate(float32[8], 'local')\n"
        "    for j in vectorized(0, 8):\n"
        "      T[j] = max(A[i.outer, j], 0.0f)\n"
        "    if i.outer < 31:\n"
        "      attr [None] pragma_unroll = 2\n"
        "        C[i.outer, 0] = exp(T[0])\n"
    )


def test_minimal_parentheses():
    i, j, k = Var("i"), Var("j"), Var("k")
    assert print_expr(i * 1024 + j) == "i*1024 + j"
    assert print_expr((i + j) * 4) == "(i + j)*4"
    assert print_expr(i - (j - k)) == "i - (j - k)"
    assert print_expr((i - j) - k) == "i - j - k"
    assert print_expr((i + j) // 8 % 4) == "(i + j)//8%4"
    assert print_expr((i < 4) & (j >= 2)) == "i < 4 && j >= 2"
