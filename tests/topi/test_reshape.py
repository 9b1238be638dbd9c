"""reshape_compute: trailing axes the reshape keeps are read directly (only the leading
axes are raveled), for every split / merge of leading axes, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import te
from ember.topi.transform import reshape_compute

SHAPES = [
    ((1, 56, 56, 96), (3136, 96)),  # pack_dense's rows of a channels-last tensor
    ((3136, 96), (1, 56, 56, 96)),  # and back
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (4, 6)),  # no trailing axis kept: the full ravel
    ((24,), (2, 12)),
    ((2, 12), (24,)),
    ((1, 2, 3, 4), (1, 6, 4)),
    ((4, 1), (1, 4)),
    ((2, 5, 3, 4), (10, 3, 4)),  # two trailing axes kept
]


@pytest.mark.parametrize("src,dst", SHAPES, ids=[f"{a}->{b}" for a, b in SHAPES])
def test_reshape_matches_numpy(src, dst):
    x = te.placeholder(src, "float32", name="x")
    y = reshape_compute(x, dst)
    f = ember.build(te.create_schedule(y.op), [x, y], name="r")
    value = np.random.default_rng().standard_normal(src).astype(np.float32)
    out = np.zeros(dst, np.float32)
    f(value, out)
    np.testing.assert_array_equal(out, value.reshape(dst))
