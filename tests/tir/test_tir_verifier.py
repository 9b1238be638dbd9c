"""The loop IR verifier: each rule on a hand-built bad PrimFunc (matching the message), and
the checked pipeline, which names the pass after which the IR went bad."""

import dataclasses

import pytest

import ember
from ember.errors import VerifyError
from ember.tir import (
    Allocate,
    BufferStore,
    For,
    ForKind,
    IfThenElse,
    PrimFunc,
    decl_buffer,
    seq,
)
from ember.tir import passes as tir_passes
from ember.tir.expr import (
    Add,
    Broadcast,
    BufferLoad,
    IntImm,
    ProducerLoad,
    Ramp,
    SizeVar,
    Var,
    const,
)
from ember.tir.passes import lower_pipeline
from ember.tir.verifier import verify


def _loop(var, extent, body):
    return For(var, const(0), const(extent), ForKind.SERIAL, body)


def _fails(func, pattern):
    with pytest.raises(VerifyError, match=pattern):
        verify(func)


def test_a_well_formed_function_passes():
    n = SizeVar("n")
    A = decl_buffer((n, 4), "float32", "A")
    T = decl_buffer((4,), "float32", "T", scope="local")
    i, j = Var("i"), Var("j")
    body = _loop(
        i,
        8,
        Allocate(
            T,
            seq(
                _loop(j, 4, BufferStore(T, BufferLoad(A, (i, j)) * 2.0, (j,))),
                _loop(j, 4, BufferStore(A, BufferLoad(T, (j,)), (i, j))),  # j reused: siblings
            ),
        ),
    )
    verify(PrimFunc("ok", (A,), body))


def test_variable_never_bound():
    A = decl_buffer((8,), "float32", "A")
    ghost = Var("ghost")
    _fails(
        PrimFunc("f", (A,), BufferStore(A, const(1.0), (ghost,))),
        r"function 'f': variable 'ghost' is used outside the loop or let that binds it "
        r"in `A\[ghost\] = 1.0f`",
    )


def test_loop_variable_used_after_its_loop():
    A = decl_buffer((8,), "float32", "A")
    i, j = Var("i"), Var("j")
    body = seq(
        _loop(i, 8, BufferStore(A, const(0.0), (i,))), _loop(j, 8, BufferStore(A, const(1.0), (i,)))
    )
    _fails(
        PrimFunc("f", (A,), body),
        r"variable 'i' is used outside the loop or let that binds it in `A\[i\] = 1.0f` "
        r"\(inside loop j\)",
    )


def test_loop_variable_bound_twice_in_nested_scope():
    A = decl_buffer((8, 8), "float32", "A")
    i = Var("i")
    body = _loop(i, 8, _loop(i, 8, BufferStore(A, const(0.0), (i, i))))
    _fails(
        PrimFunc("f", (A,), body),
        r"variable 'i' is bound again by a loop inside its own scope in "
        r"`for i in range\(0, 8\):` \(inside loop i\)",
    )


def test_wrong_number_of_indices():
    A = decl_buffer((4, 8), "float32", "A")
    i = Var("i")
    _fails(
        PrimFunc("f", (A,), _loop(i, 8, BufferStore(A, const(0.0), (i,)))),
        r"the store to 'A' indexes buffer 'A' of 2 dimension\(s\) with 1 index\(es\)",
    )
    B = decl_buffer((8,), "float32", "B")
    load = BufferLoad(A, (i,))
    _fails(
        PrimFunc("g", (A, B), _loop(i, 8, BufferStore(B, load, (i,)))),
        r"load `A\[i\]` indexes buffer 'A' of 2 dimension\(s\) with 1 index\(es\)",
    )


def test_vector_store_lane_mismatch():
    A = decl_buffer((16,), "float32", "A")
    store = BufferStore(A, Broadcast(const(1.0), 4), (Ramp(const(0), const(1), 8),))
    _fails(
        PrimFunc("f", (A,), store),
        r"the store to 'A' stores a value of 4 lane\(s\) at 8 location\(s\)",
    )


def test_buffer_used_outside_its_allocation():
    A = decl_buffer((4,), "float32", "A")
    T = decl_buffer((4,), "float32", "T", scope="local")
    i = Var("i")
    body = seq(
        Allocate(T, _loop(i, 4, BufferStore(T, const(0.0), (i,)))),
        _loop(i, 4, BufferStore(A, BufferLoad(T, (i,)), (i,))),
    )
    _fails(
        PrimFunc("f", (A,), body),
        r"load `T\[i\]` uses buffer 'T', which is neither a parameter nor allocated around it",
    )


def test_binary_operands_of_different_dtypes():
    A = decl_buffer((4,), "float32", "A")
    i = Var("i")
    bad = Add(BufferLoad(A, (i,)), IntImm(1, "int32"))  # built directly: no implicit cast
    _fails(
        PrimFunc("f", (A,), _loop(i, 4, BufferStore(A, bad, (i,)))),
        r"Add `A\[i\] \+ 1` has operands of dtypes float32 and int32",
    )


def test_stored_value_of_another_dtype():
    A = decl_buffer((4,), "int32", "A")
    i = Var("i")
    _fails(
        PrimFunc("f", (A,), _loop(i, 4, BufferStore(A, const(1.0), (i,)))),
        r"the store to 'A' stores a float32 value into a int32 buffer",
    )


def test_guard_condition_not_boolean():
    A = decl_buffer((4,), "float32", "A")
    i = Var("i")
    body = _loop(i, 4, IfThenElse(i + 1, BufferStore(A, const(0.0), (i,))))
    _fails(PrimFunc("f", (A,), body), r"the condition of a guard is int32, expected a boolean")


def test_tensor_read_left_in_loop_ir():
    from ember import te

    X = te.placeholder((4,), "float32", name="X")
    A = decl_buffer((4,), "float32", "A")
    i = Var("i")
    read = ProducerLoad(X, (i,))
    _fails(
        PrimFunc("f", (A,), _loop(i, 4, BufferStore(A, read, (i,)))),
        r"tensor 'X' is read as a tensor expression \(`X\[i\]`\), not from a buffer",
    )


# ----------------------------------------------------------------------------- the pipeline


def _drop_outer_loop(func: PrimFunc) -> PrimFunc:
    """A broken pass: replaces the outermost loop by its body (its variable now free)."""
    return dataclasses.replace(func, body=func.body.body)


def _simple_func():
    A = decl_buffer((4, 8), "float32", "A")
    i, j = Var("i"), Var("j")
    return PrimFunc("simple", (A,), _loop(i, 4, _loop(j, 8, BufferStore(A, const(0.0), (i, j)))))


def test_pipeline_names_the_pass_that_broke_the_ir(monkeypatch):
    pipeline = list(tir_passes.PIPELINE)
    pipeline.insert(2, ("drop_outer_loop", _drop_outer_loop))
    monkeypatch.setattr(tir_passes, "PIPELINE", pipeline)
    with pytest.raises(
        VerifyError,
        match=rf"after pass 'drop_outer_loop' \(3 of {len(pipeline)}\): function 'simple': "
        r"variable 'i' is used "
        r"outside the loop or let that binds it",
    ):
        lower_pipeline(_simple_func(), verify=True)
    lower_pipeline(_simple_func(), verify=False)  # unchecked: the broken IR goes through


def test_pipeline_checks_its_input():
    A = decl_buffer((8,), "float32", "A")
    bad = PrimFunc("bad", (A,), BufferStore(A, const(1.0), (Var("ghost"),)))
    with pytest.raises(VerifyError, match=r"the input of lower_pipeline \('bad'\): function 'bad'"):
        lower_pipeline(bad, verify=True)


def test_pipeline_verifies_by_default_under_ember_debug(monkeypatch):
    pipeline = [*tir_passes.PIPELINE, ("drop_outer_loop", _drop_outer_loop)]
    monkeypatch.setattr(tir_passes, "PIPELINE", pipeline)
    monkeypatch.setattr(
        ember.config, "config", dataclasses.replace(ember.config.config, debug=True)
    )
    with pytest.raises(VerifyError, match=r"after pass 'drop_outer_loop'"):
        lower_pipeline(_simple_func())
    monkeypatch.setattr(
        ember.config, "config", dataclasses.replace(ember.config.config, debug=False)
    )
    lower_pipeline(_simple_func())


# ----------------------------------------------------------------------------- lowered code


def _tutorial_schedules():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "matmul.py"
    spec = importlib.util.spec_from_file_location("ember_bench_matmul_verify", path)
    matmul = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(matmul)
    return [
        matmul.schedule_naive(5, 7, 3),
        matmul.schedule_tiled(40, 36, 10),
        matmul.schedule_packed(70, 64, 24),
        matmul.schedule_tensorized(64, 64, 40),
    ]


def _conv_schedule():
    from ember import te

    A = te.placeholder((1, 3, 9, 13), "float32", name="A")
    W = te.placeholder((4, 3, 3, 3), "float32", name="W")
    P = te.compute(
        (1, 3, 11, 15),
        lambda b, c, y, x: te.if_then_else(
            te.all(y >= 1, y < 10, x >= 1, x < 14), A[b, c, y - 1, x - 1], 0.0
        ),
        name="P",
    )
    rc, ry, rx = (te.reduce_axis((0, n), name=v) for n, v in ((3, "rc"), (3, "ry"), (3, "rx")))
    C = te.compute(
        (1, 4, 9, 13),
        lambda b, f, y, x: te.sum(P[b, rc, y + ry, x + rx] * W[f, rc, ry, rx], axis=[rc, ry, rx]),
        name="C",
    )
    s = te.create_schedule(C.op)
    s[P].compute_at(s[C], C.op.axis[2])
    xo, xi = s[C].split(C.op.axis[3], factor=8)
    s[C].reorder(*C.op.axis[:3], xo, xi, rc, ry, rx)
    s[C].vectorize(xi)
    s[C].parallel(C.op.axis[1])
    return s, [A, W, C]


def test_lowered_schedules_pass_the_verifier_after_every_pass():
    for s, args in [*_tutorial_schedules(), _conv_schedule()]:
        lower_pipeline(ember.lower(s, args, simple_mode=True), verify=True)


def test_zoo_kernels_pass_the_verifier_through_compile(monkeypatch):
    # ember.compile with EMBER_DEBUG's setting on: every kernel's IR is verified after
    # every loop IR pass (counted, so the test cannot pass without verifying).
    from ember.testing import zoo

    checked = []

    def counting(func):
        checked.append(func.name)
        verify(func)

    monkeypatch.setattr(tir_passes, "verify_func", counting)
    config = ember.config.config
    monkeypatch.setattr(ember.config, "config", dataclasses.replace(config, debug=True))
    mod, params = zoo.get("resnet18", **zoo.SMALL["resnet18"])
    ember.compile(mod, params, target="host")
    assert len(set(checked)) >= 10
