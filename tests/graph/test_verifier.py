"""verify(): every malformation a user or a pass can produce is named."""

from __future__ import annotations

import numpy as np
import pytest

from ember.errors import VerifyError
from ember.graph import (
    Call,
    Constant,
    Function,
    Module,
    TensorType,
    Tuple,
    TupleGetItem,
    Var,
    verify,
)
from ember.graph.passes import run_passes
from ember.ops import call
from tests.graph.graph_testlib import tensor


def _mod(params, body) -> Module:
    return Module.from_function(Function(tuple(params), body))


def test_well_formed_module_passes() -> None:
    x = tensor("x", 1, 4)
    parts = call("split", x, sections=(2, 2), axis=1)
    body = Tuple((TupleGetItem(parts, 0), call("nn.relu", TupleGetItem(parts, 1))))
    verify(_mod([x], body))


def test_free_variable() -> None:
    x, y = tensor("x", 1, 4), tensor("y", 1, 4)
    with pytest.raises(VerifyError, match=r"@main: free variable %y: .* not a parameter"):
        verify(_mod([x], call("add", x, y)))


def test_free_variable_with_the_name_of_a_parameter() -> None:
    x, other_x = tensor("x", 1, 4), tensor("x", 1, 4)
    with pytest.raises(VerifyError, match="different Var object than the parameter"):
        verify(_mod([x], call("add", x, other_x)))


def test_duplicate_parameter_names() -> None:
    a, b = tensor("w", 2), tensor("w", 2)
    with pytest.raises(VerifyError, match="parameters 0 and 1 are both named %w"):
        verify(_mod([a, b], call("add", a, b)))


def test_parameter_that_is_not_a_var() -> None:
    x = tensor("x", 2)
    c = Constant(np.zeros(2, np.float32))
    with pytest.raises(VerifyError, match="parameter 1 is a Constant, not a Var"):
        verify(_mod([x, c], call("add", x, c)))


def test_stored_type_that_the_op_rule_disagrees_with() -> None:
    x = tensor("x", 1, 4)
    relu = call("nn.relu", x, name="act")
    object.__setattr__(relu, "type", TensorType((1, 5)))  # edited behind the constructor's back
    with pytest.raises(VerifyError, match=r"nn.relu node 'act' is recorded as Tensor\[\(1, 5\)"):
        verify(_mod([x], relu))


def test_operand_types_no_longer_accepted_by_the_op() -> None:
    x = tensor("x", 1, 4)
    y = tensor("y", 1, 4)
    add = call("add", x, y, name="sum")
    object.__setattr__(y, "type", TensorType((1, 3)))
    with pytest.raises(VerifyError, match="add node 'sum' is ill-typed"):
        verify(_mod([x, y], add))


def test_tuple_index_out_of_range() -> None:
    x = tensor("x", 1, 4)
    item = TupleGetItem(Tuple((x, x)), 1, name="second")
    object.__setattr__(item, "index", 2)
    with pytest.raises(VerifyError, match="TupleGetItem 'second' reads field 2 of a tuple with 2"):
        verify(_mod([x], item))


def test_tuple_get_item_of_a_tensor() -> None:
    x = tensor("x", 1, 4)
    item = TupleGetItem(Tuple((x,)), 0)
    object.__setattr__(item, "tuple_value", x)
    with pytest.raises(VerifyError, match=r"reads field 0 of a Tensor\[\(1, 4\), float32\]"):
        verify(_mod([x], item))


def test_wrong_attrs_class() -> None:
    x = tensor("x", 1, 4)
    relu = call("nn.relu", x)
    object.__setattr__(relu, "attrs", call("nn.leaky_relu", x).attrs)
    with pytest.raises(VerifyError, match="attrs of type LeakyReluAttrs, expected NoAttrs"):
        verify(_mod([x], relu))


def test_fused_function_is_checked_too() -> None:
    p, stray = tensor("p0", 1, 4), tensor("stray", 1, 4)
    kernel = Function((p,), call("add", p, stray), {"primitive": True, "name": "fused_add"})
    x = tensor("x", 1, 4)
    with pytest.raises(VerifyError, match=r"@main -> fn fused_add: free variable %stray"):
        verify(_mod([x], Call(kernel, (x,), None)))


def test_module_without_main_and_non_module() -> None:
    x = tensor("x", 2)
    with pytest.raises(VerifyError, match=r"no main function \(it has: helper\)"):
        verify(Module({"helper": Function((x,), x)}))
    with pytest.raises(VerifyError, match="expected a graph Module, got a Function"):
        verify(Function((x,), x))  # type: ignore[arg-type]


def test_pass_driver_names_the_pass_that_broke_the_graph() -> None:
    x = tensor("x", 1, 4)
    mod = _mod([x], call("nn.relu", x))

    def forget_params(m: Module) -> Module:
        return Module.from_function(Function((), m.main.body))

    with pytest.raises(VerifyError, match="after pass forget_params: @main: free variable %x"):
        run_passes(mod, [forget_params])
    # Without verification the driver trusts the pass.
    run_passes(mod, [forget_params], verify=False)


def test_pass_driver_rejects_a_bad_input_and_a_non_module_result() -> None:
    x = tensor("x", 1, 4)
    bad = _mod([], call("nn.relu", x))
    with pytest.raises(VerifyError, match="input of the pass pipeline: @main: free variable"):
        run_passes(bad, [])
    with pytest.raises(VerifyError, match="pass <lambda> returned a str, not a Module"):
        run_passes(_mod([x], x), [lambda m: "oops"])


def test_var_with_tuple_type_is_rejected() -> None:
    x = tensor("x", 2)
    object.__setattr__(x, "type", Tuple((Var("y", TensorType((2,))),)).type)
    with pytest.raises(VerifyError, match="expected a tensor type"):
        verify(_mod([x], x))
