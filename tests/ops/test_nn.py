"""Activations, batch_norm, softmax, pad, prelu vs onnxruntime."""

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, ShapeError
from ember.graph.ir import TensorType, Var
from ember.ops import call, nn

ACTIVATIONS = [
    # (ember op, ember attrs, ONNX op, ONNX attrs, opset)
    ("nn.relu", {}, "Relu", {}, 14),
    ("nn.gelu", {}, "Gelu", {}, 20),
    ("nn.gelu", {"approximate": "tanh"}, "Gelu", {"approximate": "tanh"}, 20),
    ("nn.leaky_relu", {}, "LeakyRelu", {}, 16),
    ("nn.leaky_relu", {"alpha": 0.3}, "LeakyRelu", {"alpha": 0.3}, 16),
    ("nn.elu", {}, "Elu", {}, 6),
    ("nn.elu", {"alpha": 0.5}, "Elu", {"alpha": 0.5}, 6),
    ("nn.selu", {}, "Selu", {}, 6),
    ("nn.selu", {"alpha": 1.5, "gamma": 2.0}, "Selu", {"alpha": 1.5, "gamma": 2.0}, 6),
    ("nn.softplus", {}, "Softplus", {}, 1),
    ("nn.hard_sigmoid", {}, "HardSigmoid", {}, 6),
    ("nn.hard_sigmoid", {"alpha": 0.1, "beta": 0.3}, "HardSigmoid", {"alpha": 0.1, "beta": 0.3}, 6),
    ("nn.hard_swish", {}, "HardSwish", {}, 14),
    ("nn.mish", {}, "Mish", {}, 18),
]


@pytest.mark.parametrize("name,attrs,onnx_op,onnx_attrs,opset", ACTIVATIONS)
def test_activations_match_onnxruntime(name, attrs, onnx_op, onnx_attrs, opset):
    x = randn((3, 4, 5), scale=4)
    want = run_onnx(onnx_op, [x], opset=opset, **onnx_attrs)[0]
    assert_close(run_op(name, [x], **attrs), want)


def test_activation_module_attributes_and_errors():
    assert nn.relu.name == "nn.relu" and nn.conv2d.name == "nn.conv2d"
    assert nn.SeluAttrs().alpha == pytest.approx(1.6732632423543772)
    with pytest.raises(AttrError, match="approximate must be one of 'none', 'tanh'"):
        infer("nn.gelu", [(2,)], approximate="fast")
    with pytest.raises(AttrError, match="alpha must be a number"):
        infer("nn.leaky_relu", [(2,)], alpha=None)
    with pytest.raises(ShapeError, match="dtype int32"):
        infer("nn.gelu", [(2,)], ["int32"])


def test_silu_and_mish_match_torch_and_count_flops_like_their_parts():
    torch = pytest.importorskip("torch")
    for dtype in ("float32", "float64"):
        x = randn((3, 4, 5), scale=6).astype(dtype)
        x.flat[:3] = [-90.0, 90.0, 0.0]  # exp(-x) overflows without care
        t = torch.from_numpy(x)
        assert_close(run_op("nn.silu", [x]), torch.nn.functional.silu(t).numpy())
        assert_close(run_op("nn.mish", [x]), torch.nn.functional.mish(t).numpy())
    x = Var("x", TensorType((2, 8), "float32"))
    silu, mish = call("nn.silu", x), call("nn.mish", x)
    assert (nn.silu.flops(silu), nn.mish.flops(mish)) == (32, 48)  # sigmoid+mul; 3 ops
    with pytest.raises(ShapeError, match="dtype int32"):
        infer("nn.silu", [(2,)], ["int32"])


def test_prelu():
    x = randn((2, 3, 4, 5))
    for slope_shape in [(3, 1, 1), (5,), (1,), (2, 3, 4, 5)]:
        slope = randn(slope_shape)
        assert_close(run_op("nn.prelu", [x, slope]), run_onnx("PRelu", [x, slope])[0])
    with pytest.raises(ShapeError, match=r"slope of shape \(3,\) does not broadcast to data"):
        infer("nn.prelu", [(2, 3, 4, 5), (3,)])
    with pytest.raises(ShapeError, match=r"slope of shape \(2, 1, 1, 1, 1\)"):
        infer("nn.prelu", [(2, 3, 4, 5), (2, 1, 1, 1, 1)])


@pytest.mark.parametrize("shape,axis", [((2, 3, 4, 5), 1), ((4, 3), 1), ((2, 5, 3), -1)])
def test_batch_norm(shape, axis):
    x = randn(shape)
    c = shape[axis]
    gamma, beta, mean = randn((c,)), randn((c,)), randn((c,))
    var = np.abs(randn((c,))) + 0.5
    out = run_op("nn.batch_norm", [x, gamma, beta, mean, var], epsilon=1e-3, axis=axis)
    if axis == 1:
        want = run_onnx("BatchNormalization", [x, gamma, beta, mean, var], epsilon=1e-3)[0]
    else:
        want = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32


def test_batch_norm_errors():
    shapes = [(2, 3, 4, 4), (3,), (3,), (3,), (4,)]
    with pytest.raises(ShapeError, match=r"moving_var has shape \(4,\), expected \(3,\)"):
        infer("nn.batch_norm", shapes)
    with pytest.raises(ShapeError, match="axis 5 is out of range"):
        infer("nn.batch_norm", [(2, 3), (3,), (3,), (3,), (3,)], axis=5)
    with pytest.raises(AttrError, match="epsilon must be >= 0"):
        infer("nn.batch_norm", [(2, 3), (3,), (3,), (3,), (3,)], epsilon=-1.0)


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_softmax_and_log_softmax(axis):
    x = randn((3, 4, 5), scale=5)
    assert_close(run_op("nn.softmax", [x], axis=axis), run_onnx("Softmax", [x], axis=axis)[0])
    assert_close(
        run_op("nn.log_softmax", [x], axis=axis), run_onnx("LogSoftmax", [x], axis=axis)[0]
    )


def test_softmax_errors():
    assert infer("nn.softmax", [(2, 3)]).shape == (2, 3)
    with pytest.raises(ShapeError, match=r"axis 2 is out of range for rank 2 \(allowed -2..1\)"):
        infer("nn.softmax", [(2, 3)], axis=2)
    with pytest.raises(AttrError, match="axis must be an int"):
        infer("nn.log_softmax", [(2, 3)], axis=1.5)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "uint8"])
def test_pad(mode, dtype):
    x = randn((2, 3, 4)) if dtype == "float32" else randint((2, 3, 4), dtype, 0, 100)
    pads = ((0, 1), (2, 1), (3, 0))
    value = 2.5 if dtype == "float32" else 7
    flat = np.array([p[0] for p in pads] + [p[1] for p in pads], "int64")
    consts = [flat, np.array(value, dtype)] if mode == "constant" else [flat]
    want = run_onnx("Pad", [x], consts=consts, mode=mode)[0]
    assert_close(run_op("nn.pad", [x], pad_width=pads, pad_value=value, mode=mode), want)


def test_pad_errors():
    assert infer("nn.pad", [(2, 3)], pad_width=[[1, 1], [0, 2]]).shape == (4, 5)
    with pytest.raises(ShapeError, match="pad_width has 1 pairs but data has rank 2"):
        infer("nn.pad", [(2, 3)], pad_width=((1, 1),))
    with pytest.raises(ShapeError, match="reflect padding \\(0, 3\\) on axis 1 must be smaller"):
        infer("nn.pad", [(2, 3)], pad_width=((0, 0), (0, 3)), mode="reflect")
    with pytest.raises(AttrError, match="pairs of ints >= 0, got \\(-1, 0\\)"):
        infer("nn.pad", [(2, 3)], pad_width=((-1, 0), (0, 0)))
    with pytest.raises(AttrError, match="mode must be one of 'constant', 'edge', 'reflect'"):
        infer("nn.pad", [(2, 3)], pad_width=((0, 0), (0, 0)), mode="wrap")
    with pytest.raises(AttrError, match="pad_width must be a tuple of"):
        infer("nn.pad", [(2, 3)], pad_width=3)
