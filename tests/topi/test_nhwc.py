"""NHWC convolution kernels (ember.topi.x86.nhwc) against a numpy reference.

Every case builds the NHWC compute with its fused epilogue, schedules it with the x86
NHWC schedule, and compares with a float64 numpy convolution on fresh random inputs:
24/32/96/144 channels, 1x1 (the GEMM path) and 3x3, stride 2, odd widths, asymmetric
padding, each epilogue piece alone and together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import ember
from ember import te
from ember.errors import AttrError, ScheduleError, ShapeError
from ember.target import Target
from ember.topi.x86.nhwc import (
    NhwcTile,
    channel_lanes,
    choose_nhwc_tile,
    conv2d_nhwc,
    depthwise_conv2d_nhwc,
    schedule_nhwc,
)

F = "float32"
HOST = Target.parse("host")


@dataclass(frozen=True)
class Case:
    id: str
    data: tuple[int, int, int, int]  # N, H, W, C
    kernel: int
    out_channels: int  # = C for depthwise
    strides: int | tuple[int, int] = 1
    padding: int | tuple[int, ...] = 0
    depthwise: bool = False
    bias: bool = False
    activation: str | None = None
    residual: bool = False
    tile: NhwcTile | None = None


CASES = [
    Case("1x1_gemm_24_to_144_relu6", (1, 9, 9, 24), 1, 144, bias=True, activation="relu6"),
    Case("1x1_144_to_24_add", (1, 7, 11, 144), 1, 24, bias=True, residual=True),
    Case("1x1_stride2_odd", (1, 9, 13, 32), 1, 96, strides=2),
    Case("1x1_plain_no_epilogue", (2, 5, 5, 16), 1, 32),
    Case(
        "3x3_rgb_stride2",
        (1, 15, 17, 3),
        3,
        32,
        strides=2,
        padding=1,
        bias=True,
        activation="relu6",
    ),
    Case(
        "3x3_pad_asym_relu_add",
        (1, 8, 9, 24),
        3,
        24,
        padding=(1, 0, 1, 2),
        bias=True,
        activation="relu",
        residual=True,
    ),
    Case("5x3_valid_scalar_lanes", (1, 9, 7, 5), 3, 6, strides=(2, 1)),
    Case(
        "dw_s1_144_relu6",
        (1, 9, 9, 144),
        3,
        144,
        padding=1,
        depthwise=True,
        bias=True,
        activation="relu6",
    ),
    Case(
        "dw_s2_96_odd_width",
        (1, 11, 13, 96),
        3,
        96,
        strides=2,
        padding=1,
        depthwise=True,
        bias=True,
    ),
    Case("dw_24_add", (1, 7, 7, 24), 3, 24, padding=1, depthwise=True, residual=True),
    Case("dw_32_no_padding", (2, 6, 9, 32), 3, 32, depthwise=True, activation="relu"),
    Case(
        "dw_rows_outer_tile",
        (1, 10, 10, 48),
        3,
        48,
        padding=1,
        depthwise=True,
        bias=True,
        tile=NhwcTile(16, 1, 4, rows_outer=True),
    ),
    Case("1x1_24_as_3x8_tile", (1, 6, 10, 16), 1, 24, tile=NhwcTile(8, 3, 5), bias=True),
    # 24 channels as 16 + 8 lanes (a partial last vector) on any host.
    Case(
        "dw_row_bands_uneven",
        (1, 9, 10, 32),
        3,
        32,
        padding=1,
        depthwise=True,
        bias=True,
        tile=NhwcTile(16, 1, 5, row_bands=2),
    ),
    Case(
        "1x1_24_as_16_plus_8",
        (1, 5, 9, 40),
        1,
        24,
        tile=NhwcTile(16, 2, 8),
        bias=True,
        residual=True,
    ),
    Case(
        "dw_24_as_16_plus_8",
        (1, 6, 7, 24),
        3,
        24,
        padding=1,
        depthwise=True,
        tile=NhwcTile(16, 1, 7),
        activation="relu6",
    ),
    Case(
        "row_block_1x1_big_reduction",
        (1, 5, 5, 512),
        1,
        48,
        bias=True,
        tile=NhwcTile(16, 3, 5, row_block=True),
    ),
    Case(
        "row_block_3x3_odd",
        (1, 7, 6, 40),
        3,
        32,
        padding=1,
        residual=True,
        tile=NhwcTile(16, 2, 4, row_block=True),
    ),
]


def _pads(p: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    if isinstance(p, int):
        return (p, p, p, p)
    return (p[0], p[1], p[0], p[1]) if len(p) == 2 else p  # type: ignore[return-value]


def reference(case: Case, x: np.ndarray, w: np.ndarray, extras: dict) -> np.ndarray:
    """float64 NHWC convolution + epilogue by explicit loops over the kernel taps."""
    sh, sw = (case.strides, case.strides) if isinstance(case.strides, int) else case.strides
    pt, pl, pb, pr = _pads(case.padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    n, h, wd, _ = xp.shape
    k = case.kernel
    oh, ow = (h - k) // sh + 1, (wd - k) // sw + 1
    out = np.zeros((n, oh, ow, case.out_channels))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            if case.depthwise:
                out += patch * w[i, j].astype(np.float64)
            else:
                out += patch @ w[i, j].astype(np.float64)
    if "bias" in extras:
        out += extras["bias"]
    if "residual" in extras:
        out += extras["residual"]
    if case.activation is not None:
        out = np.maximum(out, 0)
    if case.activation == "relu6":
        out = np.minimum(out, 6)
    return out.astype(np.float32)


def build_case(case: Case) -> tuple[object, list[te.Tensor], tuple[int, ...]]:
    n, h, w, c = case.data
    k = case.kernel
    x = te.placeholder(case.data, F, name="x")
    wshape = (k, k, c) if case.depthwise else (k, k, c, case.out_channels)
    weight = te.placeholder(wshape, F, name="w")
    args = [x, weight]
    fn = depthwise_conv2d_nhwc if case.depthwise else conv2d_nhwc
    bias = te.placeholder((case.out_channels,), F, name="b") if case.bias else None
    probe = fn(x, weight, case.strides, case.padding)  # the plain conv's output shape
    residual = te.placeholder(probe.shape, F, name="r") if case.residual else None
    out = fn(
        x,
        weight,
        case.strides,
        case.padding,
        bias=bias,
        activation=case.activation,
        residual=residual,
    )
    args += [t for t in (bias, residual) if t is not None]
    s = schedule_nhwc(out, HOST, tile=case.tile)
    f = ember.build(s, [*args, out], target="host", name="nhwc_" + case.id)
    return f, args, tuple(int(d.value) for d in out.shape)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_nhwc_conv_matches_numpy(case: Case) -> None:
    f, args, out_shape = build_case(case)
    rng = np.random.default_rng()
    arrays = [rng.uniform(-1, 1, tuple(int(d.value) for d in a.shape)).astype(F) for a in args]
    extras = {}
    if case.bias:
        extras["bias"] = arrays[2]
    if case.residual:
        extras["residual"] = arrays[-1]
    out = np.full(out_shape, np.nan, F)  # every element must be written
    f(*arrays, out)
    want = reference(case, arrays[0], arrays[1], extras)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_tile_choice() -> None:
    lanes = channel_lanes(16, HOST)
    assert channel_lanes(24, HOST) == lanes  # 16 + 8 on AVX-512, 3 x 8 on AVX2
    assert channel_lanes(6, HOST) == 2 and channel_lanes(7, HOST) == 1
    tile = choose_nhwc_tile(24, 56, HOST)
    assert tile.lanes == lanes and -(-24 // lanes) % tile.oc_tile == 0
    dw = choose_nhwc_tile(144, 56, HOST, depthwise=True, input_bytes=1 << 20)
    assert (dw.lanes, dw.oc_tile, dw.rows_outer) == (lanes, 1, False)
    big = choose_nhwc_tile(96, 56, HOST, depthwise=True, input_bytes=5 << 20)
    assert big.rows_outer
    banded = choose_nhwc_tile(144, 56, HOST, depthwise=True, input_bytes=1 << 20, out_height=56)
    assert banded.row_bands == 8 and not banded.rows_outer
    # Dense 1x1 convs with long reductions on small planes run as row blocks.
    assert choose_nhwc_tile(160, 7, HOST, reduction=960, out_height=7).row_block
    assert not choose_nhwc_tile(960, 7, HOST, reduction=160, out_height=7).row_block


def test_nhwc_kernel_is_vector_code() -> None:
    x = te.placeholder((1, 7, 7, 32), F, name="x")
    w = te.placeholder((1, 1, 32, 64), F, name="w")
    out = conv2d_nhwc(x, w, activation="relu")
    f = ember.build(schedule_nhwc(out, HOST), [x, w, out], target="host", name="k")
    assert "float32x8" in f.get_source() or "float32x16" in f.get_source()


def _x(shape: tuple[int, ...] = (1, 8, 8, 16)) -> te.Tensor:
    return te.placeholder(shape, F, name="x")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: conv2d_nhwc(_x(), te.placeholder((3, 3, 8, 16), F)),
            ShapeError,
            "input channels .* are 8 but the data has 16",
        ),
        (
            lambda: conv2d_nhwc(_x((8, 8, 16)), te.placeholder((3, 3, 16, 16), F)),
            ShapeError,
            "data must be 4-D NHWC",
        ),
        (
            lambda: depthwise_conv2d_nhwc(_x(), te.placeholder((3, 3, 8), F)),
            ShapeError,
            "weight has 8 channels .* data has 16",
        ),
        (
            lambda: depthwise_conv2d_nhwc(_x(), te.placeholder((3, 3, 16, 2), F)),
            ShapeError,
            r"weight must be \(KH, KW, C\) or \(KH, KW, C, 1\)",
        ),
        (
            lambda: conv2d_nhwc(
                _x(), te.placeholder((1, 1, 16, 8), F), bias=te.placeholder((16,), F)
            ),
            ShapeError,
            r"bias must be float32 of shape \(8,\)",
        ),
        (
            lambda: conv2d_nhwc(
                _x(), te.placeholder((1, 1, 16, 8), F), residual=te.placeholder((1, 8, 8, 16), F)
            ),
            ShapeError,
            "residual must be a float32 NHWC tensor of the output's shape",
        ),
        (
            lambda: conv2d_nhwc(_x(), te.placeholder((1, 1, 16, 8), F), activation="gelu"),
            AttrError,
            "unknown activation 'gelu'",
        ),
        (
            lambda: conv2d_nhwc(_x(), te.placeholder((1, 1, 16, 8), F), strides=0),
            AttrError,
            "strides must be a positive int",
        ),
        (
            lambda: conv2d_nhwc(_x(), te.placeholder((1, 1, 16, 8), F), padding=(1, 2, 3)),
            AttrError,
            "padding must be 1, 2 or 4",
        ),
        (
            lambda: conv2d_nhwc(_x(), te.placeholder((11, 11, 16, 8), F)),
            ShapeError,
            "does not fit an input of 8 pixels",
        ),
    ],
)
def test_bad_input_raises(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


def test_schedule_rejects_other_tensors_and_bad_tiles() -> None:
    a = _x()
    b = te.compute(a.shape, lambda n, y, x, c: a[n, y, x, c] * 2.0, name="twice")
    with pytest.raises(ScheduleError, match="not the output of conv2d_nhwc"):
        schedule_nhwc(b, HOST)
    out = conv2d_nhwc(a, te.placeholder((1, 1, 16, 24), F))
    with pytest.raises(AttrError, match="2 vectors per tile do not divide the 3 vectors of 8"):
        schedule_nhwc(out, HOST, tile=NhwcTile(8, 2, 4))
