"""alter_layout: conv chains in NCHW8c, weights packed at compile time, same results.

Checks the rewritten graph (which ops became blocked, no back-to-back transform pairs,
weights folded to constants) against the reference executor, and compiles small models
end to end (odd sizes, channel counts that cannot be blocked, depthwise) against it.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.errors import AttrError, EmberRuntimeError
from ember.graph.interpreter import interpret
from ember.graph.ir import Call, Constant, Function, Module, TensorType, Var, const
from ember.graph.passes import optimize
from ember.graph.passes.alter_layout import alter_layout
from ember.graph.visitor import post_order
from ember.ops import call

F = "float32"


def _w(rng: np.random.Generator, *shape: int) -> Constant:
    return const((rng.standard_normal(shape) * 0.2).astype(F))


def _model(rng: np.random.Generator, hw: int = 7) -> Module:
    """conv(3->16) relu maxpool conv relu conv +res relu | conv(16->12) | dw conv | gap dense."""
    x = Var("data", TensorType((1, 3, hw, hw)))
    y = call("nn.relu", call("nn.conv2d", x, _w(rng, 16, 3, 3, 3), _w(rng, 16), padding=1))
    y = call("nn.max_pool2d", y, pool_size=3, strides=1, padding=1)
    z = call("nn.relu", call("nn.conv2d", y, _w(rng, 16, 16, 3, 3), _w(rng, 16), padding=1))
    z = call("nn.conv2d", z, _w(rng, 16, 16, 1, 1), _w(rng, 16))
    z = call("nn.relu", call("add", z, y))
    odd = call("nn.conv2d", z, _w(rng, 12, 16, 3, 3), padding=1)  # 12: not blockable
    dw = call("nn.conv2d", z, _w(rng, 16, 1, 3, 3), groups=16, strides=2, padding=1)
    dw = call("clip", dw, a_min=0.0, a_max=6.0)
    dw = call("nn.avg_pool2d", dw, pool_size=3, padding=1, count_include_pad=True)
    cat = call("concatenate", z, z, axis=1)
    pooled = call("nn.global_avg_pool2d", dw)
    out = call("nn.dense", call("flatten", pooled), _w(rng, 10, 16))
    body = ember.graph.ir.Tuple((out, odd, cat))
    return Module.from_function(Function((x,), body))


def _ops(mod: Module) -> list[str]:
    return [n.op.name for n in post_order(mod.main.body) if isinstance(n, Call)]


@pytest.mark.parametrize("lanes", [8, 16])
def test_chain_stays_blocked_and_matches_reference(lanes: int) -> None:
    rng = np.random.default_rng()
    mod = optimize(_model(rng), {})
    new = alter_layout(mod, lanes=lanes)
    ops = _ops(new)
    assert ops.count("nn.conv2d_nchwc") == 4  # 3x3, 3x3, 1x1, depthwise
    assert ops.count("nn.conv2d") == 1  # the 12-channel conv keeps NCHW
    assert "nn.max_pool2d_nchwc" in ops and "nn.avg_pool2d_nchwc" in ops
    # Transforms: the input (to NCHW3c), then back to NCHW for: the 12-channel conv, the
    # concat output, the global pool. Weights were packed into constants (folded).
    assert ops.count("layout_transform") == 4
    for n in post_order(new.main.body):
        if isinstance(n, Call) and n.op.name == "layout_transform":
            arg = n.args[0]
            assert not isinstance(arg, Constant), "weights must be folded"
            assert not (isinstance(arg, Call) and arg.op.name == "layout_transform")
    blocks = {
        n.type.shape[-1]
        for n in post_order(new.main.body)
        if isinstance(n, Call) and n.op.name == "nn.conv2d_nchwc"
    }
    assert blocks == {lanes}
    x = rng.standard_normal((1, 3, 7, 7)).astype(F)
    for got, want in zip(interpret(new, {}, {"data": x}), interpret(mod, {}, {"data": x})):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_mixed_blocks_and_bad_lanes() -> None:
    """24 channels do not divide by 16: that conv uses 8-channel blocks beside 16-channel
    ones, converting through NCHW."""
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, 16, 6, 6)))
    y = call("nn.relu", call("nn.conv2d", x, _w(rng, 24, 16, 3, 3), padding=1))
    y = call("nn.conv2d", y, _w(rng, 32, 24, 1, 1))
    mod = Module.from_function(Function((x,), y))
    new = alter_layout(mod, lanes=16)
    convs = [
        n
        for n in post_order(new.main.body)
        if isinstance(n, Call) and n.op.name == "nn.conv2d_nchwc"
    ]
    assert [c.type.shape[-1] for c in convs] == [8, 16]
    x_val = rng.standard_normal((1, 16, 6, 6)).astype(F)
    np.testing.assert_allclose(
        interpret(new, {}, {"data": x_val})[0],
        interpret(mod, {}, {"data": x_val})[0],
        rtol=1e-4,
        atol=1e-5,
    )
    with pytest.raises(AttrError, match="not a multiple of 8"):
        alter_layout(mod, lanes=12)


@pytest.mark.parametrize("compiled", [False, True])
def test_wide_conv_with_half_vector_channels_runs_on_padded_whole_vectors(compiled: bool) -> None:
    """264 output channels (a multiple of 8, not 16) on 16 lanes: the conv computes 272
    channels on 16-channel blocks (zero weights and bias past 264), then crops; 24 channels
    (too few: padding would waste 1/3) keep 8-channel blocks."""
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, 32, 5, 5)))
    wide = call("nn.conv2d", x, _w(rng, 264, 32, 1, 1), _w(rng, 264))
    wide = call("nn.relu", wide)
    narrow = call("nn.conv2d", x, _w(rng, 24, 32, 3, 3), _w(rng, 24), padding=1)
    mod = Module.from_function(Function((x,), ember.graph.ir.Tuple((wide, narrow))))
    new = alter_layout(mod, lanes=16)
    convs = [
        n
        for n in post_order(new.main.body)
        if isinstance(n, Call) and n.op.name == "nn.conv2d_nchwc"
    ]
    assert sorted(c.type.shape[1:] for c in convs) == [(3, 5, 5, 8), (17, 5, 5, 16)]
    assert "strided_slice" in _ops(new)
    assert "strided_slice" not in _ops(alter_layout(mod, lanes=8))  # 264 = 33 x 8: no padding
    x_val = rng.standard_normal((1, 32, 5, 5)).astype(F)
    want = interpret(mod, {}, {"data": x_val})
    if compiled:
        got = ember.compile(mod, {}, target="host").load().run({"data": x_val})
    else:
        got = interpret(new, {}, {"data": x_val})
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_per_channel_scale_and_shift_stay_blocked() -> None:
    """DenseNet's pre-activation: concat -> x * (C,1,1) + (C,1,1) -> relu -> conv, all blocked."""
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, 16, 5, 5)))
    a = call("nn.relu", call("nn.conv2d", x, _w(rng, 16, 16, 1, 1)))
    cat = call("concatenate", a, call("nn.conv2d", a, _w(rng, 16, 16, 3, 3), padding=1), axis=1)
    y = call("multiply", cat, _w(rng, 32, 1, 1))
    y = call("nn.relu", call("add", y, const(rng.standard_normal((1, 32, 1, 1)).astype(F))))
    y = call("nn.conv2d", y, _w(rng, 16, 32, 1, 1))
    mod = Module.from_function(Function((x,), y))
    for lanes in (8, 16):
        new = alter_layout(mod, lanes=lanes)
        ops = _ops(new)
        assert ops.count("layout_transform") == 2, ops  # only the input and the output
        x_val = rng.standard_normal((1, 16, 5, 5)).astype(F)
        np.testing.assert_allclose(
            interpret(new, {}, {"data": x_val})[0],
            interpret(mod, {}, {"data": x_val})[0],
            rtol=1e-4,
            atol=1e-5,
        )


def test_nothing_to_block_is_unchanged() -> None:
    x = Var("data", TensorType((1, 12, 5, 5)))
    rng = np.random.default_rng()
    body = call("nn.relu", call("nn.conv2d", x, _w(rng, 12, 12, 3, 3)))
    mod = Module.from_function(Function((x,), body))
    assert "layout_transform" not in _ops(alter_layout(mod, lanes=8))


@pytest.mark.parametrize("hw", [7, 9])
def test_compiled_model_matches_reference(hw: int) -> None:
    rng = np.random.default_rng()
    mod = _model(rng, hw)
    lib = ember.compile(mod, {}, target="host")
    assert "conv2d_nchwc" in lib.get_source()
    m = lib.load()
    x = rng.standard_normal((1, 3, hw, hw)).astype(F)
    for got, want in zip(m.run({"data": x}), interpret(mod, {}, {"data": x})):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    prof = m.profile(repeat=3, warmup=1)
    assert len(prof.rows) == len(lib.metadata["steps"]) > 0
    assert abs(sum(r.share for r in prof.rows) - 1.0) < 1e-6
    conv_rows = [r for r in prof.rows if "conv2d_nchwc" in r.kernel]
    assert conv_rows and all(r.flops > 0 and r.gflops > 0 for r in conv_rows)
    assert "GFLOP/s" in str(prof)
    m.metadata.pop("steps")  # an artifact from before profiling existed
    with pytest.raises(EmberRuntimeError, match="no per-kernel metadata"):
        m.profile()
