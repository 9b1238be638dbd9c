"""Diamond epilogues: an activation that reads the anchor's result twice (SiLU as
``y * sigmoid(y)``, GELU, hard-swish, mish written out of primitive ops) compiles into
the conv / dense / matmul kernel, inlined (no second pass over memory), on every
schedule that hosts an epilogue: the default strategy, the x86 blocked conv (AVX2 and
AVX-512 tiles), and the tuning template. Results == the numpy interpreter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_fused import run_fused
from topi_testlib import check_close

import ember
from ember.dispatch.space import FallbackConfig
from ember.dispatch.templates_fused import is_tunable, kernel_task
from ember.graph import interpret
from ember.graph.ir import Call, Function, Module, TensorType, Var, const
from ember.graph.passes.alter_layout import alter_layout
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target
from ember.te.tensor import ComputeOp
from ember.topi.common import TAG_MATERIALIZE
from ember.topi.strategy import schedule_primitive

F = "float32"
AVX512 = Target.parse("llvm -mcpu=skylake-avx512")


def _s(value: float) -> Call:
    return const(np.float32(value))


def silu(y):
    return call("multiply", y, call("sigmoid", y))


def gelu_erf(y):
    erf = call("erf", call("divide", y, _s(math.sqrt(2))))
    return call("multiply", call("multiply", y, call("add", erf, _s(1.0))), _s(0.5))


def gelu_tanh(y):
    cube = call("multiply", call("multiply", y, y), y)
    inner = call("add", y, call("multiply", cube, _s(0.044715)))
    t = call("tanh", call("multiply", inner, _s(math.sqrt(2 / math.pi))))
    return call("multiply", call("multiply", y, _s(0.5)), call("add", t, _s(1.0)))


def hard_swish(y):
    relu6 = call("clip", call("add", y, _s(3.0)), a_min=0.0, a_max=6.0)
    return call("divide", call("multiply", y, relu6), _s(6.0))


def mish(y):
    return call("multiply", y, call("tanh", call("nn.softplus", y)))


ACTIVATIONS = {f.__name__: f for f in (silu, gelu_erf, gelu_tanh, hard_swish, mish)}


def _var(name: str, shape: tuple[int, ...]) -> Var:
    return Var(name, TensorType(shape, F))


def _inputs(params: list[Var]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng()
    return {p.name: rng.standard_normal(p.type.shape).astype(F) for p in params}


def _one_kernel(mod: Module) -> Function:
    funcs = {k.op for k in kernels(fuse_ops(mod))}
    assert len(funcs) == 1, [f.name for f in funcs]
    return funcs.pop()


def _check(mod: Module, rtol: float = 1e-4) -> None:
    inputs = _inputs(list(mod.main.params))
    got, funcs = run_fused(mod, inputs)
    assert len(funcs) == 1, [f.name for f in funcs]
    check_close(got[0], interpret(mod, {}, inputs)[0], rtol)


def _only_anchor_and_output_stay(s, outputs) -> None:
    """Every stage but the anchor's (buffered in registers / a local tile), the output and
    materialized padding is inlined into the output's loops: one pass over memory."""
    kept = [
        st.op.name
        for st in s.stages
        if isinstance(st.op, ComputeOp)
        and st.attach_type != "inline"
        and st.op.tag != TAG_MATERIALIZE
        and st.op is not outputs[-1].op
    ]
    assert len(kept) == 1, kept  # the anchor (or its cache stage)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_conv_nchw_with_a_diamond_epilogue(act):
    x, w, b = _var("x", (1, 5, 9, 9)), _var("w", (6, 5, 3, 3)), _var("b", (6,))
    y = ACTIVATIONS[act](call("nn.conv2d", x, w, b, padding=1))
    mod = Module.from_function(Function((x, w, b), y))
    _check(mod)
    s, args = schedule_primitive(_one_kernel(mod), Target.parse("host"))
    _only_anchor_and_output_stay(s, args)


@pytest.mark.parametrize(
    "anchor,act",
    [("dense", "silu"), ("dense", "gelu_erf"), ("matmul", "hard_swish"), ("matmul", "mish")],
)
def test_dense_and_matmul_with_a_diamond_epilogue(anchor, act):
    if anchor == "dense":
        a, b = _var("a", (3, 40)), _var("b", (24, 40))
        y = call("add", call("nn.dense", a, b), const(np.ones(24, F)))
    else:
        a, b = _var("a", (2, 5, 7)), _var("b", (7, 16))
        y = call("nn.matmul", a, b)
    _check(Module.from_function(Function((a, b), ACTIVATIONS[act](y))))


def _blocked_conv(act: str, channels: int, depthwise: bool) -> Module:
    x = _var("data", (1, channels, 10, 10))
    rng = np.random.default_rng()
    shape = (channels, 1, 3, 3) if depthwise else (channels, channels, 3, 3)
    w = const((rng.standard_normal(shape) * 0.3).astype(F))
    b = const(rng.standard_normal(channels).astype(F))
    y = call("nn.conv2d", x, w, b, padding=1, groups=channels if depthwise else 1)
    return Module.from_function(Function((x,), ACTIVATIONS[act](y)))


@pytest.mark.parametrize(
    "act,depthwise,cpu",
    [
        ("silu", False, "haswell"),
        ("gelu_tanh", False, "skylake-avx512"),
        ("mish", True, "haswell"),
        ("silu", True, "skylake-avx512"),
    ],
)
def test_blocked_conv_with_a_diamond_epilogue(act, depthwise, cpu):
    """alter_layout's NCHW16c (AVX-512) / NCHW8c conv, its x86 register-tiled schedule for
    that CPU's registers, built for this host: the epilogue sits in the conv's loops."""
    target = Target.parse(f"llvm -mcpu={cpu}")
    mod = alter_layout(_blocked_conv(act, 32, depthwise), target)
    fused = fuse_ops(mod)
    convs = [k.op for k in kernels(fused) if "conv2d_nchwc" in k.op.name]
    others = [k.op.name for k in kernels(fused) if k.op not in convs]
    assert len(convs) == 1 and all(n == "fused_layout_transform" for n in others), others
    s, args = schedule_primitive(convs[0], target)
    _only_anchor_and_output_stay(s, args)
    lib = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    ins = [rng.standard_normal(p.type.shape).astype(F) for p in convs[0].params]
    out = np.zeros(_shape(args[-1]), F)
    lib(*ins, out)
    inner = Module.from_function(convs[0])
    want = interpret(inner, {}, {p.name: v for p, v in zip(convs[0].params, ins)})[0]
    check_close(out, want, 1e-4)


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d.value) for d in t.shape)


@pytest.mark.parametrize("anchor", ["conv2d", "dense"])
def test_tuning_template_schedules_a_diamond_epilogue(anchor):
    """The fused_kernel template (fallback and another point) takes an anchor whose SiLU
    reads it twice."""
    if anchor == "conv2d":
        x, w = _var("x", (1, 6, 12, 12)), _var("w", (12, 6, 3, 3))
        y = call("nn.conv2d", x, w, padding=1)
    else:
        x, w = _var("x", (4, 40)), _var("w", (24, 40))
        y = call("nn.dense", x, w)
    mod = Module.from_function(Function((x, w), silu(y)))
    func = _one_kernel(mod)
    assert is_tunable(func)
    task = kernel_task(func, Target.parse("host"))
    inputs = _inputs([x, w])
    want = interpret(mod, {}, inputs)[0]
    for cfg in (FallbackConfig(), task.config_space.get(len(task.config_space) - 1)):
        s, args = task.instantiate(cfg)
        lib = ember.build(s, args, target="host", name="k")
        out = np.zeros(want.shape, F)
        lib(inputs["x"], inputs["w"], out)
        check_close(out, want, 1e-4)


def test_fused_graph_reads_each_op_once():
    """The fused graph holds each original call once and computes the same values."""
    x, w = _var("x", (1, 4, 6, 6)), _var("w", (8, 4, 1, 1))
    y = call("nn.conv2d", x, w)
    z = call("add", gelu_erf(y), silu(y))  # two activations of one conv: one diamond
    mod = Module.from_function(Function((x, w), z))
    func = _one_kernel(mod)
    ops = [n.op.name for n in post_order(func.body) if isinstance(n, Call)]
    assert ops.count("nn.conv2d") == 1 and ops.count("sigmoid") == 1 and ops.count("erf") == 1
    _check(mod)
