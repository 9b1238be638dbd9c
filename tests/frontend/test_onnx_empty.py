"""ONNX models with empty tensors (a zero-sized dimension), compiled and run.

Exported models make them: rotary embeddings split off an empty tail, a KV cache
starts empty, ConstantOfShape builds an empty buffer. The reference and the
compiled artifact must both match onnxruntime, with empty inputs and outputs
crossing the runtime.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

import ember
from tests.frontend.onnx_testlib import make_model, run_onnxruntime


def test_empty_split_constant_of_shape_and_cache() -> None:
    rng = np.random.default_rng()
    zero_f = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        # A split with an empty middle part, each part through an op.
        helper.make_node("Split", ["x", "parts"], ["a", "b", "c"], axis=1),
        helper.make_node("Relu", ["b"], ["b_relu"]),
        helper.make_node("Concat", ["a", "b_relu", "c"], ["joined"], axis=1),
        # An empty ConstantOfShape, concatenated onto the data (a cache that starts empty).
        helper.make_node("ConstantOfShape", ["empty_shape"], ["empty"], value=zero_f),
        helper.make_node("Concat", ["empty", "x"], ["cache"], axis=0),
        # A reduction over the empty axis of an empty model input.
        helper.make_node("ReduceSum", ["past", "axis1"], ["past_sum"], keepdims=0),
        helper.make_node("MatMul", ["x", "past_t"], ["no_k"]),
    ]
    initializers = {
        "parts": np.array([2, 0, 2], np.int64),
        "empty_shape": np.array([0, 4], np.int64),
        "axis1": np.array([1], np.int64),
    }
    inputs = {"x": ((2, 4), "float32"), "past": ((3, 0), "float32"), "past_t": ((4, 0), "float32")}
    outputs = ["joined", "b_relu", "empty", "cache", "past_sum", "no_k"]
    model = make_model(nodes, inputs, outputs, initializers, opset=18)
    feeds = {
        "x": rng.standard_normal((2, 4)).astype(np.float32),
        "past": np.zeros((3, 0), np.float32),
        "past_t": np.zeros((4, 0), np.float32),
    }
    want = run_onnxruntime(model, feeds)
    mod, params = ember.frontend.from_onnx(model)
    reference = ember.graph.interpret(mod, params, feeds)
    compiled = ember.compile(mod, params).load().run(feeds)
    for name, w, r, c in zip(outputs, want, reference, compiled, strict=True):
        for path, got in (("reference", r), ("compiled", c)):
            assert got.shape == w.shape and got.dtype == w.dtype, f"{path} {name}"
            np.testing.assert_allclose(got, w, rtol=1e-6, err_msg=f"{path} {name}")
