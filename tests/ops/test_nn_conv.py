"""conv2d, conv2d_transpose, dense, matmul, batch_matmul: type rules, references vs ORT."""

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, ShapeError
from ember.graph.ir import TensorType, Var
from ember.ops import call, get_op

CONV_CASES = [
    # (data shape, weight shape, attrs, with bias)
    ((2, 8, 11, 13), (12, 4, 3, 2), dict(strides=(2, 1), padding=(1, 0, 2, 1), groups=2), True),
    ((1, 6, 9, 9), (6, 1, 3, 3), dict(padding=1, groups=6), False),  # depthwise
    ((1, 6, 9, 9), (12, 1, 3, 3), dict(padding=(1, 1), strides=2, groups=6), True),  # multiplier 2
    ((1, 3, 15, 14), (4, 3, 3, 3), dict(dilation=(2, 3), padding=(2, 3, 2, 3)), True),
    ((2, 5, 10, 7), (3, 5, 1, 1), dict(), False),  # 1x1
    ((1, 4, 16, 16), (8, 4, 5, 5), dict(strides=(3, 2), padding=(0, 2, 1, 0)), True),  # asymmetric
    ((1, 3, 24, 24), (8, 3, 7, 7), dict(strides=2, padding=3), False),
]


def _onnx_conv_attrs(attrs: dict, op: str = "nn.conv2d") -> dict:
    """ONNX Conv / ConvTranspose attributes equal to ember ``attrs`` (after normalization)."""
    norm = get_op(op).make_attrs(attrs)
    out = dict(
        strides=list(norm.strides),
        pads=list(norm.padding),
        dilations=list(norm.dilation),
        group=norm.groups,
    )
    if op == "nn.conv2d_transpose":
        out["output_padding"] = list(norm.output_padding)
    return out


@pytest.mark.parametrize("dshape,wshape,attrs,bias", CONV_CASES)
def test_conv2d_matches_onnxruntime(dshape, wshape, attrs, bias):
    inputs = [randn(dshape), randn(wshape)] + ([randn((wshape[0],))] if bias else [])
    out = run_op("nn.conv2d", inputs, **attrs)
    want = run_onnx("Conv", inputs, **_onnx_conv_attrs(attrs))[0]
    # Sums of up to 200 products: float32 rounding differs between summation orders.
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_conv2d_float64_and_int():
    x, w = randn((1, 4, 6, 6), "float64"), randn((2, 2, 3, 3), "float64")
    # onnxruntime has no float64 Conv: compare with its float32 result at float32 tolerance.
    want = run_onnx("Conv", [x.astype("float32"), w.astype("float32")], group=2)[0]
    out = run_op("nn.conv2d", [x, w], groups=2)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    xi, wi = randint((1, 2, 5, 5), "int32"), randint((3, 2, 2, 2), "int32")
    out = run_op("nn.conv2d", [xi, wi])
    ref = run_op("nn.conv2d", [xi.astype("float64"), wi.astype("float64")])
    np.testing.assert_array_equal(out, ref.astype("int32"))


def test_conv2d_type_rule_and_errors():
    t = infer("nn.conv2d", [(1, 3, 224, 224), (64, 3, 7, 7)], strides=2, padding=3)
    assert t == TensorType((1, 64, 112, 112), "float32")
    with pytest.raises(ShapeError, match=r"data has 3 channels but weight expects 4 \(= weight"):
        infer("nn.conv2d", [(1, 3, 8, 8), (4, 2, 3, 3)], groups=2)
    with pytest.raises(ShapeError, match="output channels do not divide into groups=2"):
        infer("nn.conv2d", [(1, 4, 8, 8), (3, 2, 3, 3)], groups=2)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        infer("nn.conv2d", [(1, 3, 4, 4), (4, 3, 5, 5)])
    with pytest.raises(ShapeError, match=r"bias has shape \(3,\), expected \(4,\)"):
        infer("nn.conv2d", [(1, 3, 8, 8), (4, 3, 3, 3), (3,)])
    with pytest.raises(ShapeError, match="must have rank 4"):
        infer("nn.conv2d", [(3, 8, 8), (4, 3, 3, 3)])
    with pytest.raises(ShapeError, match="weight has dtype float16 but data has float32"):
        infer("nn.conv2d", [(1, 3, 8, 8), (4, 3, 3, 3)], ["float32", "float16"])
    with pytest.raises(ShapeError, match=r"op nn.conv2d \(node 'n'\).*input types"):
        infer("nn.conv2d", [(1, 3, 8, 8), (4, 3, 3, 3), (4,), (4,)])


def test_conv2d_attr_errors():
    x, w = Var("x", TensorType((1, 3, 8, 8))), Var("w", TensorType((4, 3, 3, 3)))
    assert call("nn.conv2d", x, w, padding=(1, 2)).attrs.padding == (1, 2, 1, 2)
    assert call("nn.conv2d", x, w, strides=2).attrs.strides == (2, 2)
    with pytest.raises(AttrError, match="strides values must be >= 1"):
        call("nn.conv2d", x, w, strides=0)
    with pytest.raises(AttrError, match="padding must be p, .*got \\(1, 2, 3\\)"):
        call("nn.conv2d", x, w, padding=(1, 2, 3))
    with pytest.raises(AttrError, match="groups must be an int >= 1"):
        call("nn.conv2d", x, w, groups=0)
    with pytest.raises(AttrError, match="dilation must have 2 values"):
        call("nn.conv2d", x, w, dilation=(1, 1, 1))
    with pytest.raises(AttrError, match="has no attribute.*kernel"):
        call("nn.conv2d", x, w, kernel=3)


TRANSPOSE_CASES = [
    (
        (2, 8, 5, 6),
        (8, 3, 3, 4),
        dict(strides=(2, 3), padding=(1, 0, 0, 2), output_padding=(1, 2), groups=2),
        True,
    ),
    (
        (1, 4, 7, 5),
        (4, 5, 3, 3),
        dict(strides=(1, 2), padding=(0, 1, 2, 0), output_padding=(0, 1), dilation=(2, 1)),
        False,
    ),
    ((1, 3, 4, 4), (3, 2, 4, 4), dict(strides=2, padding=1), True),
    ((1, 6, 5, 5), (6, 1, 3, 3), dict(strides=2, groups=6, output_padding=1), False),
]


@pytest.mark.parametrize("dshape,wshape,attrs,bias", TRANSPOSE_CASES)
def test_conv2d_transpose_matches_onnxruntime(dshape, wshape, attrs, bias):
    out_channels = wshape[1] * attrs.get("groups", 1)
    inputs = [randn(dshape), randn(wshape)] + ([randn((out_channels,))] if bias else [])
    out = run_op("nn.conv2d_transpose", inputs, **attrs)
    want = run_onnx("ConvTranspose", inputs, **_onnx_conv_attrs(attrs, "nn.conv2d_transpose"))[0]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


@pytest.mark.frameworks
def test_conv2d_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = randn((2, 4, 6, 5)), randn((4, 3, 3, 2)), randn((6,))
    attrs = dict(strides=(2, 3), padding=(1, 1, 1, 1), output_padding=(1, 2), groups=2)
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        torch.from_numpy(b),
        stride=(2, 3),
        padding=(1, 1),
        output_padding=(1, 2),
        groups=2,
    ).numpy()
    np.testing.assert_allclose(
        run_op("nn.conv2d_transpose", [x, w, b], **attrs), want, rtol=1e-4, atol=1e-4
    )


def test_conv2d_transpose_errors():
    with pytest.raises(ShapeError, match="data has 3 channels but weight.shape\\[0\\] is 4"):
        infer("nn.conv2d_transpose", [(1, 3, 4, 4), (4, 2, 3, 3)])
    with pytest.raises(ShapeError, match="do not divide into groups=2"):
        infer("nn.conv2d_transpose", [(1, 3, 4, 4), (3, 2, 3, 3)], groups=2)
    with pytest.raises(ShapeError, match="leaves an empty output"):
        infer("nn.conv2d_transpose", [(1, 3, 1, 1), (3, 2, 1, 1)], padding=1)
    with pytest.raises(AttrError, match=r"output_padding\[0\] \(h\) = 2 must be smaller"):
        infer("nn.conv2d_transpose", [(1, 3, 4, 4), (3, 2, 3, 3)], strides=2, output_padding=2)
    t = infer("nn.conv2d_transpose", [(1, 3, 4, 4), (3, 2, 3, 3)], strides=2, groups=1)
    assert t.shape == (1, 2, 9, 9)


@pytest.mark.parametrize("dshape", [(5, 7), (2, 3, 7), (7,)])
def test_dense_matches_gemm(dshape):
    x, w, b = randn(dshape), randn((4, 7)), randn((4,))
    out = run_op("nn.dense", [x, w, b])
    want = run_onnx("MatMul", [x, np.ascontiguousarray(w.T)])[0] + b
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    if len(dshape) == 2:
        gemm = run_onnx("Gemm", [x, w, b], transB=1)[0]
        np.testing.assert_allclose(out, gemm, rtol=1e-5, atol=1e-5)
    assert run_op("nn.dense", [x, w]).shape == (*dshape[:-1], 4)


def test_dense_errors():
    with pytest.raises(ShapeError, match="data has 6 features .* expects K = 7"):
        infer("nn.dense", [(5, 6), (4, 7)])
    with pytest.raises(ShapeError, match=r"weight \(N, K\) must have rank 2"):
        infer("nn.dense", [(5, 7), (4, 7, 1)])
    with pytest.raises(ShapeError, match=r"bias has shape \(5,\), expected \(4,\)"):
        infer("nn.dense", [(5, 7), (4, 7), (5,)])


@pytest.mark.parametrize(
    "ashape,bshape",
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 1, 3, 4), (5, 4, 6)),
        ((2, 3, 4), (4, 2)),
    ],
)
def test_matmul_matches_onnxruntime(ashape, bshape):
    a, b = randn(ashape), randn(bshape)
    assert_close(run_op("nn.matmul", [a, b]), run_onnx("MatMul", [a, b])[0], "float32")


def test_matmul_int_and_errors():
    a, b = randint((3, 4), "int32"), randint((4, 2), "int32")
    np.testing.assert_array_equal(run_op("nn.matmul", [a, b]), a @ b)
    with pytest.raises(ShapeError, match="a has 4 columns but b has 3 rows"):
        infer("nn.matmul", [(3, 4), (3, 2)])
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("nn.matmul", [(2, 3, 4), (3, 4, 2)])
    with pytest.raises(ShapeError, match="rank >= 1"):
        infer("nn.matmul", [(), (3,)])


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_batch_matmul(ta, tb):
    a = randn((3, 5, 4) if ta else (3, 4, 5))
    b = randn((1, 6, 5) if tb else (1, 5, 6))
    a_onnx = np.ascontiguousarray(a.transpose(0, 2, 1)) if ta else a
    b_onnx = np.ascontiguousarray(b.transpose(0, 2, 1)) if tb else b
    out = run_op("nn.batch_matmul", [a, b], transpose_a=ta, transpose_b=tb)
    assert_close(out, run_onnx("MatMul", [a_onnx, b_onnx])[0], "float32")


def test_batch_matmul_errors():
    with pytest.raises(ShapeError, match="a has K = 5 but b has K = 4"):
        infer("nn.batch_matmul", [(2, 3, 5), (2, 4, 6)])
    with pytest.raises(ShapeError, match="batch sizes 2 and 3 differ"):
        infer("nn.batch_matmul", [(2, 3, 4), (3, 4, 6)])
    with pytest.raises(AttrError, match="transpose_a must be a bool"):
        infer("nn.batch_matmul", [(2, 3, 4), (2, 4, 6)], transpose_a="yes")


def test_conv2d_and_dense_float16_accumulate_in_float32():
    x, w = randn((1, 8, 6, 6), "float16"), randn((4, 8, 3, 3), "float16")
    out = run_op("nn.conv2d", [x, w], padding=1)
    assert out.dtype == np.float16
    want = run_op("nn.conv2d", [x.astype("float32"), w.astype("float32")], padding=1)
    np.testing.assert_allclose(out.astype("float32"), want, rtol=2e-3, atol=2e-2)
    a, b = randn((3, 64), "float16"), randn((5, 64), "float16")
    out = run_op("nn.dense", [a, b])
    assert out.dtype == np.float16
    np.testing.assert_allclose(
        out, a.astype("float32") @ b.astype("float32").T, rtol=2e-3, atol=2e-2
    )


@pytest.mark.frameworks
def test_conv2d_transpose_output_padding_below_dilation_matches_torch():
    # onnxruntime rejects output_padding >= stride; PyTorch (and ember) allow it below dilation.
    torch = pytest.importorskip("torch")
    x, w = randn((1, 2, 4, 3)), randn((2, 3, 3, 2))
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=1, output_padding=1, dilation=2
    ).numpy()
    out = run_op("nn.conv2d_transpose", [x, w], output_padding=1, dilation=2)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
