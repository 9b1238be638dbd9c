"""x86 fast paths: layout_transform, blocked conv2d (NCHW[x]c) and max pooling kernels.

Every kernel is built through the op strategy (so the x86 schedule is the one tested)
and compared with the op's numpy reference on fresh random inputs, including odd sizes
(7x7 and 9x9 images, 3 input channels, strides, dilation, depthwise).
"""

from __future__ import annotations

import numpy as np
import pytest
from topi_testlib import Case, KernelTable, check_case, check_close

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Function, TensorType, Var
from ember.ops import call, get_op
from ember.target import Target
from ember.topi.strategy import schedule_primitive
from ember.topi.x86.conv2d import ConvTile, choose_tile

HOST = Target.parse("host")


F = "float32"


def _conv(id_: str, n, c, h, w, o, k, block=8, groups=1, bias=True, ob=8, **attrs) -> Case:
    wshape = (o // ob, c // block, k, k, block, ob) if groups == 1 else (o // ob, 1, k, k, 1, ob)
    inputs = [((n, c // block, h, w, block), F), (wshape, F)]
    if bias:
        inputs.append(((o,), F))
    return Case(id_, "nn.conv2d_nchwc", inputs, dict(groups=groups, **attrs), rtol=1e-4)


CASES = [
    _conv("3x3_pad1_7x7", 1, 16, 7, 7, 32, 3, padding=1),
    _conv("3x3_stride2_9x9", 1, 16, 9, 9, 16, 3, strides=2, padding=1),
    _conv("1x1_stride2_nobias", 1, 16, 14, 14, 32, 1, strides=2, bias=False),
    _conv("rgb_block3_7x7", 1, 3, 15, 15, 8, 7, block=3, strides=2, padding=3),
    _conv("dilated", 1, 8, 11, 11, 8, 3, dilation=2, padding=2),
    _conv("depthwise_s1", 1, 16, 9, 9, 16, 3, groups=16, padding=1),
    _conv("depthwise_s2", 1, 24, 14, 14, 24, 3, groups=24, strides=2, padding=1),
    _conv("batch2_odd_oc", 2, 8, 5, 6, 24, 3, padding=(1, 0, 1, 2)),
    _conv("prime_width_tail", 1, 16, 5, 37, 32, 3, padding=(1, 1, 1, 0)),
    _conv("avx512_blocks16", 1, 32, 7, 7, 48, 3, block=16, ob=16, padding=1),
    _conv("blocks8_to_16", 1, 24, 6, 6, 32, 1, block=8, ob=16),
    _conv("depthwise16", 1, 32, 7, 7, 32, 3, block=16, ob=16, groups=32, padding=1),
    # >= DW_MIN_BLOCKS channel blocks: rows serial inside the parallel block loop, border
    # rows split off by partition_selects.
    _conv("depthwise_rows_s1", 1, 64, 9, 9, 64, 3, groups=64, padding=1),
    _conv("depthwise_rows_s2", 1, 80, 11, 10, 80, 3, groups=80, strides=2, padding=(1, 0, 1, 1)),
    _conv("depthwise_rows16", 1, 128, 7, 7, 128, 3, block=16, ob=16, groups=128, padding=1),
    Case(
        "transform_nchw8c",
        "layout_transform",
        [((1, 16, 5, 7), F)],
        dict(src_layout="NCHW", dst_layout="NCHW8c"),
    ),
    Case(
        "transform_back",
        "layout_transform",
        [((2, 3, 4, 5, 8), F)],
        dict(src_layout="NCHW8c", dst_layout="NCHW"),
    ),
    Case(
        "transform_weight",
        "layout_transform",
        [((16, 3, 3, 3), F)],
        dict(src_layout="OIHW", dst_layout="OIHW3i8o"),
    ),
    Case(
        "maxpool_s2_pad",
        "nn.max_pool2d_nchwc",
        [((1, 2, 9, 9, 8), F)],
        dict(pool_size=3, strides=2, padding=1),
    ),
    Case(
        "avgpool_pad_exclude",
        "nn.avg_pool2d_nchwc",
        [((1, 2, 7, 7, 8), F)],
        dict(pool_size=3, strides=1, padding=1),
    ),
    Case(
        "avgpool_ceil_include_pad",
        "nn.avg_pool2d_nchwc",
        [((1, 1, 8, 8, 16), F)],
        dict(pool_size=3, strides=2, padding=1, ceil_mode=True, count_include_pad=True),
    ),
    Case(
        "maxpool_ceil",
        "nn.max_pool2d_nchwc",
        [((1, 1, 8, 8, 8), F)],
        dict(pool_size=3, strides=2, ceil_mode=True),
    ),
]


X86_TARGETS = {"avx2": "llvm -mcpu=haswell", "avx512": "llvm -mcpu=skylake-avx512"}
"""Both x86 paths (16 and 32 vector registers) choose their tiles; the code runs here."""


@pytest.fixture(scope="module", params=sorted(X86_TARGETS))
def table(request: pytest.FixtureRequest) -> KernelTable:
    return KernelTable(CASES, X86_TARGETS[request.param])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kernel_matches_reference(table: KernelTable, case: Case) -> None:
    check_case(table, case)


def test_conv_with_epilogue_matches_reference() -> None:
    """conv + bias + residual add + relu in one kernel: the register tile feeds the epilogue."""
    x = Var("x", TensorType((1, 2, 7, 7, 8)))
    w = Var("w", TensorType((4, 2, 3, 3, 8, 8)))
    b = Var("b", TensorType((32,)))
    r = Var("r", TensorType((1, 4, 7, 7, 8)))
    y = call("nn.relu", call("add", call("nn.conv2d_nchwc", x, w, b, padding=1), r))
    func = Function((x, w, b, r), y, {"primitive": True, "name": "k"})
    s, args = schedule_primitive(func, HOST)
    import ember

    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    vals = [rng.standard_normal(v.type.shape).astype(F) for v in (x, w, b, r)]
    out = np.zeros(y.type.shape, F)
    mod(*vals, out)
    conv = get_op("nn.conv2d_nchwc").evaluate(vals[:3], y.args[0].args[0].attrs)
    check_close(out, np.maximum(conv + vals[3], 0), 1e-4)
    source = mod.get_source()
    assert "float32x8" in source  # the tile is vector code


def test_register_tile_choice() -> None:
    assert choose_tile(8, 56, 16, False) == ConvTile(1, 14)  # AVX2: 14 accumulators
    assert choose_tile(8, 56, 32, False) == ConvTile(2, 14)  # 32 registers: 28
    # AVX-512 broadcasts inside the FMA: 4 x 7 also fits and needs fewer loads than 2 x 14.
    assert choose_tile(8, 56, 32, False, broadcast_register=False) == ConvTile(4, 7)
    assert choose_tile(3, 7, 16, False) == ConvTile(1, 7)  # odd block count: no pairs
    # Depthwise tiles use at most half the registers (DW_TILE_REGISTER_SHARE): a prime
    # width of 13 runs as 7 + 6 pixels on AVX2, in one 13-pixel tile with 32 registers.
    assert choose_tile(4, 13, 16, True) == ConvTile(1, 7)
    assert choose_tile(4, 13, 32, True, broadcast_register=False) == ConvTile(1, 13)
    assert choose_tile(12, 56, 16, True) == ConvTile(1, 8)  # ConvNeXt 7x7: not 14 (spills)
    # 71 and 17 are prime: the row is spread evenly over the fewest tiles that fit, and
    # the last tile is narrower (loop partitioning). 71 = 4 x 15 + 11 pixels x 2 blocks.
    assert choose_tile(12, 71, 32, False, broadcast_register=False) == ConvTile(2, 15)
    # 17 = 6 + 6 + 5 pixels x 4 blocks (~23 accumulators per tile), not 15 + 2 x 2 blocks
    # (17 on average: the 2-pixel tile does little work per load).
    assert choose_tile(12, 17, 32, False, broadcast_register=False) == ConvTile(4, 6)
    assert choose_tile(4, 17, 16, False) == ConvTile(2, 6)  # AVX2: 6+6+5 x 2, not 14+3 x 1
    assert Target.parse("llvm -mcpu=haswell").vector_registers == 16
    assert Target.parse("llvm -mcpu=skylake-avx512").vector_registers == 32


def test_layout_errors() -> None:
    x = Var("x", TensorType((1, 12, 4, 4)))
    with pytest.raises(ShapeError, match="does not divide into blocks of 8"):
        call("layout_transform", x, src_layout="NCHW", dst_layout="NCHW8c")
    with pytest.raises(AttrError, match="primal axes differ"):
        call("layout_transform", x, src_layout="NCHW", dst_layout="NHWC")
    with pytest.raises(AttrError, match="not a layout string"):
        call("layout_transform", x, src_layout="NC-HW", dst_layout="NCHW")
    with pytest.raises(AttrError, match="needs a factor"):
        call("layout_transform", x, src_layout="NCHW", dst_layout="NCHWc")
    d = Var("d", TensorType((1, 2, 4, 4, 8)))
    w = Var("w", TensorType((1, 1, 3, 3, 8, 8)))
    with pytest.raises(ShapeError, match="data has 16 channels"):
        call("nn.conv2d_nchwc", d, w)


@pytest.mark.parametrize("cpu", ["haswell", "skylake-avx512"])
@pytest.mark.parametrize(
    "k,stride,h", [(3, 1, 7), (3, 2, 9), (5, 1, 11), (5, 2, 11), (7, 1, 13), (7, 2, 13)]
)
def test_depthwise_border_keeps_non_finite_inputs_exact(cpu, k, stride, h) -> None:  # type: ignore[no-untyped-def]
    """Taps that fall in the zero padding contribute exactly 0, even next to an inf or a
    NaN: a clamped load times a 0/1 mask would make 0 * inf = NaN where the true sum is
    +-inf (the full-row tiles inline the padding that way). Every window size the nets
    use (3x3, 5x5, ConvNeXt's 7x7 with pad 3), both strides, rows wide enough for more
    than one register tile."""
    import ember

    c = 32
    x = Var("x", TensorType((1, c // 8, h, h, 8)))
    w = Var("w", TensorType((c // 8, 1, k, k, 1, 8)))
    y = call("nn.conv2d_nchwc", x, w, padding=k // 2, strides=stride, groups=c)
    func = Function((x, w), y, {"primitive": True, "name": "k"})
    s, args = schedule_primitive(func, Target.parse(f"llvm -mcpu={cpu}"))
    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    xv = rng.standard_normal(x.type.shape).astype(F)
    wv = rng.uniform(0.5, 1.5, w.type.shape).astype(F)  # positive taps: inf stays inf
    xv[0, 0, 0, 0, :] = np.inf  # a corner pixel: every border tap near it is clamped to it
    xv[0, 1, h - 1, 3, :] = -np.inf  # the bottom row
    xv[0, 2, 2, h - 1, :] = np.nan  # the right column
    xv[0, 3, h // 2, 0, :] = np.inf  # the left column, inner rows (no row split-off)
    out = np.zeros(y.type.shape, F)
    mod(xv, wv, out)
    want = get_op("nn.conv2d_nchwc").evaluate([xv, wv], y.attrs)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(out[finite], want[finite], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out[np.isinf(want)], want[np.isinf(want)])
