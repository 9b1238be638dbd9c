"""ONNX ScatterElements / ScatterND with constant indices, reference and compiled,
against onnxruntime on random data: negative and repeated indices, every reduction,
slice assignment (ScatterND into a prefix of the axes)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ember.frontend import from_onnx
from ember.frontend.onnx import NotStaticError
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

SHAPE = (4, 5, 3)


def _check(op: str, indices: np.ndarray, updates_shape, **attrs) -> None:
    rng = np.random.default_rng()
    feeds = {
        "x": rng.standard_normal(SHAPE).astype("float32"),
        "u": rng.standard_normal(updates_shape).astype("float32"),
    }
    nodes = [helper.make_node(op, ["x", "i", "u"], ["y"], **attrs)]
    inputs = {"x": (SHAPE, "float32"), "u": (updates_shape, "float32")}
    model = make_model(nodes, inputs, ["y"], {"i": indices}, opset=18)
    (want,) = run_onnxruntime(model, feeds)
    mod, params = from_onnx(model)
    for got in (interpret(mod, params, feeds)[0], compile_and_load(mod, params)(feeds)[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements(reduction: str) -> None:
    rng = np.random.default_rng()
    if reduction == "none":  # distinct targets along axis 1 (duplicates are undefined)
        indices = np.stack([rng.permutation(5)[:2] for _ in range(4 * 3)]).reshape(4, 3, 2)
        indices = indices.transpose(0, 2, 1) - 5 * (rng.random((4, 2, 3)) < 0.5)  # negatives
    else:  # repeated targets combine
        indices = rng.integers(-5, 5, (4, 2, 3))
    _check("ScatterElements", indices.astype(np.int64), (4, 2, 3), axis=1, reduction=reduction)


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_nd_slices(reduction: str) -> None:
    # rows (i, j) of the (4, 5, 3) data, each a slice of 3; repeats only when reducing
    indices = np.array([[0, 1], [3, -1], [2, 2]] + ([[0, 1]] if reduction != "none" else []))
    _check("ScatterND", indices, (len(indices), 3), reduction=reduction)


def test_scatter_nd_whole_planes() -> None:
    _check("ScatterND", np.array([[2], [0]]), (2, 5, 3))


def test_runtime_indices_are_refused() -> None:
    nodes = [helper.make_node("ScatterND", ["x", "i", "u"], ["y"])]
    inputs = {"x": (SHAPE, "float32"), "i": ((2, 1), "int64"), "u": ((2, 5, 3), "float32")}
    with pytest.raises(NotStaticError, match="ScatterND.*indices"):
        from_onnx(make_model(nodes, inputs, ["y"], opset=18))
