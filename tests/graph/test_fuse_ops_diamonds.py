"""fuse_ops on diamonds (a node with several users whose paths meet again): which fuse,
which do not, and on random graphs that every call lands in one kernel with the same
results (the interpreter runs both)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.graph import interpret
from ember.graph.ir import Call, Function, Module, TensorType, Tuple, Var, const
from ember.graph.passes.fuse_ops import MAX_GROUP_SIZE, MAX_INLINE_COPIES, fuse_ops, kernels
from ember.graph.verifier import verify
from ember.graph.visitor import post_order
from ember.ops import call

SHAPE = (1, 4, 5, 5)


def _rand(*shape: int) -> np.ndarray:
    return np.random.default_rng().standard_normal(shape).astype(np.float32)


def _groups(mod: Module) -> list[list[str]]:
    return [[n.op.name for n in post_order(k.op.body) if isinstance(n, Call)] for k in kernels(mod)]


def _conv(x):
    return call("nn.conv2d", x, const(_rand(4, 4, 3, 3)), padding=1)


def _same(mod: Module, fused: Module) -> None:
    x = _rand(*SHAPE)
    for got, want in zip(interpret(fused, {}, {"x": x}), interpret(mod, {}, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _fn(body) -> Module:
    return Module.from_function(Function((Var("x", TensorType(SHAPE, "float32")),), body))


def test_silu_after_a_conv_is_one_kernel_and_its_consumer_may_join():
    x = Var("x", TensorType(SHAPE, "float32"))
    y = _conv(x)
    act = call("multiply", y, call("sigmoid", y))
    out = call("add", act, x)  # the post-dominator's own single consumer joins as before
    mod = Module.from_function(Function((x,), out))
    fused = fuse_ops(mod)
    assert _groups(fused) == [["nn.conv2d", "sigmoid", "multiply", "add"]]
    _same(mod, fused)


def test_a_reduction_or_a_second_conv_between_the_paths_blocks_the_diamond():
    x = Var("x", TensorType(SHAPE, "float32"))
    y = call("nn.relu", _conv(x))
    scale = call("sigmoid", call("reduce_mean", y, axes=(2, 3), keepdims=True))
    mod = Module.from_function(Function((x,), call("multiply", y, scale)))  # SE-like
    fused = fuse_ops(mod)
    assert _groups(fused) == [["nn.conv2d", "nn.relu"], ["reduce_mean"], ["sigmoid", "multiply"]]
    _same(mod, fused)
    z = _conv(x)
    mod = Module.from_function(Function((x,), call("add", z, _conv(z))))  # a residual
    assert _groups(fuse_ops(mod)) == [["nn.conv2d"], ["nn.conv2d", "add"]]


def test_an_outside_user_or_a_tuple_blocks_the_diamond():
    x = Var("x", TensorType(SHAPE, "float32"))
    y = _conv(x)
    s = call("sigmoid", y)
    mod = Module.from_function(Function((x,), Tuple((call("multiply", y, s), s))))
    fused = fuse_ops(mod)  # s is a model output too: it must stay a kernel's result
    assert sorted(map(tuple, _groups(fused))) == [("multiply",), ("nn.conv2d",), ("sigmoid",)]
    _same(mod, fused)


def test_overlapping_diamonds_take_each_node_once():
    """A rotary embedding's shape: four values each read by two of four products that
    meet again at one sum. The first diamond takes the shared nodes; the later ones,
    which would need them too, do not fuse (found by the ONNX RotaryEmbedding case)."""
    x = Var("x", TensorType(SHAPE, "float32"))
    cos, sin = call("sigmoid", x), call("tanh", x)
    first, second = call("negative", x), call("exp", x)
    rotated_1 = call("subtract", call("multiply", cos, first), call("multiply", sin, second))
    rotated_2 = call("add", call("multiply", sin, first), call("multiply", cos, second))
    mod = Module.from_function(Function((x,), call("add", rotated_1, rotated_2)))
    fused = fuse_ops(mod)
    verify(fused)
    ops = sorted(op for g in _groups(fused) for op in g)
    assert ops == sorted(n.op.name for n in post_order(mod.main.body) if isinstance(n, Call))
    _same(mod, fused)


def test_inlined_copies_are_bounded():
    """A diamond from an inlined (not buffered) node evaluates it once per user; chains
    of such diamonds stop fusing once MAX_INLINE_COPIES would be passed."""
    x = Var("x", TensorType(SHAPE, "float32"))
    y = call("exp", x)
    for _ in range(4):
        y = call("multiply", y, call("sigmoid", y))  # each SiLU doubles y's evaluations
    mod = Module.from_function(Function((x,), y))
    fused = fuse_ops(mod)
    sizes = [len(g) for g in _groups(fused)]
    assert sum(sizes) == 9 and len(sizes) > 1
    # exp, then as many SiLUs as doublings fit in MAX_INLINE_COPIES (two ops each)
    assert sizes[0] == 1 + 2 * int(np.log2(MAX_INLINE_COPIES))
    _same(mod, fused)


UNARY = ("sigmoid", "tanh", "nn.relu", "exp")
BINARY = ("add", "multiply", "maximum", "subtract")


@st.composite
def _graphs(draw):
    """Random DAGs of convs, unary and binary elementwise ops and channel reductions, where
    an op may read any earlier value (diamonds, shared inputs, several outputs)."""
    x = Var("x", TensorType(SHAPE, "float32"))
    values = [x]
    for _ in range(draw(st.integers(2, 14))):
        kind = draw(st.sampled_from(("conv", "unary", "binary", "binary", "reduce")))
        a = values[draw(st.integers(0, len(values) - 1))]
        if kind == "conv":
            values.append(_conv(a))
        elif kind == "unary":
            values.append(call(draw(st.sampled_from(UNARY)), a))
        elif kind == "binary":
            b = values[draw(st.integers(0, len(values) - 1))]
            values.append(call(draw(st.sampled_from(BINARY)), a, b))
        else:
            mean = call("reduce_mean", a, axes=(1,), keepdims=True)
            values.append(call("multiply", a, mean))
    outs = [values[-1]] + [v for v in values[1:-1] if draw(st.booleans()) and draw(st.booleans())]
    body = outs[0] if len(outs) == 1 else Tuple(tuple(outs))
    return Module.from_function(Function((x,), body))


@settings(max_examples=40, deadline=None)
@given(_graphs())
def test_random_graphs_keep_every_call_once_and_their_results(mod):
    fused = fuse_ops(mod)
    verify(fused)
    calls = [n for n in post_order(mod.main.body) if isinstance(n, Call)]
    groups = _groups(fused)
    assert sorted(op for g in groups for op in g) == sorted(n.op.name for n in calls)
    assert all(len(g) <= MAX_GROUP_SIZE for g in groups)
    # exp chains may overflow to inf (and inf - inf to nan) on both sides alike
    x = _rand(*SHAPE)
    for got, want in zip(interpret(fused, {}, {"x": x}), interpret(mod, {}, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
