"""structural_equal / structural_hash."""

from __future__ import annotations

import numpy as np

from ember.graph import (
    Call,
    Constant,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    structural_equal,
    structural_hash,
)
from ember.ops import call
from tests.graph.graph_testlib import tensor


def _block(x_name: str = "x", w_value: float = 1.0, node_name: str = ""):
    x = tensor(x_name, 1, 2, 4, 4)
    w = Constant(np.full((2, 2, 1, 1), w_value, np.float32))
    y = call("nn.relu", call("nn.conv2d", x, w, name=node_name))
    return Function((x,), y)


def _assert_equal(a, b) -> None:
    assert structural_equal(a, b) and structural_equal(b, a)
    assert structural_hash(a) == structural_hash(b)


def test_independently_built_graphs_are_equal() -> None:
    _assert_equal(_block(), _block())
    _assert_equal(Module.from_function(_block()), Module.from_function(_block()))


def test_params_match_by_position_not_name_and_node_names_are_ignored() -> None:
    _assert_equal(_block("x"), _block("data", node_name="conv1"))


def test_free_vars_match_by_name_and_type() -> None:
    a = call("nn.relu", tensor("x", 3))
    _assert_equal(a, call("nn.relu", tensor("x", 3)))
    assert not structural_equal(a, call("nn.relu", tensor("y", 3)))
    assert not structural_equal(a, call("nn.relu", tensor("x", 4)))


def test_constants_compare_by_value() -> None:
    assert not structural_equal(_block(w_value=1.0), _block(w_value=2.0))
    nan = Constant(np.array([np.nan, 0.0], np.float32))
    _assert_equal(nan, Constant(np.array([np.nan, -0.0], np.float32)))
    assert not structural_equal(Constant(np.zeros(2, np.float32)), Constant(np.zeros(2)))


def test_ops_attrs_and_structure_differ() -> None:
    x = tensor("x", 1, 3, 8, 8)
    assert not structural_equal(call("nn.relu", x), call("sigmoid", x))
    p1 = call("nn.max_pool2d", x, pool_size=2)
    p2 = call("nn.max_pool2d", x, pool_size=2, strides=2)
    assert not structural_equal(p1, p2)
    assert not structural_equal(
        call("add", x, call("nn.relu", x)), call("add", call("nn.relu", x), x)
    )
    assert not structural_equal(p1, Function((x,), p1))
    f1 = Function((x,), p1)
    assert not structural_equal(Module.from_function(f1), Module({"main": f1, "other": f1}))


def test_sharing_must_match() -> None:
    x = tensor("x", 3)
    shared = call("nn.relu", x)
    a = call("add", shared, shared)
    b = call("add", call("nn.relu", x), call("nn.relu", x))
    # Equal as trees, different as graphs (b computes relu twice).
    assert not structural_equal(a, b) and not structural_equal(b, a)


def test_bound_params_cannot_swap() -> None:
    x, y = tensor("x", 3), tensor("y", 3)
    f = Function((x, y), call("subtract", x, y))
    x2, y2 = tensor("x", 3), tensor("y", 3)
    g = Function((x2, y2), call("subtract", y2, x2))
    assert not structural_equal(f, g)
    assert structural_hash(f) != structural_hash(g)


def test_tuples_and_fused_functions() -> None:
    def build():
        p = tensor("p", 3)
        kernel = Function((p,), call("nn.relu", p), {"primitive": True, "name": "k"})
        x = tensor("x", 3)
        first = Call(kernel, (x,), None)
        return Function((x,), TupleGetItem(Tuple((first, Call(kernel, (first,), None))), 1))

    _assert_equal(build(), build())
    other = build()
    other.body.tuple_value.fields[1].op.attrs["name"] = "renamed"  # a different kernel name
    assert not structural_equal(build(), other)
