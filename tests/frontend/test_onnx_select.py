"""ONNX ReverseSequence and Compress, reference and compiled, against onnxruntime on
random data (ReverseSequence's lengths are a runtime input, zero and full lengths
included; Compress's condition is a constant, an all-false one gives an empty axis)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ember.frontend import from_onnx
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime


def _check(model, feeds: dict[str, np.ndarray]) -> None:
    (want,) = run_onnxruntime(model, feeds)
    mod, params = from_onnx(model)
    for got in (interpret(mod, params, feeds)[0], compile_and_load(mod, params)(feeds)[0]):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("batch_axis", "time_axis"), [(0, 1), (1, 0)])
def test_reverse_sequence(batch_axis: int, time_axis: int) -> None:
    rng = np.random.default_rng()
    shape = [0, 0, 3]
    shape[batch_axis], shape[time_axis] = 5, 6
    lens = rng.integers(1, 7, 5).astype(np.int64)
    lens[:2] = (1, 6)  # a one-step sequence is unchanged, a full one fully reversed
    feeds = {"x": rng.standard_normal(shape).astype("float32"), "lens": lens}
    nodes = [
        helper.make_node(
            "ReverseSequence", ["x", "lens"], ["y"], batch_axis=batch_axis, time_axis=time_axis
        )
    ]
    model = make_model(nodes, {"x": (shape, "float32"), "lens": ((5,), "int64")}, ["y"])
    _check(model, feeds)


@pytest.mark.parametrize(
    ("condition", "axis"),
    [([1, 0, 1, 1], 1), ([0, 1], 0), ([0, 0, 0, 0, 0], None), ([1, 0, 0, 1, 1, 0, 1], None)],
)
def test_compress(condition: list[int], axis: int | None) -> None:
    x = np.random.default_rng().integers(-9, 9, (3, 4)).astype("int32")
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("Compress", ["x", "c"], ["y"], **attrs)]
    inits = {"c": np.array(condition, bool)}
    model = make_model(nodes, {"x": ((3, 4), "int32")}, ["y"], inits, opset=11)
    _check(model, {"x": x})
