"""float16 models: reference and compiled within float16 tolerance of float32 arithmetic.

ember's float16 semantics (docs/ops.md): every op rounds its result to float16 once;
inside an op, sums (reductions, matmul / dense / conv, softmax, the mean and variance
of normalizations) accumulate in float32. That is what onnxruntime does, and what keeps
long sums right: a float16 running sum of 4096 terms near 1 stops growing at 2048.

Each model here is run three ways on fresh random data: as the float32 model in
onnxruntime (the float32-accumulating oracle), through ember's reference executor,
and compiled. Both ember paths must be within float16 tolerance of the oracle.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ember
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

# Each op rounds to float16 (rel. 2**-11) and the oracle's result is rounded once more.
RTOL, ATOL = 8e-3, 4e-3


def _as_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with every float16 tensor type and initializer made float32."""
    f32 = onnx.ModelProto()
    f32.CopyFrom(model)
    graph = f32.graph
    for vi in (*graph.input, *graph.output, *graph.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT16:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT16:
            value = onnx.numpy_helper.to_array(init).astype(np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(value, init.name))
    return f32


def _check(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    oracle = run_onnxruntime(
        _as_float32(model), {k: v.astype(np.float32) for k, v in feeds.items()}
    )
    shapes = {k: v.shape for k, v in feeds.items()}
    mod, params = ember.frontend.from_onnx(model, shape=shapes)
    reference = ember.graph.interpret(mod, params, feeds)
    compiled = ember.compile(mod, params).load().run(feeds)
    for k, want in enumerate(oracle):
        for path, got in (("reference", reference[k]), ("compiled", compiled[k])):
            assert got.dtype == np.float16, path
            np.testing.assert_allclose(
                got.astype(np.float32), want, rtol=RTOL, atol=ATOL, err_msg=f"{path} output {k}"
            )


def _f16(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float16)


def test_attention_long_rows() -> None:
    """softmax(q k^T / 8) v over 4096 keys: the softmax sum runs over 4096 terms near 1
    (a float16 sum would stop at 2048 and halve every probability)."""
    rng = np.random.default_rng()
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["y"]),
    ]
    shapes = {"q": (2, 16, 64), "k": (2, 4096, 64), "v": (2, 4096, 64)}
    inputs = {n: (shape, "float16") for n, shape in shapes.items()}
    scale = {"scale": np.array(0.125, np.float16)}
    model = make_model(nodes, inputs, ["y"], scale, opset=17)
    _check(model, {n: _f16(rng, shape, 0.3) for n, shape in shapes.items()})


def test_long_sum_and_mean() -> None:
    """ReduceSum / ReduceMean over 4096 values near 1 (float16 sums would stall at 2048)."""
    rng = np.random.default_rng()
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
    ]
    axes = {"axes": np.array([1], np.int64)}
    model = make_model(nodes, {"x": ((3, 4096), "float16")}, ["s", "m"], axes, opset=18)
    _check(model, {"x": (1 + rng.random((3, 4096)) * 0.01).astype(np.float16)})


def test_layer_norm_of_large_values() -> None:
    """LayerNormalization of values spread by 300: float16 squares (> 65504) would be inf."""
    rng = np.random.default_rng()
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    weights = {"g": _f16(rng, (768,)), "b": _f16(rng, (768,))}
    model = make_model([node], {"x": ((4, 768), "float16")}, ["y"], weights, opset=17)
    _check(model, {"x": (rng.standard_normal((4, 768)) * 300).astype(np.float16)})


@pytest.mark.parametrize("op", ["InstanceNormalization", "GroupNormalization"])
def test_channel_norms(op: str) -> None:
    rng = np.random.default_rng()
    attrs = {"num_groups": 2} if op == "GroupNormalization" else {}
    node = helper.make_node(op, ["x", "g", "b"], ["y"], **attrs)
    weights = {"g": _f16(rng, (8,)), "b": _f16(rng, (8,))}
    model = make_model([node], {"x": ((2, 8, 32, 32), "float16")}, ["y"], weights, opset=21)
    _check(model, {"x": (100 + _f16(rng, (2, 8, 32, 32), 20)).astype(np.float16)})


def test_conv_gemm_and_lrn() -> None:
    """A conv with 576 taps per output, a Gemm with K = 1024, and LRN (sum of squares)."""
    rng = np.random.default_rng()
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("LRN", ["c"], ["n"], size=5),
        helper.make_node("Flatten", ["n"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    weights = {"w": _f16(rng, (16, 64, 3, 3), 0.05), "fc": _f16(rng, (10, 1024), 0.05)}
    model = make_model(nodes, {"x": ((1, 64, 8, 8), "float16")}, ["y"], weights, opset=17)
    _check(model, {"x": _f16(rng, (1, 64, 8, 8))})
