"""Concatenation kernels (alone, fused with their epilogue, on blocked NCHW[x]c data)
compiled with the default schedules == numpy, and lowered without a select chain."""

from __future__ import annotations

import numpy as np
import pytest
from topi_testlib import check_close

import ember
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var
from ember.graph.passes.fuse_ops import fuse_ops, kernels
from ember.ops import call
from ember.target import Target
from ember.te.lower import lower
from ember.tir import expr as E
from ember.tir.functor import post_order
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")

F = "float32"


def _var(name: str, shape: tuple[int, ...]) -> Var:
    return Var(name, TensorType(shape, F))


def _selects(prim) -> int:
    n = 0

    def visit(x):
        nonlocal n
        n += isinstance(x, E.Select)

    post_order(prim.body, visit)
    return n


def _compile_one(body, params, rng):
    """The graph as one fused kernel: (lowered kernel, compiled output, numpy reference)."""
    mod = Module.from_function(Function(tuple(params), body))
    fused = kernels(fuse_ops(mod))
    assert len(fused) == 1, "expected one fused kernel"
    s, args = schedule_primitive(fused[0].op, HOST)
    prim = lower(s, args, name="concat_kernel")
    lib = ember.build([prim], target="host")
    inputs = {p.name: rng.standard_normal(p.type.shape).astype(F) for p in params}
    out = np.zeros(tuple(int(d.value) for d in args[-1].shape), F)
    lib["concat_kernel"](*(inputs[p.name] for p in params), out)
    want = interpret(mod, {}, inputs)
    return prim, out, want[0] if isinstance(want, list | tuple) else want


@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(1, 3, 5, 7), (1, 4, 5, 7)], 1),  # channels, odd width (no vector split divides)
        ([(2, 16, 6, 13), (2, 8, 6, 13), (2, 24, 6, 13)], 1),  # batch 2: a non-affine index
        ([(1, 2, 4, 9), (1, 2, 3, 9), (1, 2, 1, 9), (1, 2, 5, 9), (1, 2, 2, 9)], 2),  # rows
        ([(3, 5), (3, 11), (3, 2)], 1),  # the innermost (vector) axis
        ([(2, 6), (5, 6)], 0),
        ([(4, 6, 10)], 2),  # one input
    ],
)
def test_concat_matches_numpy(shapes, axis, rng):
    xs = [_var(f"x{k}", s) for k, s in enumerate(shapes)]
    prim, got, want = _compile_one(call("concatenate", *xs, axis=axis), xs, rng)
    check_close(got, want, 0)


@pytest.mark.parametrize("channels", [(16, 8, 24), (5, 7, 3, 9)])
def test_concat_scale_shift_relu_fused(channels, rng):
    # DenseNet's pattern: concat -> batch-norm remnant -> relu in one kernel.
    xs = [_var(f"x{k}", (1, c, 7, 14)) for k, c in enumerate(channels)]
    total = sum(channels)
    scale, shift = _var("scale", (total, 1, 1)), _var("shift", (total, 1, 1))
    cat = call("concatenate", *xs, axis=1)
    out = call("nn.relu", call("add", call("multiply", cat, scale), shift))
    prim, got, want = _compile_one(out, [*xs, scale, shift], rng)
    check_close(got, want, 1e-6)
    # The batch-1 channel concat splits into one branch per input: no select is left.
    assert _selects(prim) == 0, str(prim)


@pytest.mark.parametrize("blocks", [(4, 2, 2, 2), (1, 3), (2, 1, 1, 1, 1, 1, 1, 1)])
def test_blocked_concat_fused(blocks, rng):
    # alter_layout's form: NCHW16c inputs concatenated on the channel-block axis 1.
    xs = [_var(f"x{k}", (1, b, 5, 6, 16)) for k, b in enumerate(blocks)]
    total = sum(blocks)
    scale, shift = _var("scale", (1, total, 1, 1, 16)), _var("shift", (1, total, 1, 1, 16))
    cat = call("concatenate", *xs, axis=1)
    out = call("nn.relu", call("add", call("multiply", cat, scale), shift))
    prim, got, want = _compile_one(out, [*xs, scale, shift], rng)
    check_close(got, want, 1e-6)
    assert _selects(prim) == 0, str(prim)


def test_concat_into_max_pool(rng):
    # SqueezeNet's fire output feeding a pool: the concat is inlined into the pool's reads.
    xs = [_var("a", (1, 2, 9, 9, 16)), _var("b", (1, 3, 9, 9, 16))]
    cat = call("concatenate", *xs, axis=1)
    out = call("nn.max_pool2d_nchwc", cat, pool_size=(3, 3), strides=(2, 2), ceil_mode=True)
    _, got, want = _compile_one(out, xs, rng)
    check_close(got, want, 0)
