"""fuse_ops: which ops share a kernel, and that fusion keeps results."""

from __future__ import annotations

import numpy as np

from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var, const
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.ops import call


def _rand(*shape):
    return np.random.default_rng().standard_normal(shape).astype(np.float32)


def _residual_net() -> Module:
    x = Var("data", TensorType((1, 4, 8, 8), "float32"))
    w1, w2 = const(_rand(4, 4, 3, 3), name="w1"), const(_rand(4, 4, 3, 3), name="w2")
    b1 = const(_rand(1, 4, 1, 1), name="b1")
    y = call("nn.conv2d", x, w1, padding=(1, 1, 1, 1), name="conv1")
    y = call("add", y, b1, name="bias1")
    y = call("nn.relu", y, name="relu1")
    z = call("nn.conv2d", y, w2, padding=(1, 1, 1, 1), name="conv2")
    z = call("add", z, y, name="residual")  # y is used twice: it ends its group
    z = call("nn.relu", z, name="relu2")
    p = call("nn.max_pool2d", z, pool_size=(2, 2), strides=(2, 2), name="pool")
    g = call("nn.global_avg_pool2d", p, name="gap")
    f = call("reshape", g, newshape=(1, 4), name="flat")
    d = call("nn.dense", f, const(_rand(3, 4), name="fc_w"), name="fc")
    s = call("nn.softmax", d, name="softmax")
    return Module.from_function(Function((x,), s))


def _group_ops(mod: Module) -> list[list[str]]:
    from ember.graph.ir import Call
    from ember.graph.visitor import post_order

    return [[n.op.name for n in post_order(k.op.body) if isinstance(n, Call)] for k in kernels(mod)]


def test_groups_follow_the_rules():
    fused = fuse_ops(_residual_net())
    assert _group_ops(fused) == [
        ["nn.conv2d", "add", "nn.relu"],  # bias and activation as the conv's epilogue
        ["nn.conv2d", "add", "nn.relu"],  # residual add and relu too
        ["nn.max_pool2d"],  # a reduction ends a group: the pool cannot join the relu's group
        ["nn.global_avg_pool2d"],
        ["reshape"],  # a dense takes no prologue, so the reshape is a kernel of its own
        ["nn.dense"],
        ["nn.softmax"],  # opaque
    ]


def test_fusion_keeps_results_and_weights_become_arguments():
    mod = _residual_net()
    fused = fuse_ops(mod)
    x = _rand(1, 4, 8, 8)
    np.testing.assert_allclose(
        interpret(fused, {}, {"data": x})[0], interpret(mod, {}, {"data": x})[0], rtol=1e-5
    )
    first = kernels(fused)[0]
    # data, conv weight and bias are arguments; the kernel body holds no large constant
    assert [p.type.shape for p in first.op.params] == [(1, 4, 8, 8), (4, 4, 3, 3), (1, 4, 1, 1)]
    assert first.op.is_primitive and first.op.attrs["pattern"] == "OUT_ELEMWISE_FUSABLE"


def test_elementwise_prologue_fuses_into_a_reduction():
    x = Var("x", TensorType((1, 2, 4, 4), "float32"))
    y = call("nn.relu", call("multiply", x, const(np.float32(2.0))))
    y = call("reduce_sum", y, axes=(2, 3))
    fused = fuse_ops(Module.from_function(Function((x,), y)))
    assert _group_ops(fused) == [["multiply", "nn.relu", "reduce_sum"]]


def test_injective_chain_is_one_kernel():
    x = Var("x", TensorType((2, 3, 4), "float32"))
    y = call("nn.pad", x, pad_width=((0, 0), (1, 1), (0, 0)))
    y = call("transpose", y, axes=(0, 2, 1))
    y = call("reshape", y, newshape=(8, 5))
    y = call("nn.relu", y)
    fused = fuse_ops(Module.from_function(Function((x,), y)))
    assert _group_ops(fused) == [["nn.pad", "transpose", "reshape", "nn.relu"]]
