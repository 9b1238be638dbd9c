"""post_order, ExprVisitor, ExprMutator: order, sharing, identity, and very deep graphs."""

from __future__ import annotations

import numpy as np
import pytest

import ember.graph as g
from ember.errors import InternalError
from ember.graph import (
    Call,
    Constant,
    ExprMutator,
    ExprVisitor,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    post_order,
    use_counts,
)
from ember.graph.visitor import children
from ember.ops import call
from tests.graph.graph_testlib import tensor

DEEP = 10_000


def _diamond():
    x = tensor("x", 2, 3)
    a = call("nn.relu", x, name="a")
    b = call("sigmoid", a, name="b")
    c = call("tanh", a, name="c")
    d = call("add", b, c, name="d")
    return x, a, b, c, d


def test_post_order_children_first_each_once() -> None:
    x, a, b, c, d = _diamond()
    order = post_order(d)
    assert order == [x, a, b, c, d]
    assert post_order(Function((x,), d)) == order


def test_post_order_several_roots_share_nodes() -> None:
    x, a, b, c, d = _diamond()
    assert post_order(b, c) == [x, a, b, c]
    assert post_order(d, b) == [x, a, b, c, d]


def test_use_counts_count_the_result_as_a_use() -> None:
    x, a, b, c, d = _diamond()
    counts = use_counts(d)
    assert counts[a] == 2 and counts[b] == 1 and counts[d] == 1 and counts[x] == 1


def test_children_of_every_node_kind() -> None:
    x, a, *_ = _diamond()
    t = Tuple((x, a))
    assert children(t) == (x, a)
    assert children(TupleGetItem(t, 1)) == (t,)
    assert children(Constant(np.zeros(2))) == ()
    with pytest.raises(InternalError, match="not a graph expression"):
        children("x")  # type: ignore[arg-type]


def test_visitor_sees_each_node_once_by_kind() -> None:
    x, a, b, c, d = _diamond()
    t = Tuple((d, Constant(np.ones(3, np.float32))))
    item = TupleGetItem(t, 0)

    class Record(ExprVisitor):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def visit_call(self, node) -> None:
            self.seen.append(node.name)

        def visit_var(self, node) -> None:
            self.seen.append("%" + node.name)

        def visit_constant(self, node) -> None:
            self.seen.append("const")

        def visit_tuple(self, node) -> None:
            self.seen.append("tuple")

        def visit_tuple_get_item(self, node) -> None:
            self.seen.append("get")

    r = Record()
    r.visit(item)
    assert r.seen == ["%x", "a", "b", "c", "d", "const", "tuple", "get"]


def test_mutator_keeps_identity_when_nothing_changes() -> None:
    *_, d = _diamond()
    t = TupleGetItem(Tuple((d, d)), 1)
    assert ExprMutator().visit(t) is t
    func = Function((tensor("x", 2, 3),), d)
    assert ExprMutator().visit_function(func) is func


def test_mutator_rebuilds_only_the_changed_path() -> None:
    x, a, b, c, d = _diamond()

    class TanhToSigmoid(ExprMutator):
        def visit_call(self, node, args):
            if node.op.name == "tanh":
                return call("sigmoid", *args, name="c2")
            return super().visit_call(node, args)

    m = TanhToSigmoid()
    new = m.visit(d)
    assert new is not d and isinstance(new, Call)
    assert new.args[0] is b  # the untouched branch keeps its identity
    assert new.args[1].op.name == "sigmoid" and new.args[1].args[0] is a
    assert m.memo[a] is a and m.memo[c] is new.args[1]
    # The mutated node is rewritten once even though two roots reach it.
    assert m.visit(c) is new.args[1]


def test_mutator_must_return_an_expression() -> None:
    *_, d = _diamond()

    class Broken(ExprMutator):
        def visit_call(self, node, args):
            return None

    with pytest.raises(InternalError, match="Broken returned NoneType"):
        Broken().visit(d)


def test_mutator_may_not_turn_a_parameter_into_a_constant() -> None:
    x, *_, d = _diamond()

    class Bind(ExprMutator):
        def visit_var(self, var):
            return Constant(np.zeros(var.type.shape, np.float32))

    with pytest.raises(InternalError, match="parameter %x .* must stay a Var"):
        Bind().visit_function(Function((x,), d))


def _deep_chain(depth: int):
    x = tensor("x", 1, 4)
    y = x
    for i in range(depth):
        y = call("negative" if i % 3 else "identity", y)
    return x, y


def test_deep_chain_without_recursion() -> None:
    x, y = _deep_chain(DEEP)
    mod = Module.from_function(Function((x,), y))
    order = post_order(y)
    assert len(order) == DEEP + 1 and order[0] is x and order[-1] is y

    class Count(ExprVisitor):
        n = 0

        def visit_call(self, node) -> None:
            self.n += 1

    counter = Count()
    counter.visit(y)
    assert counter.n == DEEP

    class NegToNeg(ExprMutator):  # rebuilds every node
        def visit_call(self, node, args):
            return Call(node.op, args, node.attrs, node.name)

    rebuilt = NegToNeg().visit(y)
    assert rebuilt is not y and g.structural_equal(rebuilt, y)
    assert g.structural_hash(rebuilt) == g.structural_hash(y)
    g.verify(mod)
    text = g.print_module(mod)
    assert text.count("\n") == DEEP + 2
    data = np.random.default_rng().standard_normal((1, 4)).astype(np.float32)
    (out,) = g.interpret(mod, {}, {"x": data})
    negations = sum(1 for i in range(DEEP) if i % 3)
    np.testing.assert_array_equal(out, data if negations % 2 == 0 else -data)
    optimized = g.passes.run_passes(mod, g.passes.default_pipeline())
    assert len(post_order(optimized.main.body)) == negations + 1  # identities dropped
    (out,) = g.interpret(optimized, {}, {"x": data})
    np.testing.assert_array_equal(out, data if negations % 2 == 0 else -data)


def test_mutator_may_rename_parameters() -> None:
    x, *_, d = _diamond()

    class Rename(ExprMutator):
        def visit_var(self, var):
            return type(var)("input_" + var.name, var.type)

    func = Rename().visit_function(Function((x,), d))
    assert [p.name for p in func.params] == ["input_x"]
    assert post_order(func)[0] is func.params[0]
    g.verify(Module.from_function(func))
