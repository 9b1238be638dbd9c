"""TFLite frontend: committed fixtures (tests/data/make_tf_fixtures.py) vs ember's interpreter.

The float models must match the TFLite interpreter's output to 1e-4 relative;
the int8 models to within one quantization step. No TensorFlow needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ember.errors import FrontendError, UnsupportedOpError
from ember.frontend import from_tflite
from ember.frontend.nhwc import same_padding
from ember.frontend.tflite import supported_ops
from ember.graph.interpreter import interpret
from ember.graph.ir import Call

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite"
MODELS = ["resnet", "mobilenet", "vgg", "squeezenet", "densenet", "inception", "conv_ops"]
MODELS += ["tensor_ops"]
FLOAT_ONLY = ["matmul_ops"]


def run(mod, params, x):
    return interpret(mod, params, {mod.main.params[0].name: x})


def ops_of(mod) -> list[str]:
    seen, stack, names = set(), [mod.main.body], []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Call):
            names.append(node.op.name)
            stack.extend(node.args)
    return names


@pytest.mark.parametrize("name", MODELS + FLOAT_ONLY)
def test_float_model_matches_tflite(name):
    mod, params = from_tflite(DATA / f"{name}.tflite")
    data = np.load(DATA / f"{name}.npz")
    (out,) = run(mod, params, data["input"])
    ref = data["output"]
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("name", MODELS)
def test_int8_model_within_one_step_of_tflite(name):
    mod, params = from_tflite(DATA / f"{name}_int8.tflite")
    data = np.load(DATA / f"{name}.npz")
    assert mod.main.params[0].type.dtype == "int8"  # the model's int8 interface is kept
    (out,) = run(mod, params, data["int8_input"])
    ref = data["int8_output"]
    assert out.dtype == np.int8 and out.shape == ref.shape
    diff = np.abs(out.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() <= 1, f"{(diff > 0).sum()} values differ, by up to {diff.max()} steps"


def test_int8_model_tracks_float_model():
    """Fresh random inputs: the int8 import stays close to the float import of the same net."""
    fmod, fparams = from_tflite(DATA / "resnet.tflite")
    qmod, qparams = from_tflite(DATA / "resnet_int8.tflite")
    data = np.load(DATA / "resnet.npz")
    # the input's scale and zero point, recovered from the stored pair
    scale = np.ptp(data["input"]) / np.ptp(data["int8_input"].astype(np.float32))
    zero = np.round(np.median(data["int8_input"] - data["input"] / scale))
    rng = np.random.default_rng()
    x = rng.uniform(-1, 1, data["input"].shape).astype(np.float32)
    xq = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    (ref,) = run(fmod, fparams, x)
    (out,) = run(qmod, qparams, xq)
    probs = (out.astype(np.float32) + 128) / 256  # softmax output: scale 1/256, zero point -128
    assert np.abs(probs - ref).max() < 0.05


def test_layout_transposes_only_at_the_boundary():
    mod, _ = from_tflite(DATA / "squeezenet.tflite")
    assert mod.main.params[0].type.shape == (1, 48, 48, 3)  # NHWC interface kept
    ops = ops_of(mod)
    assert ops.count("transpose") == 1  # after the input; the output is 2-D
    assert ops.count("nn.conv2d") == 11 and ops.count("concatenate") == 3


def test_weights_are_params_after_inputs():
    mod, params = from_tflite(DATA / "vgg.tflite")
    names = [p.name for p in mod.main.params]
    assert names[0] == "serving_default_x:0"
    assert set(names[1:]) == set(params)
    conv_weight = mod.main.params[1]
    assert conv_weight.type.shape == (8, 3, 3, 3)  # OIHW


def test_batch_from_shape_argument():
    mod, params = from_tflite(
        DATA / "mobilenet.tflite", shape={"serving_default_x:0": (3, 32, 32, 3)}
    )
    rng = np.random.default_rng()
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    (out,) = run(mod, params, x)
    assert out.shape == (3, 10)
    one, one_params = from_tflite(DATA / "mobilenet.tflite")
    (first,) = run(one, one_params, x[1:2])
    np.testing.assert_allclose(out[1:2], first, rtol=1e-5, atol=1e-6)


def test_model_from_bytes():
    mod, params = from_tflite((DATA / "densenet.tflite").read_bytes())
    data = np.load(DATA / "densenet.npz")
    (out,) = run(mod, params, data["input"])
    np.testing.assert_allclose(out, data["output"], rtol=1e-4, atol=1e-5)


def test_dynamic_spatial_dims_need_shape():
    with pytest.raises(FrontendError, match=r"unknown dimensions: \(-1, -1, -1, 3\).*\n.*shape="):
        from_tflite(DATA / "dynamic.tflite")
    name = "serving_default_x:0"
    mod, params = from_tflite(DATA / "dynamic.tflite", shape={name: (1, 10, 14, 3)})
    x = np.random.default_rng().standard_normal((1, 10, 14, 3)).astype(np.float32)
    (out,) = run(mod, params, x)
    assert out.shape == (1, 10, 14, 2)


def test_shape_errors():
    with pytest.raises(FrontendError, match="no input called"):
        from_tflite(DATA / "vgg.tflite", shape={"data": (1, 32, 32, 3)})
    with pytest.raises(FrontendError, match=r"does not fit the model's shape \(-1, 32, 32, 3\)"):
        from_tflite(DATA / "vgg.tflite", shape={"serving_default_x:0": (1, 3, 32, 32)})


def test_unsupported_ops_listed_at_once():
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_tflite(DATA / "unsupported.tflite")
    assert {op for op, _ in info.value.unsupported} == {"CUMSUM", "TOPK_V2"}
    assert ("CUMSUM", "Identity") in info.value.unsupported
    assert "CUMSUM: 2 node(s)" in str(info.value)


def test_corrupt_files(tmp_path):
    good = (DATA / "resnet.tflite").read_bytes()
    with pytest.raises(FrontendError, match="file identifier"):
        from_tflite(b"\x00" * 64)
    with pytest.raises(FrontendError, match="too short"):
        from_tflite(b"TFL")
    with pytest.raises(FrontendError, match="corrupt or truncated|truncated|corrupt"):
        from_tflite(good[: len(good) // 3])
    rng = np.random.default_rng(0)
    garbage = bytearray(good)
    garbage[8:200] = rng.integers(0, 256, 192, dtype=np.uint8).tobytes()
    with pytest.raises(FrontendError):
        from_tflite(bytes(garbage))
    with pytest.raises(FrontendError, match="cannot read TFLite model"):
        from_tflite(tmp_path / "missing.tflite")


def test_supported_ops():
    ops = supported_ops()
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "QUANTIZE", "HARD_SWISH"} <= set(ops)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [(32, 3, 2, 1, (0, 1)), (32, 3, 1, 1, (1, 1)), (7, 2, 2, 1, (0, 1)), (8, 3, 1, 2, (2, 2))],
)
def test_same_padding_is_tf_asymmetric(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


def test_float16_weights_model():
    mod, params = from_tflite(DATA / "resnet_fp16.tflite")
    data = np.load(DATA / "resnet_variants.npz")
    assert all(v.dtype == np.float32 for v in params.values())  # DEQUANTIZE folded
    (out,) = run(mod, params, data["input"])
    np.testing.assert_allclose(out, data["fp16"], rtol=1e-4, atol=1e-5)


def test_dynamic_range_quantized_model():
    """int8 weights, float activations: weights are dequantized at import time.

    TFLite may quantize activations on the fly inside its hybrid kernels, so the
    match is close but not exact.
    """
    mod, params = from_tflite(DATA / "resnet_dynamic_range.tflite")
    data = np.load(DATA / "resnet_variants.npz")
    (out,) = run(mod, params, data["input"])
    np.testing.assert_allclose(out, data["dynamic_range"], atol=2e-4)


def test_uint8_interface_model():
    """uint8 input/output around int8 kernels (QUANTIZE ops at both ends)."""
    mod, params = from_tflite(DATA / "resnet_uint8.tflite")
    data = np.load(DATA / "resnet_variants.npz")
    assert mod.main.params[0].type.dtype == "uint8"
    (out,) = run(mod, params, data["uint8_input"])
    assert out.dtype == np.uint8
    diff = np.abs(out.astype(np.int32) - data["uint8_output"].astype(np.int32))
    assert diff.max() <= 1
