"""cf.if / cf.loop in the graph IR: printer, verifier, structural equality, type rules,
the reference executor, and the passes that work inside bodies."""

from __future__ import annotations

import numpy as np
import pytest

from ember.errors import EmberRuntimeError, ShapeError, VerifyError
from ember.graph import interpret, structural_equal, structural_hash, verify
from ember.graph.ir import (
    Call,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    Var,
    const,
    print_module,
)
from ember.graph.passes import optimize
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.visitor import post_order
from ember.ops import call

T = TensorType((2, 3), "float32")
COND = TensorType((), "bool")
ITER = TensorType((), "int64")


def if_module(weight_as_param: bool = True) -> Module:
    """relu(cf.if(c, x, w) then x + w else x - w)."""
    c, x, w = Var("c", COND), Var("x", T), Var("w", T)
    a, b = Var("a", T), Var("b", T)
    a2, b2 = Var("a", T), Var("b", T)
    then_fn = Function((a, b), call("add", a, b, name="add"), {"name": "then"})
    else_fn = Function((a2, b2), call("subtract", a2, b2, name="sub"), {"name": "else"})
    y = call("cf.if", c, x, w, then_branch=then_fn, else_branch=else_fn, name="if")
    return Module.from_function(Function((c, x, w), call("nn.relu", y, name="relu")))


def loop_module(scan_length: int = 3) -> Module:
    """acc <- acc * x + i; scan rows: acc; trip count and x are inputs."""
    trip, acc0, x = Var("trip", ITER), Var("acc0", T), Var("x", T)
    i, c, acc, xx = Var("i", ITER), Var("c", COND), Var("acc", T), Var("xx", T)
    step = call("add", call("multiply", acc, xx), call("cast", i, dtype="float32"))
    body = Function((i, c, acc, xx), Tuple((c, step, step)), {"name": "body"})
    out = call(
        "cf.loop", trip, const(True), acc0, x, body=body, num_carried=1, scan_length=scan_length
    )
    return Module.from_function(Function((trip, acc0, x), out))


rng = np.random.default_rng()


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_printer_shows_the_bodies_before_the_call():
    text = print_module(if_module())
    assert "%0 = fn then(%a: Tensor[(2, 3), float32], %b: Tensor[(2, 3), float32])" in text
    assert "%2 = cf.if(%c, %x, %w, then_branch=%0, else_branch=%1) /* if */" in text
    loop_text = print_module(loop_module())
    assert "cf.loop(%trip, True, %acc0, %x, body=%0, num_carried=1, scan_length=3)" in loop_text


def test_reference_runs_the_branch_the_condition_picks():
    x, w = rand(2, 3), rand(2, 3)
    for c, want in ((True, x + w), (False, x - w)):
        (out,) = interpret(if_module(), {}, {"c": np.array(c), "x": x, "w": w})
        np.testing.assert_allclose(out, np.maximum(want, 0), rtol=1e-6)


def test_reference_runs_the_loop_and_stacks_scan_rows():
    acc0, x = rand(2, 3), rand(2, 3)
    final, rows = interpret(loop_module(), {}, {"trip": np.array(3), "acc0": acc0, "x": x})
    acc, want = acc0, []
    for i in range(3):
        acc = acc * x + np.float32(i)
        want.append(acc)
    np.testing.assert_allclose(final, acc, rtol=1e-6)
    np.testing.assert_allclose(rows, np.stack(want), rtol=1e-6)


def test_a_loop_that_runs_fewer_iterations_than_its_scan_rows_is_an_error():
    with pytest.raises(EmberRuntimeError, match="ran 2 iteration.*3 rows"):
        interpret(loop_module(), {}, {"trip": np.array(2), "acc0": rand(2, 3), "x": rand(2, 3)})


def test_type_rules_name_what_does_not_match():
    c, x = Var("c", COND), Var("x", T)
    a, b = Var("a", T), Var("b", T)
    then_fn = Function((a,), a)
    reshaped = Function((b,), call("reshape", b, newshape=(3, 2)))
    with pytest.raises(ShapeError, match="branches return different types"):
        call("cf.if", c, x, then_branch=then_fn, else_branch=reshaped)
    with pytest.raises(ShapeError, match="condition must be a one-element bool"):
        call("cf.if", x, x, then_branch=then_fn, else_branch=then_fn)
    i, cc, acc = Var("i", ITER), Var("c", COND), Var("acc", T)
    grows = Function((i, cc, acc), Tuple((cc, call("concatenate", acc, acc, axis=0))))
    with pytest.raises(ShapeError, match="carried value 0 .*enters as.*returns"):
        call("cf.loop", const(np.int64(2)), const(True), x, body=grows, num_carried=1)


def test_verifier_checks_bodies_as_closed_functions():
    c, x, outer = Var("c", COND), Var("x", T), Var("outer", T)
    a = Var("a", T)
    leaky = Function((a,), call("add", a, outer))  # reads a value of the enclosing graph
    b = Var("b", T)
    closed = Function((b,), b)
    y = call("cf.if", c, x, then_branch=leaky, else_branch=closed, name="if")
    mod = Module.from_function(Function((c, x, outer), y))
    with pytest.raises(VerifyError, match=r"cf.if node 'if' then_branch: free variable %outer"):
        verify(mod)


def test_structural_equality_compares_bodies():
    assert structural_equal(if_module(), if_module())
    assert structural_hash(if_module()) == structural_hash(if_module())
    assert not structural_equal(if_module(), loop_module())
    other = if_module()
    main = other.main
    (if_call,) = [n for n in post_order(main) if isinstance(n, Call) and n.op.name == "cf.if"]
    swapped = call(
        "cf.if",
        *if_call.args,
        then_branch=if_call.attrs.else_branch,
        else_branch=if_call.attrs.then_branch,
    )
    swapped_mod = Module.from_function(Function(main.params, call("nn.relu", swapped)))
    assert not structural_equal(if_module(), swapped_mod)


def test_optimize_resolves_a_constant_condition_and_sinks_weights():
    mod = if_module()
    w = rand(2, 3)
    opt = optimize(mod, {"c": np.array(False), "w": w})
    ops = [n.op.name for n in post_order(opt.main) if isinstance(n, Call)]
    assert "cf.if" not in ops and "subtract" in ops
    x = rand(2, 3)
    (out,) = interpret(opt, {}, {"x": x})
    np.testing.assert_allclose(out, np.maximum(x - w, 0), rtol=1e-6)


def test_constant_captures_move_into_the_body():
    mod = loop_module()
    x = rand(2, 3)
    opt = optimize(mod, {"x": x})
    (loop,) = [n for n in post_order(opt.main) if isinstance(n, Call) and n.op.name == "cf.loop"]
    assert len(loop.args) == 3 and len(loop.attrs.body.params) == 3  # x is inside now
    acc0 = rand(2, 3)
    got = interpret(opt, {}, {"trip": np.array(3), "acc0": acc0})
    want = interpret(mod, {}, {"trip": np.array(3), "acc0": acc0, "x": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_fuse_ops_keeps_control_flow_and_fuses_its_bodies():
    fused = fuse_ops(if_module())
    calls = [n for n in post_order(fused.main) if isinstance(n, Call)]
    assert [c.op.name for c in calls if not isinstance(c.op, Function)] == ["cf.if"]
    (if_call,) = [c for c in calls if not isinstance(c.op, Function)]
    for branch in (if_call.attrs.then_branch, if_call.attrs.else_branch):
        (kernel,) = [n for n in post_order(branch) if isinstance(n, Call)]
        assert isinstance(kernel.op, Function) and kernel.op.is_primitive
    # kernels(): main's relu, with the branches' kernels listed where the cf.if runs
    names = [k.op.name for k in kernels(fused)]
    assert names == ["fused_add", "fused_subtract", "fused_nn_relu"]
    x, w = rand(2, 3), rand(2, 3)
    for c in (True, False):
        feeds = {"c": np.array(c), "x": x, "w": w}
        np.testing.assert_allclose(
            interpret(fused, {}, feeds)[0], interpret(if_module(), {}, feeds)[0], rtol=1e-6
        )


def test_a_loop_result_read_by_tuple_get_item_fuses_downstream():
    mod = loop_module()
    final = TupleGetItem(mod.main.body, 0)
    relu = Module.from_function(Function(mod.main.params, call("nn.relu", final)))
    fused = fuse_ops(relu)
    feeds = {"trip": np.array(3), "acc0": rand(2, 3), "x": rand(2, 3)}
    np.testing.assert_allclose(
        interpret(fused, {}, feeds)[0], interpret(relu, {}, feeds)[0], rtol=1e-6
    )
