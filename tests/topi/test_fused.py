"""Fused kernels (as fuse_ops groups them) compiled with the default schedules
== the numpy interpreter on the unfused graph."""

from __future__ import annotations

import numpy as np
import pytest
from topi_testlib import check_close

import ember
from ember.graph import interpret
from ember.graph.ir import (
    Call,
    Constant,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    Var,
    const,
)
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target
from ember.te.lower import lower
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")

F = "float32"


def run_fused(
    mod: Module, inputs: dict[str, np.ndarray]
) -> tuple[list[np.ndarray], list[Function]]:
    """Fuse ``mod``, compile every kernel into one library, and run main with it."""
    fused = fuse_ops(mod)
    funcs: dict[Function, tuple[str, list]] = {}
    prims = []
    for k, node in enumerate(kernels(fused)):
        func = node.op
        if func in funcs:
            continue
        name = f"kernel{k}"
        s, args = schedule_primitive(func, HOST)
        prims.append(lower(s, args, name=name))
        funcs[func] = (name, args)
    lib = ember.build(prims, target="host")
    values: dict = {}
    for node in post_order(fused.main.body):
        if isinstance(node, Var):
            values[node] = inputs[node.name]
        elif isinstance(node, Constant):
            values[node] = node.value
        elif isinstance(node, Tuple):
            values[node] = tuple(values[f] for f in node.fields)
        elif isinstance(node, TupleGetItem):
            values[node] = values[node.tuple_value][node.index]
        elif isinstance(node, Call):
            name, args = funcs[node.op]
            ins = [np.array(values[a], copy=True, order="C") for a in node.args]
            outs = [
                np.zeros(tuple(int(d.value) for d in t.shape), t.dtype) for t in args[len(ins) :]
            ]
            lib[name](*ins, *outs)
            values[node] = tuple(outs) if len(outs) > 1 else outs[0]
    result = values[fused.main.body]
    return (list(result) if isinstance(result, tuple) else [result]), list(funcs)


def _var(name: str, shape: tuple[int, ...], dtype: str = F) -> Var:
    return Var(name, TensorType(shape, dtype))


def _check(body, params: list[Var], rng, rtol: float = 1e-5, expect_kernels: int | None = None):
    mod = Module.from_function(Function(tuple(params), body))
    inputs = {p.name: rng.standard_normal(p.type.shape).astype(p.type.dtype) for p in params}
    want = interpret(mod, {}, inputs)
    got, funcs = run_fused(mod, inputs)
    if expect_kernels is not None:
        assert len(funcs) == expect_kernels, [f.name for f in funcs]
    for g, w in zip(got, want, strict=True):
        check_close(g, w, rtol)
    return funcs


def test_conv_bias_bn_relu_residual(rng):
    x, w, b = _var("x", (1, 13, 7, 7)), _var("w", (13, 13, 3, 3)), _var("b", (13,))
    scale, shift = _var("scale", (13, 1, 1)), _var("shift", (13, 1, 1))
    conv = call("nn.conv2d", x, w, b, padding=1)
    bn = call("add", call("multiply", conv, scale), shift)  # a batch-norm remnant
    out = call("nn.relu", call("add", bn, x))
    funcs = _check(out, [x, w, b, scale, shift], rng, rtol=1e-4, expect_kernels=1)
    assert funcs[0].attrs["pattern"] == "OUT_ELEMWISE_FUSABLE"


def test_strided_conv_relu6_odd_width(rng):
    x, w = _var("x", (2, 5, 13, 11)), _var("w", (12, 5, 3, 3))
    conv = call("nn.conv2d", x, w, strides=2, padding=(1, 1, 1, 1))
    _check(call("clip", conv, a_min=0.0, a_max=6.0), [x, w], rng, rtol=1e-4, expect_kernels=1)


def test_depthwise_then_pointwise(rng):
    x, dw, pw = _var("x", (1, 16, 9, 9)), _var("dw", (16, 1, 3, 3)), _var("pw", (24, 16, 1, 1))
    a = call("nn.relu", call("nn.conv2d", x, dw, groups=16, padding=1))
    out = call("nn.conv2d", a, pw)
    _check(out, [x, dw, pw], rng, rtol=1e-4, expect_kernels=2)


def test_dense_bias_gelu(rng):
    x, w, b = _var("x", (3, 40)), _var("w", (24, 40)), _var("b", (24,))
    out = call("nn.gelu", call("add", call("nn.dense", x, w), b))
    _check(out, [x, w, b], rng, rtol=1e-4, expect_kernels=1)


def test_matmul_scalar_epilogue(rng):
    a, b = _var("a", (2, 5, 7), F), _var("b", (7, 9))
    out = call("multiply", call("nn.matmul", a, b), const(np.float32(0.5)))
    _check(out, [a, b], rng, rtol=1e-4, expect_kernels=1)


def test_relu_into_maxpool(rng):
    x = _var("x", (1, 6, 11, 11))
    out = call("nn.max_pool2d", call("nn.relu", x), pool_size=3, strides=2, padding=1)
    funcs = _check(out, [x], rng, expect_kernels=1)
    assert funcs[0].attrs["pattern"] == "COMM_REDUCE"


def test_elementwise_into_reduce_mean(rng):
    x, y = _var("x", (2, 6, 5)), _var("y", (6, 1))
    out = call("reduce_mean", call("multiply", call("exp", x), y), axes=(1,), keepdims=True)
    _check(out, [x, y], rng, rtol=1e-5, expect_kernels=1)


def test_pad_reshape_transpose_chain(rng):
    x = _var("x", (2, 3, 4, 5))
    p = call("nn.pad", x, pad_width=((0, 0), (0, 1), (1, 1), (0, 3)), mode="reflect")
    r = call("reshape", p, newshape=(2, 4, 6, 8))
    t = call("transpose", r, axes=(0, 2, 3, 1))
    out = call("add", t, const(np.float32(1.0)))
    _check(out, [x], rng, expect_kernels=1)


def test_concat_of_branches_and_split(rng):
    x = _var("x", (1, 4, 5, 5))
    a = call("nn.relu", x)
    b = call("sigmoid", x)
    cat = call("concatenate", a, b, axis=1)
    parts = call("split", cat, sections=(3, 5), axis=1)
    out = Tuple((TupleGetItem(parts, 0), call("tanh", TupleGetItem(parts, 1))))
    _check(out, [x], rng)


def test_softmax_after_dense(rng):
    x, w = _var("x", (2, 32)), _var("w", (10, 32))
    out = call("nn.softmax", call("nn.dense", x, w))
    _check(out, [x, w], rng, rtol=1e-4, expect_kernels=2)


def test_global_pool_flatten_dense(rng):
    x, w, b = _var("x", (1, 13, 7, 7)), _var("w", (10, 13)), _var("b", (10,))
    g = call("flatten", call("nn.global_avg_pool2d", x))
    out = call("add", call("nn.dense", g, w), b)
    _check(out, [x, w, b], rng, rtol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "squeezenet1_1"])
def test_zoo_kernels(name, rng):
    """Every kernel fuse_ops makes on a small zoo model, run end to end."""
    from ember.graph.passes import optimize
    from ember.testing import zoo

    mod, params = zoo.get(name, **zoo.SMALL[name])
    opt = optimize(mod, params)
    x = zoo.random_input(name, seed=int(rng.integers(1 << 30)), **zoo.SMALL[name])
    want = interpret(mod, params, {"data": x})
    got, _ = run_fused(opt, {"data": x})
    check_close(got[0], want[0], 1e-4)
