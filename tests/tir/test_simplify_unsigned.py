"""Unsigned min/max folding: ``a - b`` wraps for unsigned integers, so the analyzer must
not read its clipped range as the sign of the true difference."""

import numpy as np
import pytest

from ember.tir import expr as E
from ember.tir.simplify import Analyzer, simplify


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32"])
def test_unsigned_min_max_of_unknown_values_do_not_fold(dtype):
    a, b = E.Var("a", dtype), E.Var("b", dtype)
    for e in (E.min_(a, b), E.max_(a, b), E.min_(a, b - a), E.max_(a + b, a)):
        assert simplify(e) == e


def test_unsigned_min_max_with_disjoint_ranges_fold_correctly():
    a, b = E.Var("a", "uint8"), E.Var("b", "uint8")
    an = Analyzer({a: (0, 9), b: (10, 200)})
    assert an.simplify(E.min_(a, b)) == a
    assert an.simplify(E.max_(a, b)) == b


def test_unsigned_fold_agrees_with_numpy_on_random_values():
    rng = np.random.default_rng()
    a, b = E.Var("a", "uint8"), E.Var("b", "uint8")
    xs = rng.integers(0, 256, 64).astype(np.uint8)
    ys = rng.integers(0, 256, 64).astype(np.uint8)
    e = simplify(E.min_(a, b - a))
    for x, y in zip(xs, ys, strict=True):
        bound = E.Let(a, E.IntImm(int(x), "uint8"), E.Let(b, E.IntImm(int(y), "uint8"), e))
        got = simplify(bound)
        want = min(int(x), (int(y) - int(x)) % 256)  # b - a wraps modulo 256
        assert isinstance(got, E.IntImm) and got.value == want, (x, y, got)
