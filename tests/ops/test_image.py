"""image.resize2d vs onnxruntime Resize: every method, coordinate mode and nearest mode."""

import itertools

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, ShapeError

COORD_MODES = [
    "half_pixel",
    "asymmetric",
    "align_corners",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
]
SIZES = [((5, 7), (11, 4)), ((6, 6), (3, 13)), ((4, 5), (1, 5)), ((3, 3), (9, 9))]


def _onnx_resize(x, size, method, **attrs):
    sizes = np.array([*x.shape[:2], *size], "int64")
    return run_onnx("Resize", [x], consts=[None, None, sizes], mode=method, **attrs)[0]


@pytest.mark.parametrize("coord", COORD_MODES)
@pytest.mark.parametrize("nearest", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
def test_resize_nearest(coord, nearest):
    for in_hw, out_hw in SIZES:
        x = randn((1, 2, *in_hw))
        out = run_op(
            "image.resize2d",
            [x],
            size=out_hw,
            method="nearest",
            coordinate_transformation_mode=coord,
            nearest_mode=nearest,
        )
        want = _onnx_resize(
            x, out_hw, "nearest", coordinate_transformation_mode=coord, nearest_mode=nearest
        )
        assert_close(out, want)


@pytest.mark.parametrize("coord", COORD_MODES)
def test_resize_linear(coord):
    for in_hw, out_hw in SIZES:
        x = randn((2, 3, *in_hw))
        out = run_op(
            "image.resize2d",
            [x],
            size=out_hw,
            method="linear",
            coordinate_transformation_mode=coord,
        )
        assert_close(out, _onnx_resize(x, out_hw, "linear", coordinate_transformation_mode=coord))


@pytest.mark.parametrize(
    "coord,exclude,a",
    list(
        itertools.product(
            ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"],
            [False, True],
            [-0.75, -0.5],
        )
    ),
)
def test_resize_cubic(coord, exclude, a):
    for in_hw, out_hw in SIZES:
        x = randn((1, 2, *in_hw))
        out = run_op(
            "image.resize2d",
            [x],
            size=out_hw,
            method="cubic",
            coordinate_transformation_mode=coord,
            exclude_outside=exclude,
            cubic_coeff_a=a,
        )
        want = _onnx_resize(
            x,
            out_hw,
            "cubic",
            coordinate_transformation_mode=coord,
            exclude_outside=int(exclude),
            cubic_coeff_a=a,
        )
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_resize_with_scales_uses_the_given_scale(method):
    # 5 * 1.7 = 8.5 -> 8 rows, but coordinates divide by 1.7, not by 8 / 5.
    x = randn((1, 1, 5, 6))
    scales = np.array([1, 1, 1.7, 0.6], "float32")
    want = run_onnx("Resize", [x], consts=[None, scales], mode=method)[0]
    out = run_op(
        "image.resize2d", [x], size=want.shape[2:], method=method, scales=(1.7, 0.6000000238418579)
    )
    assert_close(out, want)


def test_resize_integer_data():
    x = randint((1, 2, 4, 4), "uint8", 0, 255)
    want = _onnx_resize(x, (8, 6), "nearest")
    assert_close(run_op("image.resize2d", [x], size=(8, 6)), want)
    lin = run_op("image.resize2d", [x], size=(8, 6), method="linear")
    assert lin.dtype == np.uint8
    want = _onnx_resize(x, (8, 6), "linear")
    assert np.abs(lin.astype(int) - want.astype(int)).max() <= 1  # rounding of .5 may differ


def test_resize_type_rule_and_errors():
    assert infer("image.resize2d", [(1, 3, 8, 8)], size=(16, 12)).shape == (1, 3, 16, 12)
    with pytest.raises(ShapeError, match="must have rank 4"):
        infer("image.resize2d", [(3, 8, 8)], size=(4, 4))
    with pytest.raises(AttrError, match="method must be one of 'nearest', 'linear', 'cubic'"):
        infer("image.resize2d", [(1, 3, 8, 8)], size=(4, 4), method="bilinear")
    with pytest.raises(AttrError, match="coordinate_transformation_mode must be one of"):
        infer(
            "image.resize2d",
            [(1, 3, 8, 8)],
            size=(4, 4),
            coordinate_transformation_mode="crop_and_resize",
        )
    with pytest.raises(AttrError, match=r"roi must be four numbers \(start_h"):
        infer(
            "image.resize2d",
            [(1, 3, 8, 8)],
            size=(4, 4),
            coordinate_transformation_mode="tf_crop_and_resize",
            roi=(0.1, 0.9),
        )
    with pytest.raises(AttrError, match="nearest_mode must be one of"):
        infer("image.resize2d", [(1, 3, 8, 8)], size=(4, 4), nearest_mode="round")
    with pytest.raises(AttrError, match="size values must be >= 1"):
        infer("image.resize2d", [(1, 3, 8, 8)], size=(0, 4))
    with pytest.raises(AttrError, match="scales must be > 0"):
        infer("image.resize2d", [(1, 3, 8, 8)], size=(4, 4), scales=(0.5, 0))
