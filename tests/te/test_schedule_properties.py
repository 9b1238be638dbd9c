"""Property tests: random schedules (splits that divide and that do not, reorders, fusions,
loop kinds, placements) never change what a kernel computes. Each example is built to C and
compared with numpy; the build cache keeps reruns cheap."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from ember import te
from ember.te.tensor import REDUCE

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _apply_loop_choices(data, s, stage, leaves_hint=None):
    """Randomly reorder, fuse, and mark the leaf loops of ``stage``."""
    leaves = list(stage.leaf_iter_vars)
    order = data.draw(st.permutations(leaves), label="order")
    stage.reorder(*order)
    leaves = list(stage.leaf_iter_vars)
    # fuse one pair of adjacent data-parallel loops
    pairs = [
        k
        for k in range(len(leaves) - 1)
        if leaves[k].kind != REDUCE and leaves[k + 1].kind != REDUCE
    ]
    if pairs and data.draw(st.booleans(), label="fuse"):
        k = data.draw(st.sampled_from(pairs), label="fuse_at")
        stage.fuse(leaves[k], leaves[k + 1])
        leaves = list(stage.leaf_iter_vars)
    if leaves[0].kind != REDUCE and data.draw(st.booleans(), label="parallel"):
        stage.parallel(leaves[0])
    if len(leaves) > 1 and leaves[-1].kind != REDUCE and data.draw(st.booleans(), label="vec"):
        stage.vectorize(leaves[-1])
    if len(leaves) > 2 and data.draw(st.booleans(), label="unroll"):
        stage.unroll(leaves[-2])


@SETTINGS
@given(
    n=st.integers(1, 13),
    m=st.integers(1, 13),
    k=st.integers(1, 9),
    data=st.data(),
)
def test_random_matmul_schedules(n, m, k, data):
    A = te.placeholder((n, k), "float32", name="A")
    B = te.placeholder((k, m), "float32", name="B")
    r = te.reduce_axis((0, k), name="r")
    C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    s[C].split(i, factor=data.draw(st.integers(1, n + 2), label="fi"))
    s[C].split(j, factor=data.draw(st.integers(1, m + 2), label="fj"))
    if data.draw(st.booleans(), label="split_k"):
        s[C].split(r, nparts=data.draw(st.integers(1, k + 1), label="nk"))
    if data.draw(st.booleans(), label="cache_write"):
        # cache_write must come first; redo the schedule on a fresh one
        s = te.create_schedule(C.op)
        CC = s.cache_write(C, "local")
        io, ii = s[C].split(C.op.axis[0], factor=data.draw(st.integers(1, n + 2), label="ci"))
        s[CC].compute_at(s[C], data.draw(st.sampled_from([io, ii]), label="at"))
        _apply_loop_choices(data, s, s[CC])
    else:
        _apply_loop_choices(data, s, s[C])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k)).astype("float32")
    b = rng.standard_normal((k, m)).astype("float32")
    c = np.full((n, m), np.nan, "float32")
    ember.build(s, [A, B, C], name="mm")(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    pad=st.integers(0, 1),
    data=st.data(),
)
def test_random_conv2d_schedules(h, w, cin, cout, pad, data):
    kh = kw = 3
    X = te.placeholder((cin, h, w), "float32", name="X")
    W = te.placeholder((cout, cin, kh, kw), "float32", name="W")
    P = te.compute(
        (cin, h + 2 * pad, w + 2 * pad),
        lambda c, y, x: te.if_then_else(
            te.all(y >= pad, y < h + pad, x >= pad, x < w + pad), X[c, y - pad, x - pad], 0.0
        ),
        name="P",
    )
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    rc = te.reduce_axis((0, cin), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    Y = te.compute(
        (cout, oh, ow),
        lambda o, y, x: te.sum(P[rc, y + ry, x + rx] * W[o, rc, ry, rx], axis=[rc, ry, rx]),
        name="Y",
    )
    s = te.create_schedule(Y.op)
    o, y, x = Y.op.axis
    yo, yi = s[Y].split(y, factor=data.draw(st.integers(1, oh + 1), label="fy"))
    xo, xi = s[Y].split(x, factor=data.draw(st.integers(1, ow + 1), label="fx"))
    s[Y].reorder(o, yo, xo, rc, ry, yi, rx, xi)
    placement = data.draw(st.sampled_from(["root", "inline", "at"]), label="placement")
    if placement == "inline":
        s[P].compute_inline()
    elif placement == "at":
        s[P].compute_at(s[Y], data.draw(st.sampled_from([o, yo, xo, rc, ry, yi]), label="at"))
    if data.draw(st.booleans(), label="vec"):
        s[Y].vectorize(xi)
    if data.draw(st.booleans(), label="par"):
        s[Y].parallel(o)
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((cin, h, w)).astype("float32")
    wv = rng.standard_normal((cout, cin, kh, kw)).astype("float32")
    xp = np.pad(xv, ((0, 0), (pad, pad), (pad, pad)))
    want = np.zeros((cout, oh, ow), "float32")
    for dy in range(kh):
        for dx in range(kw):
            want += np.einsum("chw,oc->ohw", xp[:, dy : dy + oh, dx : dx + ow], wv[:, :, dy, dx])
    got = np.full_like(want, np.nan)
    ember.build(s, [X, W, Y], name="conv")(xv, wv, got)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(
    n=st.integers(1, 10),
    m=st.integers(1, 17),
    reducer=st.sampled_from(["sum", "max", "min"]),
    data=st.data(),
)
def test_random_row_reduction_schedules(n, m, reducer, data):
    A = te.placeholder((n, m), "float32", name="A")
    r = te.reduce_axis((0, m), name="r")
    fn = {"sum": te.sum, "max": te.max, "min": te.min}[reducer]
    R = te.compute((n,), lambda i: fn(A[i, r] * 2, axis=r), name="R")
    Out = te.compute((n,), lambda i: R[i] + 1, name="Out")
    s = te.create_schedule(Out.op)
    ro, ri = s[R].split(r, factor=data.draw(st.integers(1, m + 2), label="fr"))
    io, ii = s[R].split(R.op.axis[0], factor=data.draw(st.integers(1, n + 1), label="fi"))
    _apply_loop_choices(data, s, s[R])
    if data.draw(st.booleans(), label="at"):
        s[R].compute_at(s[Out], Out.op.axis[0])
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, m)).astype("float32")
    want = {"sum": np.sum, "max": np.max, "min": np.min}[reducer](a * 2, axis=1) + 1
    got = np.full((n,), np.nan, "float32")
    ember.build(s, [A, Out], name="red")(a, got)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
