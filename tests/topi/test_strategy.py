"""The strategy contract (argument order, shapes, tuple outputs), the schedules each kind
of kernel gets (parallel outer loops, vector inner loops), and the errors users can hit."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.errors import ScheduleError
from ember.graph.ir import Constant, Function, TensorType, TupleGetItem, Var
from ember.ops import call, get_op
from ember.target import Target
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")


F = "float32"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng()


def _func(body, params):
    return Function(tuple(params), body, {"primitive": True, "name": "k"})


def test_args_are_params_then_outputs():
    x, w = Var("x", TensorType((1, 8, 6, 6))), Var("w", TensorType((8, 8, 3, 3)))
    func = _func(call("nn.relu", call("nn.conv2d", x, w, padding=1)), [x, w])
    s, args = schedule_primitive(func, HOST)
    assert [tuple(int(d.value) for d in a.shape) for a in args] == [
        (1, 8, 6, 6),
        (8, 8, 3, 3),
        (1, 8, 6, 6),
    ]
    assert [a.dtype for a in args] == [F, F, F]
    assert args[0].op.name == "p0" and args[1].op.name == "p1"


def test_tuple_result_gives_one_output_per_field(rng):
    x = Var("x", TensorType((2, 7, 3), "int32"))
    parts = call("split", x, sections=(3, 4), axis=1)
    func = _func(parts, [x])
    s, args = schedule_primitive(func, HOST)
    assert len(args) == 3
    kernel = ember.build(s, args, name="split_kernel")
    a = rng.integers(-9, 9, (2, 7, 3)).astype("int32")
    outs = [np.zeros((2, 3, 3), "int32"), np.zeros((2, 4, 3), "int32")]
    kernel(a, *outs)
    np.testing.assert_array_equal(outs[0], a[:, :3])
    np.testing.assert_array_equal(outs[1], a[:, 3:])


def test_output_that_is_a_tuple_field_passthrough(rng):
    # split then tanh of one part: the untouched part is still its own output buffer.
    x = Var("x", TensorType((4, 6)))
    parts = call("split", x, sections=(2, 4), axis=1)
    from ember.graph.ir import Tuple

    body = Tuple((TupleGetItem(parts, 0), call("tanh", TupleGetItem(parts, 1))))
    s, args = schedule_primitive(_func(body, [x]), HOST)
    kernel = ember.build(s, args, name="split_tanh")
    a = rng.standard_normal((4, 6)).astype(F)
    outs = [np.zeros((4, 2), F), np.zeros((4, 4), F)]
    kernel(a, *outs)
    np.testing.assert_allclose(outs[0], a[:, :2])
    np.testing.assert_allclose(outs[1], np.tanh(a[:, 2:]), rtol=1e-5, atol=1e-6)


def test_scalar_constant_inside_kernel(rng):
    x = Var("x", TensorType((3, 5)))
    body = call(
        "add", call("multiply", x, Constant(np.array(2.5, F))), Constant(np.ones((1, 1), F))
    )
    s, args = schedule_primitive(_func(body, [x]), HOST)
    kernel = ember.build(s, args, name="scalar_consts")
    a = rng.standard_normal((3, 5)).astype(F)
    out = np.zeros((3, 5), F)
    kernel(a, out)
    # a*2.5 + 1 compiles to one FMA (one rounding; numpy rounds twice): float32 tolerance.
    np.testing.assert_allclose(out, a * 2.5 + 1, rtol=1e-5, atol=1e-6)


def _lowered(body, params) -> str:
    s, args = schedule_primitive(_func(body, params), HOST)
    return str(ember.lower(s, args, name="k"))


def test_conv_epilogue_is_one_parallel_vectorized_loop_nest():
    x, w, b = (
        Var("x", TensorType((1, 16, 14, 14))),
        Var("w", TensorType((16, 16, 3, 3))),
        Var("b", TensorType((16,))),
    )
    text = _lowered(call("nn.relu", call("nn.conv2d", x, w, b, padding=1)), [x, w, b])
    assert "parallel" in text
    assert "ramp(" in text  # vector code
    assert "'local'" in text  # the conv accumulates in a local buffer inside the output loop


def test_injective_chain_is_inlined_into_one_loop_nest():
    x = Var("x", TensorType((4, 8, 16, 16)))
    t = call("transpose", call("nn.relu", x), axes=(0, 2, 1, 3))
    text = _lowered(call("exp", t), [x])
    assert text.count("parallel") == 1
    assert "allocate" not in text
    assert "ramp(" in text


def test_pool_gets_parallel_vectorized_loops():
    x = Var("x", TensorType((1, 8, 32, 32)))
    text = _lowered(call("nn.max_pool2d", x, pool_size=2, strides=2), [x])
    assert "parallel" in text and "ramp(" in text


def test_tiny_kernel_stays_serial():
    # Waking the thread pool costs more than 24 additions.
    x = Var("x", TensorType((2, 12)))
    text = _lowered(call("exp", x), [x])
    assert "parallel" not in text and "ramp(" in text


def test_constant_too_large_is_rejected():
    x = Var("x", TensorType((2, 3)))
    body = call("add", x, Constant(np.ones((2, 3), F)))
    with pytest.raises(ScheduleError, match="only single-element constants"):
        schedule_primitive(_func(body, [x]), HOST)


def test_free_variable_is_rejected():
    x, y = Var("x", TensorType((2, 3))), Var("y", TensorType((2, 3)))
    with pytest.raises(ScheduleError, match="free variable 'y'"):
        schedule_primitive(_func(call("add", x, y), [x]), HOST)


def test_op_without_compute_is_rejected(monkeypatch):
    import ember.topi.strategy  # noqa: F401  (the operator library registers its computes)

    op = get_op("nn.relu")
    monkeypatch.delitem(op.extensions, "compute")
    x = Var("x", TensorType((2, 3)))
    with pytest.raises(ScheduleError, match="op nn.relu .* has no TE compute"):
        schedule_primitive(_func(call("nn.relu", x), [x]), HOST)


def test_bad_target_string():
    # Strategies take parsed targets; a bad string is refused where it enters.
    from ember.errors import TargetError

    x = Var("x", TensorType((2, 3)))
    s, args = schedule_primitive(_func(call("nn.relu", x), [x]), HOST)
    with pytest.raises(TargetError, match="unknown target"):
        ember.build(s, args, target="tpu")
