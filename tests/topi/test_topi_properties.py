"""Property tests: convolution and pooling kernels of random (odd) sizes and attributes
match the numpy references, whatever schedule path the sizes select (channel-blocked,
row vectors, strided phases, guarded column tails)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from topi_testlib import check_close

import ember
from ember.errors import ShapeError
from ember.graph.ir import Function, TensorType, Var
from ember.ops import call, get_op
from ember.target import Target
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")

# Every example compiles a kernel (~0.3 s): few examples, no deadline.
SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _run_one(op: str, shapes: list[tuple[int, ...]], attrs: dict, rng: np.random.Generator):
    params = [Var(f"x{k}", TensorType(s)) for k, s in enumerate(shapes)]
    try:
        node = call(op, *params, **attrs)
    except ShapeError:
        return  # the sizes do not make a valid layer (kernel larger than the input)
    func = Function(tuple(params), node, {"primitive": True, "name": "prop"})
    s, args = schedule_primitive(func, HOST)
    kernel = ember.build(s, args, name="prop")
    inputs = [rng.standard_normal(sh).astype("float32") for sh in shapes]
    out = np.zeros(node.type.shape, "float32")
    kernel(*inputs, out)
    check_close(out, get_op(op).evaluate(inputs, node.attrs), 1e-4)


@SETTINGS
@given(
    batch=st.integers(1, 2),
    in_channels=st.integers(1, 6),
    out_mult=st.sampled_from([1, 3, 8, 16]),
    size=st.tuples(st.integers(3, 19), st.integers(3, 19)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(*[st.integers(0, 2)] * 4),
    depthwise=st.booleans(),
)
def test_conv2d_random(
    rng, batch, in_channels, out_mult, size, kernel, strides, dilation, padding, depthwise
):
    groups = in_channels if depthwise else 1
    out_channels = out_mult * (in_channels if depthwise else 1)
    weight = (out_channels, in_channels // groups, *kernel)
    attrs = {"strides": strides, "dilation": dilation, "padding": padding, "groups": groups}
    _run_one("nn.conv2d", [(batch, in_channels, *size), weight], attrs, rng)


@SETTINGS
@given(
    size=st.tuples(st.integers(2, 17), st.integers(2, 17)),
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pads=st.tuples(*[st.integers(0, 2)] * 4),
    ceil_mode=st.booleans(),
    average=st.booleans(),
    count_include_pad=st.booleans(),
)
def test_pool2d_random(
    rng, size, pool, strides, dilation, pads, ceil_mode, average, count_include_pad
):

    # padding must stay below the window along each axis
    pt, pl, pb, pr = pads
    padding = (
        min(pt, pool[0] - 1),
        min(pl, pool[1] - 1),
        min(pb, pool[0] - 1),
        min(pr, pool[1] - 1),
    )
    attrs = {
        "pool_size": pool,
        "strides": strides,
        "dilation": dilation,
        "padding": padding,
        "ceil_mode": ceil_mode,
    }
    if average:
        attrs["count_include_pad"] = count_include_pad
    _run_one("nn.avg_pool2d" if average else "nn.max_pool2d", [(1, 3, *size)], attrs, rng)
