"""Padded pooling inputs (materialized pad stages): the default schedule keeps rows and
columns as loops, so partition_selects leaves the interior a plain copy; results == numpy."""

from __future__ import annotations

import numpy as np
import pytest
from test_concat import _compile_one, _selects, _var
from topi_testlib import check_close

from ember.ops import call


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_blocked_max_pool_padding_has_no_select(ceil_mode, rng):
    x = _var("x", (1, 16, 11, 12, 16))  # 16 channel blocks: rows stay a loop
    out = call(
        "nn.max_pool2d_nchwc",
        x,
        pool_size=(3, 3),
        strides=(2, 2),
        padding=(1, 1, 1, 1),
        ceil_mode=ceil_mode,
    )
    prim, got, want = _compile_one(out, [x], rng)
    check_close(got, want, 0)
    assert _selects(prim) == 0, str(prim)


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_blocked_avg_pool_padding_has_no_select(count_include_pad, rng):
    x = _var("x", (1, 16, 9, 7, 16))
    out = call(
        "nn.avg_pool2d_nchwc",
        x,
        pool_size=(3, 3),
        strides=(1, 1),
        padding=(1, 1, 1, 1),
        count_include_pad=count_include_pad,
    )
    prim, got, want = _compile_one(out, [x], rng)
    check_close(got, want, 1e-6)
    assert _selects(prim) == 0, str(prim)


@pytest.mark.parametrize("shape", [(1, 3, 13, 13), (2, 5, 10, 17), (1, 20, 6, 6)])
def test_nchw_max_pool_padding(shape, rng):
    # Few channels: the rows join the parallel loop; odd widths leave vector tails.
    x = _var("x", shape)
    out = call("nn.max_pool2d", x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1))
    _, got, want = _compile_one(out, [x], rng)
    check_close(got, want, 0)
    assert not np.isinf(got).any()


def test_few_channel_blocks_fuse_rows_and_stay_correct(rng):
    # 3 blocks < MATERIALIZE_MIN_ROWS: rows join the parallel loop; the row test stays a
    # select on one scalar condition per vector (no lane-by-lane code).
    x = _var("x", (1, 3, 11, 12, 16))
    out = call("nn.max_pool2d_nchwc", x, pool_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1))
    prim, got, want = _compile_one(out, [x], rng)
    check_close(got, want, 0)
    assert _selects(prim) <= 1
