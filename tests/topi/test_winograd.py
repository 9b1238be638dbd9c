"""Winograd F(2x2,3x3) / F(4x4,3x3): the ops' numpy references, the compiled x86 kernels,
the winograd_conv2d graph pass, and compiled zoo models against the reference executor.

Every numerical test draws fresh random inputs; shapes include sizes that m does not
divide (border tiles), batch 2, asymmetric padding and 8- and 16-channel blocks.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from topi_testlib import Case, KernelTable, check_case, check_close

import ember
from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, Constant, Function, Module, TensorType, Tuple, Var
from ember.graph.passes.winograd import choose_tile_size, use_rule, winograd_conv2d
from ember.graph.visitor import post_order
from ember.ops import call, get_op
from ember.ops.layout import Layout, from_primal
from ember.ops.nn_conv import Conv2DAttrs
from ember.ops.winograd import (
    WinogradInputAttrs,
    transform_weight,
    winograd_conv2d_reference,
    winograd_matrices,
)
from ember.target import Target
from ember.testing import zoo
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")

F = "float32"


def _direct_blocked(x, w, b, padding, block_in, block_out):
    """Direct conv in numpy (nn.conv2d's reference) on blocked data -> blocked output."""
    from ember.ops.layout import to_primal

    primal = to_primal(x, Layout.parse(f"NCHW{block_in}c"))
    out = get_op("nn.conv2d").evaluate([primal, w, b], Conv2DAttrs(padding=padding))
    return np.ascontiguousarray(from_primal(out, Layout.parse(f"NCHW{block_out}c")))


def test_matrices_compute_a_1d_correlation() -> None:
    """A^T [(G g) * (B^T d)] = the valid correlation of d with g, for both tile sizes."""
    rng = np.random.default_rng()
    for m in (2, 4):
        at, g, bt = winograd_matrices(m)
        d, k = rng.standard_normal(m + 2), rng.standard_normal(3)
        want = np.array([d[i : i + 3] @ k for i in range(m)])
        np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize(
    "n,c,o,h,w,padding,block",
    [
        (1, 16, 32, 7, 7, (1, 1, 1, 1), 16),
        (2, 16, 8, 9, 5, (1, 0, 1, 2), 8),  # batch 2, asymmetric padding, 8-blocks
        (1, 8, 16, 6, 13, (0, 0, 0, 0), 8),  # no padding: 4x11 output
        (1, 32, 16, 1, 1, (1, 1, 1, 1), 16),  # one pixel
    ],
)
def test_reference_matches_direct_conv(n, c, o, h, w, padding, block, m) -> None:
    rng = np.random.default_rng()
    x = rng.standard_normal((n, c // block, h, w, block)).astype(F)
    weight = rng.standard_normal((o, c, 3, 3)).astype(F)
    bias = rng.standard_normal(o).astype(F)
    got = winograd_conv2d_reference(x, transform_weight(weight, m, block, block), bias, padding, m)
    check_close(got, _direct_blocked(x, weight, bias, padding, block, block), 1e-5)


# ----------------------------------------------------------------------------- compiled kernels


def _input_case(id_, n, c, h, w, m, block=16, padding=1) -> Case:
    return Case(
        id_,
        "nn.winograd_input_transform",
        [((n, c // block, h, w, block), F)],
        dict(padding=padding, tile_size=m),
        rtol=1e-5,
    )


def _gemm_case(id_, m, c, o, tiles, block=16) -> Case:
    a = m + 2
    return Case(
        id_,
        "nn.winograd_batch_matmul",
        [((a, a, c // block, tiles, block), F), ((a, a, o // block, c // block, block, block), F)],
        rtol=1e-5,
    )


def _output_case(id_, m, o, tiles, out_size, batch=1, block=16, bias=True) -> Case:
    a = m + 2
    inputs = [((a, a, o // block, tiles, block), F)]
    if bias:
        inputs.append(((o,), F))
    return Case(
        id_,
        "nn.winograd_output_transform",
        inputs,
        dict(tile_size=m, output_size=out_size),
        rtol=1e-5,
    )


CASES = [
    _input_case("in_f2_7x7", 1, 32, 7, 7, 2),
    _input_case("in_f4_9x13_batch2", 2, 16, 9, 13, 4, block=8, padding=(1, 0, 1, 2)),
    _input_case("in_f4_14x14", 1, 16, 14, 14, 4),
    _input_case("in_f2_nopad", 1, 16, 6, 5, 2, padding=0),
    _gemm_case("gemm_f2_odd_tiles", 2, 32, 48, 37),
    _gemm_case("gemm_f4_8blocks", 4, 24, 16, 9, block=8),
    _output_case("out_f2_7x7", 2, 32, 16, (7, 7)),
    _output_case("out_f4_9x13_batch2", 4, 16, 2 * 3 * 4, (9, 13), batch=2, block=8),
    _output_case("out_f4_nobias", 4, 16, 4, (8, 5), bias=False),
]


@pytest.fixture(scope="module")
def table() -> KernelTable:
    return KernelTable(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kernel_matches_reference(table: KernelTable, case: Case) -> None:
    check_case(table, case)


@pytest.mark.parametrize("m", [2, 4])
def test_output_transform_with_epilogue_matches_direct_conv(m: int) -> None:
    """The three kernels in a row (epilogue: bias + residual add + relu fused into the
    output transform) give the direct conv's result; 11x10 leaves border tiles."""
    n, c, o, h, w, block = 1, 16, 32, 11, 10, 16
    x = Var("x", TensorType((n, c // block, h, w, block)))
    v = call("nn.winograd_input_transform", x, padding=1, tile_size=m)
    vv = Var("v", v.type)
    u = Var("u", TensorType((m + 2, m + 2, o // block, c // block, block, block)))
    mm = call("nn.winograd_batch_matmul", vv, u)
    mv, b = Var("mm", mm.type), Var("b", TensorType((o,)))
    r = Var("r", TensorType((n, o // block, h, w, block)))
    y = call("nn.winograd_output_transform", mv, b, tile_size=m, output_size=(h, w))
    y = call("nn.relu", call("add", y, r))
    funcs = [
        Function((x,), v, {"primitive": True, "name": "wi"}),
        Function((vv, u), mm, {"primitive": True, "name": "wg"}),
        Function((mv, b, r), y, {"primitive": True, "name": "wo"}),
    ]
    from ember.te.lower import lower

    prims = []
    for f in funcs:
        s, args = schedule_primitive(f, HOST)
        prims.append(lower(s, args, name=f.attrs["name"]))
    module = ember.build(prims, target="host")
    rng = np.random.default_rng()
    xv = rng.standard_normal(x.type.shape).astype(F)
    weight = rng.standard_normal((o, c, 3, 3)).astype(F)
    bias = rng.standard_normal(o).astype(F)
    res = rng.standard_normal(r.type.shape).astype(F)
    vbuf, mbuf = np.zeros(v.type.shape, F), np.zeros(mm.type.shape, F)
    out = np.zeros(y.type.shape, F)
    module["wi"](xv, vbuf)
    module["wg"](vbuf, transform_weight(weight, m, block, block), mbuf)
    module["wo"](mbuf, bias, res, out)
    want = np.maximum(_direct_blocked(xv, weight, bias, (1, 1, 1, 1), block, block) + res, 0)
    check_close(out, want, 1e-4)
    # The transforms hold no select after unrolling: each (e, u) got its own sum.
    source = module.get_source()
    lines = [ln for ln in source.splitlines() if "winograd_V[" in ln and "=" in ln]
    assert lines and not any("?" in ln for ln in lines)


# ----------------------------------------------------------------------------- graph pass


def _blocked_conv(x, cin, cout, rng, block=16, k=3, **attrs) -> Call:
    weight = rng.standard_normal((cout, cin // attrs.get("groups", 1), k, k)).astype(F)
    wl = f"OIHW{1 if attrs.get('groups', 1) > 1 else block}i{block}o"
    packed = np.ascontiguousarray(from_primal(weight, Layout.parse(wl)))
    bias = Constant(rng.standard_normal(cout).astype(F), "bias")
    return call("nn.conv2d_nchwc", x, Constant(packed, "w"), bias, **attrs)


def _ops(mod: Module) -> Counter[str]:
    return Counter(
        n.op.name
        for n in post_order(mod.main.body)
        if isinstance(n, Call) and hasattr(n.op, "name")
    )


def test_pass_rewrites_exactly_the_eligible_convs() -> None:
    rng = np.random.default_rng()
    x = Var("x", TensorType((1, 4, 16, 16, 16)))
    a = call("nn.relu", _blocked_conv(x, 64, 64, rng, padding=1))  # eligible
    b = _blocked_conv(a, 64, 64, rng, padding=1, strides=2)  # stride 2: no
    c = _blocked_conv(a, 64, 64, rng, k=1)  # 1x1: no
    d = _blocked_conv(a, 64, 64, rng, padding=1, groups=64)  # depthwise: no
    e = _blocked_conv(a, 64, 64, rng, padding=2, dilation=2)  # dilated: no
    wvar = Var("w", TensorType((4, 4, 3, 3, 16, 16)))
    f = call("nn.conv2d_nchwc", a, wvar, padding=1)  # weight not a constant: no
    small = _blocked_conv(x, 64, 16, rng, padding=1)  # 16 output channels: the rule says no
    body = Tuple((b, c, d, e, f, small))
    mod = Module.from_function(Function((x, wvar), body))
    new = winograd_conv2d(mod)
    before, after = _ops(mod), _ops(new)
    assert after["nn.winograd_input_transform"] == 1
    assert after["nn.winograd_batch_matmul"] == 1
    assert after["nn.winograd_output_transform"] == 1
    assert after["nn.conv2d_nchwc"] == before["nn.conv2d_nchwc"] - 1
    # Forcing a tile size skips the channel rule: the 16-output-channel conv goes too.
    forced = _ops(winograd_conv2d(mod, tile_size=2))
    assert forced["nn.winograd_batch_matmul"] == 2
    # Same values (the weight transform happened here: U is a constant of the new graph).
    xv = rng.standard_normal(x.type.shape).astype(F)
    wv = rng.standard_normal(wvar.type.shape).astype(F)
    want = ember.graph.interpret(mod, {}, {"x": xv, "w": wv})
    got = ember.graph.interpret(new, {}, {"x": xv, "w": wv})
    for g, w in zip(got, want, strict=True):
        check_close(g, w, 1e-4)
    gemm = next(
        n
        for n in post_order(new.main.body)
        if isinstance(n, Call) and n.op.name == "nn.winograd_batch_matmul"
    )
    assert isinstance(gemm.args[1], Constant) and gemm.args[1].type.shape == (6, 6, 4, 4, 16, 16)


def test_rule_follows_the_measurements() -> None:
    assert choose_tile_size(64, 64, 56, 56) == 4
    assert choose_tile_size(128, 128, 28, 28) == 4
    assert choose_tile_size(256, 256, 14, 14) == 2  # 4x4 tiles would waste 23% of 14x14
    assert choose_tile_size(512, 512, 7, 7) is None  # measured slower than the direct conv
    assert choose_tile_size(16, 64, 56, 56) is None  # too few channels


def test_errors() -> None:
    x = Var("x", TensorType((1, 1, 4, 4, 16)))
    with pytest.raises(AttrError, match="tile_size=3 is not supported"):
        call("nn.winograd_input_transform", x, tile_size=3)
    with pytest.raises(ShapeError, match="does not fit"):
        call("nn.winograd_input_transform", Var("s", TensorType((1, 1, 1, 1, 16))), padding=0)
    v = Var("v", TensorType((4, 4, 1, 9, 16)))
    with pytest.raises(ShapeError, match="disagree"):
        call("nn.winograd_batch_matmul", v, Var("u", TensorType((6, 6, 1, 1, 16, 16))))
    with pytest.raises(ShapeError, match="expected 6x6 for tile_size=4"):
        call("nn.winograd_output_transform", v, tile_size=4, output_size=(6, 6))
    with pytest.raises(ShapeError, match="not a whole number"):
        call("nn.winograd_output_transform", v, tile_size=2, output_size=(4, 4))
    with pytest.raises(ShapeError, match="bias has shape"):
        call("nn.winograd_output_transform", v, Var("b", TensorType((8,))), output_size=(6, 6))
    with pytest.raises(ShapeError, match="is not \\(O, I, 3, 3\\)"):
        transform_weight(np.zeros((16, 16, 5, 5), F), 2, 16, 16)
    with pytest.raises(AttrError, match="tile_size=6 is not supported"):
        winograd_conv2d(Module.from_function(Function((x,), x)), tile_size=6)
    assert WinogradInputAttrs(padding=1).padding == (1, 1, 1, 1)


# ----------------------------------------------------------------------------- zoo models


def _compile_and_compare(name: str, options: dict, tile_size: int | None) -> None:
    mod, params = zoo.get(name, **options)
    x = zoo.random_input(name, seed=int(np.random.SeedSequence().entropy % 2**32), **options)
    if tile_size is None:
        lib = ember.compile(mod, params, target="host")
    else:  # small test models: force Winograd on every eligible conv
        with use_rule(lambda *shape: tile_size):
            lib = ember.compile(mod, params, target="host")
    kernels = " ".join(lib.sources)
    assert "winograd" in kernels, "no conv took the Winograd path"
    (got,) = lib.load().run({"data": x})
    (want,) = ember.graph.interpret(mod, params, {"data": x})
    atol = 1e-5 * float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("m", [2, 4])
def test_small_resnet18_compiled_with_winograd_matches_reference(m: int) -> None:
    _compile_and_compare("resnet18", zoo.SMALL["resnet18"], m)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_default_rule_matches_reference(name: str) -> None:
    """At 64x64 pixels the stem leaves 16x16 maps with 64 channels: the rule fires."""
    options = {"image_size": 64, "num_classes": 10}
    _compile_and_compare(name, options, None)
