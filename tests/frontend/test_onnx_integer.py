"""ONNX MatMulInteger and ConvInteger (dynamically quantized models), reference and
compiled, bit-exact against onnxruntime on random uint8/int8 data and zero points
(scalar, per row of A, per column of B, per output channel of the weight)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from ember.frontend import from_onnx
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime


def _random(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def _check_exact(model, feeds: dict[str, np.ndarray], want: np.ndarray | None = None) -> None:
    """Against onnxruntime, or ``want`` where onnxruntime refuses (it takes only scalar
    zero points)."""
    if want is None:
        (want,) = run_onnxruntime(model, feeds)
    mod, params = from_onnx(model)
    for got in (interpret(mod, params, feeds)[0], compile_and_load(mod, params)(feeds)[0]):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("a_dtype", "b_dtype", "a_zp_shape", "b_zp_shape"),
    [
        ("uint8", "uint8", (), ()),
        ("uint8", "int8", (5,), (7,)),  # per row of A, per column of B
        ("int8", "int8", None, (1,)),  # A's zero point omitted
    ],
)
def test_matmul_integer(a_dtype, b_dtype, a_zp_shape, b_zp_shape) -> None:
    rng = np.random.default_rng()
    feeds = {"a": _random(rng, (2, 5, 9), a_dtype), "b": _random(rng, (9, 7), b_dtype)}
    inits = {"b_zp": _random(rng, b_zp_shape, b_dtype)}
    inputs = ["a", "b", "", "b_zp"]
    if a_zp_shape is not None:
        inits["a_zp"] = _random(rng, a_zp_shape, a_dtype)
        inputs[2] = "a_zp"
    nodes = [helper.make_node("MatMulInteger", inputs, ["y"])]
    model = make_model(
        nodes, {"a": ((2, 5, 9), a_dtype), "b": ((9, 7), b_dtype)}, ["y"], inits, opset=10
    )
    want = None
    if a_zp_shape == (5,):  # numpy, in int64
        a = feeds["a"].astype(np.int64) - inits["a_zp"].astype(np.int64)[:, None]
        want = (a @ (feeds["b"].astype(np.int64) - inits["b_zp"])).astype(np.int32)
    _check_exact(model, feeds, want)


@pytest.mark.parametrize("w_zp_shape", [(), (4,)])
def test_conv_integer(w_zp_shape) -> None:
    rng = np.random.default_rng()
    feeds = {"x": _random(rng, (1, 3, 8, 7), "uint8")}
    inits = {
        "w": _random(rng, (4, 3, 3, 3), "uint8"),
        "x_zp": _random(rng, (), "uint8"),
        "w_zp": _random(rng, w_zp_shape, "uint8"),
    }
    nodes = [
        helper.make_node(
            "ConvInteger", ["x", "w", "x_zp", "w_zp"], ["y"], pads=[1, 0, 1, 2], strides=[2, 1]
        )
    ]
    model = make_model(nodes, {"x": ((1, 3, 8, 7), "uint8")}, ["y"], inits, opset=10)
    want = ReferenceEvaluator(model).run(None, feeds)[0] if w_zp_shape == (4,) else None
    _check_exact(model, feeds, want)
