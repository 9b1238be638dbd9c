"""ONNX optionals: whether an optional holds a value is decided at import.

A present optional is its value, an absent one folds ``OptionalHasElement`` to False
(so an If on it resolves at import); models run in ember's reference executor on
fresh random inputs and must match onnxruntime. What would need the presence at run
time is a clear error naming the node and the input.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from ember.errors import FrontendError
from ember.frontend.onnx import NotStaticError, UnsupportedFeatureError, from_onnx
from ember.graph import interpret
from tests.frontend.onnx_testlib import run_onnxruntime
from tests.frontend.test_onnx_control_flow import B, F, const_node, model_of, ops_in, rand, vi


def _optional_input(name, shape):
    return helper.make_value_info(
        name, helper.make_optional_type_proto(helper.make_tensor_type_proto(F, shape))
    )


def _guarded_model():
    # y = opt + x if opt holds a value, else x * 2
    then_g = helper.make_graph(
        [
            helper.make_node("OptionalGetElement", ["opt"], ["v"]),
            helper.make_node("Add", ["v", "x"], ["a"]),
        ],
        "then",
        [],
        [vi("a", F, [2, 3])],
    )
    else_g = helper.make_graph(
        [const_node("two", np.float32(2)), helper.make_node("Mul", ["x", "two"], ["m"])],
        "else",
        [],
        [vi("m", F, [2, 3])],
    )
    nodes = [
        helper.make_node("OptionalHasElement", ["opt"], ["has"]),
        helper.make_node("If", ["has"], ["y"], then_branch=then_g, else_branch=else_g, name="if"),
    ]
    return model_of(
        nodes, [_optional_input("opt", [2, 3]), vi("x", F, [2, 3])], [vi("y", F, [2, 3])], opset=18
    )


def test_a_present_optional_input_is_its_value():
    model = _guarded_model()
    opt, x = rand(2, 3), rand(2, 3)
    mod, params = from_onnx(model)
    assert "cf.if" not in ops_in(mod)  # OptionalHasElement folded: the If resolved at import
    ours = interpret(mod, params, {"opt": opt, "x": x})[0]
    np.testing.assert_allclose(ours, run_onnxruntime(model, {"opt": opt, "x": x})[0], rtol=1e-6)
    np.testing.assert_allclose(ours, opt + x, rtol=1e-6)


def test_an_absent_optional_input_is_given_as_none():
    mod, params = from_onnx(_guarded_model(), shape={"opt": None})
    assert [p.name for p in mod.main.params] == ["x"]
    x = rand(2, 3)
    np.testing.assert_allclose(interpret(mod, params, {"x": x})[0], x * 2, rtol=1e-6)


def test_optional_of_a_value_and_an_empty_optional():
    nodes = [
        helper.make_node("Optional", ["x"], ["some"]),
        helper.make_node("Optional", [], ["none"], type=helper.make_tensor_type_proto(F, [3])),
        helper.make_node("OptionalHasElement", ["some"], ["has_some"]),
        helper.make_node("OptionalHasElement", ["none"], ["has_none"]),
        helper.make_node("OptionalGetElement", ["some"], ["y"]),
    ]
    model = model_of(
        nodes,
        [vi("x", F, [3])],
        [vi("y", F, [3]), vi("has_some", B, []), vi("has_none", B, [])],
        opset=18,
    )
    x = rand(3)
    mod, params = from_onnx(model)
    ours = interpret(mod, params, {"x": x})
    theirs = run_onnxruntime(model, {"x": x})
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    assert [bool(ours[1]), bool(ours[2])] == [True, False]


def test_getting_the_element_of_an_empty_optional_is_an_error():
    nodes = [
        helper.make_node("Optional", [], ["none"], type=helper.make_tensor_type_proto(F, [3])),
        helper.make_node("OptionalGetElement", ["none"], ["y"], name="get"),
    ]
    model = model_of(nodes, [], [vi("y", F, [3])], opset=18)
    with pytest.raises(FrontendError, match=r"OptionalGetElement node 'get'.*empty optional"):
        from_onnx(model)


def test_an_empty_optional_output_is_an_error():
    out = helper.make_value_info(
        "none", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [3]))
    )
    node = helper.make_node("Optional", [], ["none"], type=helper.make_tensor_type_proto(F, [3]))
    graph = helper.make_graph([node], "g", [], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    with pytest.raises(UnsupportedFeatureError, match=r"graph output 'none' is an empty optional"):
        from_onnx(model)


def test_an_optional_decided_by_a_run_time_condition_names_its_input():
    opt_type = helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [3]))
    then_g = helper.make_graph(
        [helper.make_node("Optional", [], ["e"], type=helper.make_tensor_type_proto(F, [3]))],
        "then",
        [],
        [helper.make_value_info("e", opt_type)],
    )
    else_g = helper.make_graph(
        [helper.make_node("Optional", ["x"], ["s"])],
        "else",
        [],
        [helper.make_value_info("s", opt_type)],
    )
    nodes = [
        helper.make_node("If", ["c"], ["o"], then_branch=then_g, else_branch=else_g, name="if"),
        helper.make_node("OptionalHasElement", ["o"], ["has"]),
    ]
    model = model_of(nodes, [vi("x", F, [3]), vi("c", B, [])], [vi("has", B, [])], opset=18)
    with pytest.raises(NotStaticError, match=r"If node 'if'.*optional.*'c'"):
        from_onnx(model)
