"""Pooling and LRN: type rules and references vs onnxruntime (and torch for ceil_mode)."""

import itertools

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, ShapeError

POOL_SHAPES = [
    # (input H, W, kernel, strides, padding)
    ((10, 9), (3, 3), (2, 2), (1, 1, 1, 1)),
    ((9, 9), (2, 2), (2, 2), (1, 1, 1, 1)),  # ceil_mode drops a window starting in the padding
    ((11, 8), (3, 2), (3, 2), (1, 0, 0, 1)),  # asymmetric padding
    ((7, 12), (3, 3), (1, 3), (0, 0, 0, 0)),
    ((8, 8), (2, 3), (2, 2), (0, 1, 1, 2)),
]


@pytest.mark.parametrize(
    "shape,kernel,strides,pads,ceil",
    [(*case, ceil) for case, ceil in itertools.product(POOL_SHAPES, (False, True))],
)
def test_pools_match_onnxruntime(shape, kernel, strides, pads, ceil):
    x = randn((2, 3, *shape))
    attrs = dict(pool_size=kernel, strides=strides, padding=pads, ceil_mode=ceil)
    onnx_attrs = dict(
        kernel_shape=list(kernel), strides=list(strides), pads=list(pads), ceil_mode=int(ceil)
    )
    assert_close(run_op("nn.max_pool2d", [x], **attrs), run_onnx("MaxPool", [x], **onnx_attrs)[0])
    for include in (False, True):
        out = run_op("nn.avg_pool2d", [x], count_include_pad=include, **attrs)
        want = run_onnx("AveragePool", [x], count_include_pad=int(include), **onnx_attrs)[0]
        assert_close(out, want)


def test_max_pool_dilation_and_int8():
    x = randn((1, 2, 12, 11))
    out = run_op(
        "nn.max_pool2d", [x], pool_size=3, strides=2, dilation=(2, 1), padding=1, ceil_mode=True
    )
    want = run_onnx(
        "MaxPool",
        [x],
        kernel_shape=[3, 3],
        strides=[2, 2],
        dilations=[2, 1],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
    )[0]
    assert_close(out, want)
    xi = randint((1, 2, 6, 6), "int8", -128, 127)
    want = run_onnx("MaxPool", [xi], kernel_shape=[2, 2], pads=[1, 1, 1, 1], strides=[2, 2])[0]
    assert_close(run_op("nn.max_pool2d", [xi], pool_size=2, padding=1, strides=2), want)


@pytest.mark.frameworks
def test_avg_pool_ceil_mode_matches_torch():
    torch = pytest.importorskip("torch")
    x = randn((1, 2, 9, 10))
    for include in (False, True):
        want = torch.nn.functional.avg_pool2d(
            torch.from_numpy(x), 3, stride=2, padding=1, ceil_mode=True, count_include_pad=include
        ).numpy()
        out = run_op(
            "nn.avg_pool2d",
            [x],
            pool_size=3,
            strides=2,
            padding=1,
            ceil_mode=True,
            count_include_pad=include,
        )
        assert_close(out, want)


def test_pool_type_rule_and_errors():
    assert infer("nn.max_pool2d", [(1, 64, 112, 112)], pool_size=3, strides=2, padding=1).shape == (
        1,
        64,
        56,
        56,
    )
    assert infer(
        "nn.avg_pool2d", [(1, 1, 9, 9)], pool_size=2, strides=2, padding=1, ceil_mode=True
    ).shape == (1, 1, 5, 5)
    with pytest.raises(ShapeError, match=r"pool window \(5, 5\).*larger than the padded input"):
        infer("nn.max_pool2d", [(1, 1, 3, 3)], pool_size=5)
    with pytest.raises(ShapeError, match="must have rank 4"):
        infer("nn.max_pool2d", [(1, 3, 3)], pool_size=2)
    with pytest.raises(AttrError, match="padding .* must be smaller than pool_size"):
        infer("nn.max_pool2d", [(1, 1, 8, 8)], pool_size=2, padding=2)
    with pytest.raises(AttrError, match="pool_size values must be >= 1"):
        infer("nn.avg_pool2d", [(1, 1, 8, 8)], pool_size=0)
    with pytest.raises(AttrError, match="count_include_pad must be a bool"):
        infer("nn.avg_pool2d", [(1, 1, 8, 8)], pool_size=2, count_include_pad=1)
    with pytest.raises(AttrError, match="op nn.max_pool2d .*missing .*pool_size"):
        infer("nn.max_pool2d", [(1, 1, 8, 8)])  # pool_size is required


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_global_pools(dtype):
    # onnxruntime pools only float32: compare float64 with its float32 result.
    x = randn((2, 5, 7, 6), dtype)
    x32 = x.astype("float32")
    for name, onnx_op in [
        ("nn.global_avg_pool2d", "GlobalAveragePool"),
        ("nn.global_max_pool2d", "GlobalMaxPool"),
    ]:
        out = run_op(name, [x])
        assert out.dtype == x.dtype
        np.testing.assert_allclose(out, run_onnx(onnx_op, [x32])[0], rtol=1e-5, atol=1e-6)
    assert infer("nn.global_avg_pool2d", [(2, 5, 7, 6)]).shape == (2, 5, 1, 1)
    with pytest.raises(ShapeError, match="must have rank 4"):
        infer("nn.global_max_pool2d", [(5, 7, 6)])


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_matches_onnxruntime(size):
    x = randn((2, 7, 4, 5))
    attrs = dict(alpha=2e-3, beta=0.6, bias=1.5)
    out = run_op("nn.lrn", [x], size=size, **attrs)
    assert_close(out, run_onnx("LRN", [x], size=size, **attrs)[0])


def test_lrn_even_size_follows_onnx_window():
    # onnxruntime rejects even sizes; the ONNX spec sums channels [c - 0, c + 1] for size 2.
    x = randn((1, 4, 2, 3), "float64")
    sq = x**2
    window = sq + np.concatenate([sq[:, 1:], np.zeros_like(sq[:, :1])], axis=1)
    want = x / (1.0 + 1e-2 / 2 * window) ** 0.75
    np.testing.assert_allclose(run_op("nn.lrn", [x], size=2, alpha=1e-2), want, rtol=1e-12)


def test_lrn_errors():
    with pytest.raises(AttrError, match="size must be a positive int"):
        infer("nn.lrn", [(1, 4, 2, 2)], size=0)
    with pytest.raises(ShapeError, match="axis 4 is out of range for rank 4"):
        infer("nn.lrn", [(1, 4, 2, 2)], size=3, axis=4)
    with pytest.raises(ShapeError, match="dtype int32, expected one of float16"):
        infer("nn.lrn", [(1, 4, 2, 2)], ["int32"], size=3)
    x = randn((1, 6, 3, 3))
    moved = run_op("nn.lrn", [np.ascontiguousarray(np.moveaxis(x, 1, 3))], size=3, axis=-1)
    np.testing.assert_allclose(np.moveaxis(moved, 3, 1), run_op("nn.lrn", [x], size=3), rtol=1e-6)
