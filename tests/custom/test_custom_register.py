"""ember.custom's registrations: what a user's module registers, and every mistake it can
make, each a CustomOpError that names the op (or converter) and says how to fix it."""

from __future__ import annotations

import importlib
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import example_ops
import numpy as np
import pytest

from ember import custom, te
from ember.errors import AttrError, CustomOpError, ShapeError
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var
from ember.graph.op import OpPattern, get_op
from ember.ops import call

_fresh = itertools.count()


def fresh(stem: str) -> str:
    """A name of its own per test (conftest's fixture removes each test's registrations;
    distinct names keep the messages of a failure unambiguous)."""
    return f"test_{stem}.op{next(_fresh)}"


def unary_op(name: str, **options: Any) -> Any:
    """A registered unary op with an identity type rule and a doubling reference."""
    op = custom.register_op(name, **options)
    op.type_rule(lambda types, attrs: types[0])
    op.reference(lambda inputs, attrs: inputs[0] * 2)
    return op


def test_the_user_module_registers_its_ops_with_its_library() -> None:
    op = get_op("example.fancy_gelu")
    assert op is example_ops.fancy_gelu and not op.is_builtin
    assert op.library == "example_ops"  # inferred from the calling module
    assert op.pattern == OpPattern.ELEMWISE and "compute" in op.extensions
    assert get_op("example.scaled_dense").pattern == OpPattern.OUT_ELEMWISE_FUSABLE
    assert "schedule" in get_op("example.rms_norm").extensions
    assert "onnx:com.example.FancyGelu" in custom.registered_converters("onnx")
    assert "pytorch:example::fancy_gelu" in custom.registered_converters()
    assert "tensorflow:FancyGelu" in custom.registered_converters("tensorflow")


def test_a_custom_op_runs_in_the_reference_executor() -> None:
    x = Var("x", TensorType((3, 5), "float32"))
    y = call("example.fancy_gelu", x, alpha=1.0)
    mod = Module.from_function(Function((x,), y))
    data = np.random.default_rng().standard_normal((3, 5)).astype(np.float32)
    (out,) = interpret(mod, {}, {"x": data})
    np.testing.assert_allclose(out, data / (1 + np.exp(-data)), rtol=1e-6)


def test_registering_an_op_twice_names_it_and_its_library() -> None:
    name = fresh("twice")
    unary_op(name)
    with pytest.raises(CustomOpError, match=rf"op '{name}' is already registered \(registered "):
        custom.register_op(name)
    with pytest.raises(CustomOpError, match=r"'nn.relu' is already registered \(a built-in op\)"):
        custom.register_op("nn.relu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "fancy"}, r"custom op name 'fancy' is not a namespaced name"),
        ({"name": "lib.x", "pattern": "blend"}, r"pattern 'blend'\n  hint: use one of elem"),
        ({"name": "lib.y", "attrs": dict}, r"attrs of custom op 'lib.y' must be a dataclass"),
        ({"name": "lib.z", "num_inputs": -1}, r"num_inputs must be an int >= 0 or None"),
    ],
)
def test_bad_op_registrations(kwargs: dict[str, Any], message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(CustomOpError, match=message):
        custom.register_op(name, **kwargs)


def test_attrs_must_be_frozen() -> None:
    @dataclass
    class Loose:
        alpha: float = 1.0

    with pytest.raises(CustomOpError, match=r"attrs Loose .* must be a frozen dataclass"):
        custom.register_op(fresh("loose"), Loose)


def test_computes_and_schedules_are_registered_once_and_only_on_custom_ops() -> None:
    op = unary_op(fresh("compute"))
    custom.register_compute(op)(lambda inputs, attrs, out_type: inputs[0])
    with pytest.raises(CustomOpError, match=rf"custom op {op.name} already has a TE compute"):
        custom.register_compute(op.name)
    custom.register_schedule(op)(lambda outputs, target: None)
    with pytest.raises(CustomOpError, match=rf"{op.name} already has a schedule rule"):
        custom.register_schedule(op)
    with pytest.raises(CustomOpError, match=r"nn.relu is one of ember's built-in ops; a compute"):
        custom.register_compute("nn.relu")
    with pytest.raises(CustomOpError, match=r"built-in ops; a schedule cannot be added"):
        custom.register_schedule("nn.conv2d")


def test_a_tunable_compute_needs_an_anchor_pattern() -> None:
    op = unary_op(fresh("tunable"), pattern="elemwise")
    with pytest.raises(CustomOpError, match=r"registered tunable, but its pattern is elemwise"):
        custom.register_compute(op, tunable=True)


def test_converter_registration_errors() -> None:
    fn = lambda node: node.input(0)  # noqa: E731
    custom.register_converter("onnx", "Twice", domain="test.once")(fn)
    with pytest.raises(CustomOpError, match=r"onnx op 'test.once.Twice' already has a custom"):
        custom.register_converter("onnx", "Twice", domain="test.once")(fn)
    with pytest.raises(CustomOpError, match=r"ember converts the ONNX op 'Relu' itself"):
        custom.register_converter("onnx", "Relu")
    with pytest.raises(CustomOpError, match=r"'com.x.Gelu' is not a plain op type"):
        custom.register_converter("onnx", "com.x.Gelu")
    with pytest.raises(CustomOpError, match=r"PyTorch op 'aten::relu' is not a custom op name"):
        custom.register_converter("pytorch", "aten::relu")
    with pytest.raises(CustomOpError, match=r"PyTorch op 'fancy_gelu' is not a custom op name"):
        custom.register_converter("pytorch", "fancy_gelu")
    with pytest.raises(CustomOpError, match=r"ember converts the TensorFlow op 'Relu' itself"):
        custom.register_converter("tensorflow", "Relu")
    with pytest.raises(CustomOpError, match=r"domain= is for ONNX ops only"):
        custom.register_converter("tensorflow", "Gelu2", domain="com.example")
    with pytest.raises(CustomOpError, match=r"no custom converters for framework 'caffe'"):
        custom.register_converter("caffe", "Gelu")


def test_a_missing_type_rule_or_reference_is_the_users_to_add() -> None:
    op = custom.register_op(fresh("bare"))
    x = Var("x", TensorType((2,), "float32"))
    with pytest.raises(CustomOpError, match=rf"custom op {op.name} .* has no type rule"):
        call(op, x)
    op.type_rule(lambda types, attrs: types[0])
    mod = Module.from_function(Function((x,), call(op, x)))
    with pytest.raises(CustomOpError, match=r"has no numpy reference\n  hint: decorate one"):
        interpret(mod, {}, {"x": np.ones(2, np.float32)})


def test_a_reference_or_type_rule_that_breaks_its_contract_names_the_op() -> None:
    op = custom.register_op(fresh("wrong"))
    op.type_rule(lambda types, attrs: types[0])
    op.reference(lambda inputs, attrs: inputs[0][:1])  # drops elements
    x = Var("x", TensorType((3,), "float32"))
    mod = Module.from_function(Function((x,), call(op, x)))
    with pytest.raises(
        CustomOpError,
        match=rf"numpy reference of custom op {op.name} .*returned float32\[1\], its type "
        r"rule says Tensor\[\(3\), float32\]",
    ):
        interpret(mod, {}, {"x": np.ones(3, np.float32)})
    broken = custom.register_op(fresh("broken"))
    broken.type_rule(lambda types, attrs: types[0].shape)  # a tuple, not a type
    with pytest.raises(CustomOpError, match=r"returned \(3,\), not a type"):
        call(broken, x)
    failing = custom.register_op(fresh("failing"))
    failing.type_rule(lambda types, attrs: types[5])
    with pytest.raises(CustomOpError, match=r"type rule of custom op .* failed .*IndexError"):
        call(failing, x)


def test_shape_errors_of_a_custom_type_rule_name_op_and_node() -> None:
    x = Var("x", TensorType((2, 3), "float32"))
    w = Var("w", TensorType((4, 5), "float32"))
    with pytest.raises(ShapeError, match=r"op example.scaled_dense \(node 'd'\): expects x"):
        call("example.scaled_dense", x, w, name="d")


def test_a_compute_may_be_any_te_function_of_the_inputs() -> None:
    # register_compute returns the user's function unchanged (usable directly in tests)
    op = unary_op(fresh("plain"), pattern="elemwise")

    def twice(inputs: list[Any], attrs: Any, out_type: Any) -> Any:
        return te.compute(out_type.shape, lambda *i: inputs[0][i] * 2.0)

    assert custom.register_compute(op)(twice) is twice
    assert op.extensions["compute"].__wrapped__ is twice


LIBRARY = """
from ember import custom, te

op = custom.register_op("{ns}.halve", pattern="elemwise")
op.type_rule(lambda types, attrs: types[0])
op.reference(lambda inputs, attrs: inputs[0] / 2)
custom.register_compute(op)(lambda inputs, attrs, out_type: te.compute(
    out_type.shape, lambda *i: inputs[0][i] * 0.5))
custom.register_converter("onnx", "Halve", domain="{ns}")(
    lambda node: node.call(op, node.input(0)))
"""


def test_unregister_library_undoes_a_module_so_it_can_register_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"scratch_lib{next(_fresh)}"
    (tmp_path / f"{name}.py").write_text(LIBRARY.format(ns=name))
    monkeypatch.setattr(sys, "path", list(sys.path))  # import_library adds tmp_path
    try:
        module = custom.import_library(tmp_path / f"{name}.py")
        with pytest.raises(CustomOpError, match=rf"unregister_library\('{name}'\)"):
            importlib.reload(module)  # running it again collides; the hint says what to do
        removed = custom.unregister_library(name)
        assert removed == [f"{name}.halve", f"onnx:{name}.Halve"]
        with pytest.raises(AttrError, match=rf"no op named '{name}.halve'"):
            get_op(f"{name}.halve")
        assert f"onnx:{name}.Halve" not in custom.registered_converters()
        importlib.reload(module)  # registers again: a new op object, with its compute
        assert get_op(f"{name}.halve") is module.op and "compute" in module.op.extensions
        assert custom.unregister_library(module) == removed  # the module also names it
        assert custom.unregister_library(name) == []  # nothing left: no error
    finally:
        sys.modules.pop(name, None)


def test_ember_s_own_ops_cannot_be_unregistered() -> None:
    with pytest.raises(CustomOpError, match=r"'ember.ops' is ember's own library"):
        custom.unregister_library("ember.ops")
    assert get_op("nn.relu").is_builtin


def test_scope_removes_what_was_registered_inside() -> None:
    before = unary_op(fresh("outer"), pattern="elemwise")  # registered outside the scope
    converters = custom.registered_converters()
    with custom.scope():
        inner = unary_op(fresh("inner"))
        custom.register_compute(before)(lambda inputs, attrs, out_type: inputs[0])
        custom.register_converter("onnx", "Inner", domain="test.scope")(lambda node: node.input(0))
        assert get_op(inner.name) is inner and "compute" in before.extensions
    with pytest.raises(AttrError, match=r"no op named"):
        get_op(inner.name)
    assert get_op(before.name) is before and "compute" not in before.extensions
    assert custom.registered_converters() == converters
    assert get_op("example.fancy_gelu") is example_ops.fancy_gelu  # the user module's stay
