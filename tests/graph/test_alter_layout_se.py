"""alter_layout + fuse_ops on squeeze-and-excitation: global pool, 1x1 convs, gate and the
channel multiply stay in NCHW[x]c, so the feature map is never laid out in NCHW and back;
results match the reference executor (and, compiled, onnxruntime via the zoo models)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.graph.interpreter import interpret
from ember.graph.ir import Call, Constant, Function, Module, TensorType, Var, const
from ember.graph.passes import optimize
from ember.graph.passes.alter_layout import alter_layout
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target
from ember.testing import zoo

F = "float32"


def _w(rng: np.random.Generator, *shape: int) -> Constant:
    return const((rng.standard_normal(shape) * 0.3).astype(F))


def _se_block(squeeze: int, gate: str, channels: int = 32, hw: int = 6) -> Module:
    """conv -> act -> SE(pool, fc1, act, fc2, gate, multiply) -> 1x1 conv (MBConv's tail)."""
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, channels, hw, hw)))
    y = call("nn.conv2d", x, _w(rng, channels, 1, 3, 3), _w(rng, channels), padding=1,
             groups=channels)  # fmt: skip
    y = call("nn.silu", y)
    s = call("nn.global_avg_pool2d", y)
    s = call("nn.relu", call("nn.conv2d", s, _w(rng, squeeze, channels, 1, 1), _w(rng, squeeze)))
    s = call("nn.conv2d", s, _w(rng, channels, squeeze, 1, 1), _w(rng, channels))
    s = call(gate, s, **({"alpha": 1 / 6} if gate == "nn.hard_sigmoid" else {}))
    out = call("nn.conv2d", call("multiply", y, s), _w(rng, 16, channels, 1, 1))
    return Module.from_function(Function((x,), out))


def _transforms(mod: Module) -> list[Call]:
    return [
        n
        for n in post_order(mod.main.body)
        if isinstance(n, Call) and n.op.name == "layout_transform"
    ]


def _same(new: Module, mod: Module, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng().standard_normal(shape).astype(F)
    np.testing.assert_allclose(
        interpret(new, {}, {"data": x})[0], interpret(mod, {}, {"data": x})[0], rtol=1e-4,
        atol=1e-5,
    )  # fmt: skip


@pytest.mark.parametrize("lanes", [8, 16])
@pytest.mark.parametrize("gate", ["sigmoid", "nn.hard_sigmoid"])
def test_se_with_blockable_squeeze_stays_blocked(lanes, gate):
    mod = optimize(_se_block(squeeze=16, gate=gate), {})
    new = alter_layout(mod, lanes=lanes)
    ops = [n.op.name for n in post_order(new.main.body) if isinstance(n, Call)]
    # only the input (NCHW -> blocked) and the output (blocked -> NCHW) change layout
    assert len(_transforms(new)) == 2, ops
    assert "nn.global_avg_pool2d" not in ops and ops.count("reduce_mean") == 1
    assert ops.count("nn.conv2d_nchwc") == 4
    (mul,) = [
        n for n in post_order(new.main.body) if isinstance(n, Call) and n.op.name == "multiply"
    ]
    assert [a.type.shape for a in mul.args] == [
        (1, 32 // lanes, 6, 6, lanes),
        (1, 32 // lanes, 1, 1, lanes),
    ]
    _same(new, mod, (1, 32, 6, 6))


def test_se_with_an_unblockable_squeeze_relays_out_only_the_pooled_values():
    """EfficientNet's squeeze of 4 channels keeps fc1 in NCHW: the (1, C, 1, 1) pooled
    values and scale cross layouts, the (1, C, H, W) map does not."""
    mod = optimize(_se_block(squeeze=4, gate="sigmoid"), {})
    new = alter_layout(mod, lanes=8)
    sizes = sorted(n.type.size for n in _transforms(new))
    assert len(sizes) >= 3 and all(size <= 32 for size in sizes[:-2]), sizes
    assert sizes[-2:] == [16 * 36, 32 * 36]  # the output and the input
    _same(new, mod, (1, 32, 6, 6))


def test_se_kernels_after_fusion_and_compiled():
    mod = optimize(_se_block(squeeze=16, gate="sigmoid"), {})
    fused = fuse_ops(alter_layout(mod, lanes=8))
    names = [k.op.name for k in kernels(fused)]
    assert names == [
        "fused_layout_transform",
        "fused_nn_conv2d_nchwc_nn_silu",  # depthwise + SiLU
        "fused_reduce_mean",  # the squeeze
        "fused_nn_conv2d_nchwc_nn_relu",
        "fused_nn_conv2d_nchwc_sigmoid",
        "fused_multiply",  # the excitation: one blocked broadcast pass
        "fused_nn_conv2d_nchwc",
        "fused_layout_transform",  # the model's output, back to NCHW
    ], names
    x = np.random.default_rng().standard_normal((1, 32, 6, 6)).astype(F)
    got = ember.compile(mod, {}, target="host").load().run({"data": x})[0]
    np.testing.assert_allclose(got, interpret(mod, {}, {"data": x})[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenet_v3_large"])
def test_zoo_se_models_lay_out_no_feature_map_but_the_input(name):
    """After the compiler's graph steps only the network input crosses layouts at full
    size: SE pools, gates and multiplies, SiLU / hard-swish and the head stay blocked."""
    from ember.driver.compiler import kernel_graph

    mod, params = zoo.get(name, **zoo.SMALL[name])
    _, fused = kernel_graph(mod, params, Target.parse("llvm -mcpu=haswell"))
    big = []
    for k in kernels(fused):
        for n in post_order(k.op.body):
            if isinstance(n, Call) and n.op.name == "layout_transform":
                shape = n.type.shape
                if len(shape) >= 4 and shape[2] * shape[3] > 1:
                    big.append((k.op.name, n.attrs.dst_layout, shape))
    assert len(big) == 1 and big[0][1] == "NCHW3c", big  # the RGB input
    ops = {n.op.name for k in kernels(fused) for n in post_order(k.op.body) if isinstance(n, Call)}
    assert "nn.global_avg_pool2d" not in ops and "reduce_mean" in ops  # pools run blocked
    assert ("nn.silu" if name == "efficientnet_b0" else "nn.hard_swish") in ops
