"""The numpy reference executor: results, input checking, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from ember.errors import EmberRuntimeError
from ember.graph import Call, Constant, Function, Module, Tuple, TupleGetItem, const, interpret
from ember.ops import call
from tests.graph.graph_testlib import random_array, tensor


def _conv_model() -> Module:
    data = tensor("data", 1, 3, 6, 6)
    weight = tensor("w", 4, 3, 3, 3)
    conv = call("nn.conv2d", data, weight, padding=1)
    return Module.from_function(Function((data, weight), call("nn.relu", conv)))


def _conv_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((1, 4, 6, 6))
    for i in range(6):
        for j in range(6):
            out[0, :, i, j] = np.einsum("chw,ochw->o", xp[0, :, i : i + 3, j : j + 3], w)
    return np.maximum(out, 0).astype(np.float32)


def test_runs_main_with_params_bound_by_name() -> None:
    rng = np.random.default_rng()
    x, w = random_array(rng, (1, 3, 6, 6)), random_array(rng, (4, 3, 3, 3))
    (out,) = interpret(_conv_model(), {"w": w}, {"data": x})
    np.testing.assert_allclose(out, _conv_reference(x, w), rtol=1e-5, atol=1e-5)
    # Weights may also be passed as inputs, and a Function runs like its module.
    (again,) = interpret(_conv_model().main, None, {"data": x, "w": w})
    np.testing.assert_array_equal(again, out)


def test_tuple_outputs_are_flattened_in_order() -> None:
    x = tensor("x", 2, 3)
    relu = call("nn.relu", x)
    nested = Tuple((relu, Tuple((x, call("negative", x))), relu))
    data = np.random.default_rng().standard_normal((2, 3)).astype(np.float32)
    outs = interpret(Module.from_function(Function((x,), nested)), {}, {"x": data})
    assert len(outs) == 4
    np.testing.assert_array_equal(outs[0], np.maximum(data, 0))
    np.testing.assert_array_equal(outs[1], data)
    np.testing.assert_array_equal(outs[2], -data)
    np.testing.assert_array_equal(outs[3], outs[0])
    # Outputs never alias the caller's input or each other.
    assert outs[1] is not data and outs[3] is not outs[0]


def test_split_tuple_get_item_and_constants() -> None:
    x = tensor("x", 4)
    parts = call("split", x, sections=(1, 3))
    c = Constant(np.arange(3, dtype=np.float32))
    body = call("add", TupleGetItem(parts, 1), c)
    data = np.random.default_rng().standard_normal(4).astype(np.float32)
    (out,) = interpret(Module.from_function(Function((x,), body)), {}, {"x": data})
    np.testing.assert_array_equal(out, data[1:] + np.arange(3, dtype=np.float32))


def test_output_that_is_a_constant_is_a_writable_copy() -> None:
    x = tensor("x", 2)
    c = const([1.0, 2.0], "float32")
    (out,) = interpret(Module.from_function(Function((x,), c)), {}, {"x": [0.0, 0.0]})
    assert out.flags.writeable
    out[0] = 5.0
    assert c.value[0] == 1.0


def test_calls_of_fused_functions() -> None:
    p0, p1 = tensor("p0", 2, 3), tensor("p1", 3)
    kernel = Function((p0, p1), call("nn.relu", call("add", p0, p1)), {"primitive": True})
    x, b = tensor("x", 2, 3), tensor("b", 3)
    body = Call(kernel, (Call(kernel, (x, b), None), b), None)
    rng = np.random.default_rng()
    xv, bv = random_array(rng, (2, 3)), random_array(rng, (3,))
    (out,) = interpret(Module.from_function(Function((x, b), body)), {"b": bv}, {"x": xv})
    np.testing.assert_allclose(out, np.maximum(np.maximum(xv + bv, 0) + bv, 0))


def test_python_lists_and_scalars_are_converted() -> None:
    x, s = tensor("x", 2), tensor("s")
    mod = Module.from_function(Function((x, s), call("multiply", x, s)))
    (out,) = interpret(mod, {}, {"x": [1, 2], "s": 3})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [3.0, 6.0])


def test_missing_input() -> None:
    with pytest.raises(
        EmberRuntimeError, match=r"missing input\(s\): 'data' Tensor\[\(1, 3, 6, 6\)"
    ):
        interpret(_conv_model(), {"w": np.zeros((4, 3, 3, 3), np.float32)}, {})


def test_missing_weight_is_named_too() -> None:
    with pytest.raises(EmberRuntimeError, match=r"missing input\(s\): 'w' Tensor\[\(4, 3, 3, 3\)"):
        interpret(_conv_model(), {}, {"data": np.zeros((1, 3, 6, 6), np.float32)})


def test_unknown_input_name_lists_the_expected_ones() -> None:
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(
        EmberRuntimeError,
        match=r"unknown input name\(s\) 'input'; the model expects 'data' Tensor\[\(1, 3, 6, 6\)",
    ):
        interpret(_conv_model(), {"w": w}, {"input": np.zeros((1, 3, 6, 6), np.float32)})


def test_wrong_shape() -> None:
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(
        EmberRuntimeError, match=r"input 'data' has shape \(1, 3, 7, 7\), expected \(1, 3, 6, 6\)"
    ):
        interpret(_conv_model(), {"w": w}, {"data": np.zeros((1, 3, 7, 7), np.float32)})


def test_wrong_dtype_is_not_cast() -> None:
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(
        EmberRuntimeError, match=r"input 'data' has dtype float64, expected float32(.|\n)*astype"
    ):
        interpret(_conv_model(), {"w": w}, {"data": np.zeros((1, 3, 6, 6))})
    with pytest.raises(EmberRuntimeError, match="parameter 'w' has dtype int64, expected float32"):
        interpret(_conv_model(), {"w": w.astype(np.int64)}, {"data": np.zeros((1, 3, 6, 6), "f4")})


def test_unconvertible_inputs() -> None:
    x = tensor("x", 2)
    mod = Module.from_function(Function((x,), call("nn.relu", x)))
    with pytest.raises(EmberRuntimeError, match="input 'x' is a str; expected a numpy array"):
        interpret(mod, {}, {"x": "hello"})
    with pytest.raises(EmberRuntimeError, match="input 'x': cannot convert the given list"):
        interpret(mod, {}, {"x": [[1, 2], [3]]})


def test_intermediates_are_freed_after_their_last_use() -> None:
    # 40 elementwise ops on a 4 MB tensor: keeping every intermediate would need 160 MB.
    x = tensor("x", 1024, 1024)
    y = x
    for i in range(40):
        y = call("negative" if i % 2 else "abs", y)
    mod = Module.from_function(Function((x,), y))
    data = np.random.default_rng().standard_normal((1024, 1024)).astype(np.float32)
    tracemalloc.start()
    try:
        (out,) = interpret(mod, {}, {"x": data})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, -np.abs(data))
    assert peak < 5 * data.nbytes, f"peak {peak / 2**20:.0f} MiB"
