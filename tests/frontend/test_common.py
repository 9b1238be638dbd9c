"""ember.frontend.common: the converter registry, graph builder and helpers every frontend uses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import ember.frontend
from ember.errors import FrontendError, InternalError, UnsupportedOpError
from ember.frontend.common import (
    ConverterRegistry,
    GraphBuilder,
    NodeContext,
    evaluate,
    fold_call,
    free_vars,
    input_dtype,
    int_list,
    normalize_axis,
)
from ember.graph import interpret
from ember.graph.ir import Constant, Tuple, const
from ember.ops import call


def test_registry_registers_and_lists_ops() -> None:
    registry = ConverterRegistry("Toy")

    @registry.register("Relu", "Relu6", min_version=6)
    def _relu(node):
        return "converted"

    assert registry.ops() == ["Relu", "Relu6"]
    assert "Relu" in registry and "Tanh" not in registry and registry.get("Tanh") is None
    assert registry["Relu6"].min_version == 6 and registry["Relu"]("node") == "converted"


def test_registry_rejects_a_second_converter_for_an_op() -> None:
    registry = ConverterRegistry("Toy")
    registry.register("Relu")(lambda node: None)
    with pytest.raises(InternalError, match="Toy op 'Relu' has two converters"):
        registry.register("Relu")(lambda node: None)


def test_every_frontend_lists_its_ops() -> None:
    for name in ember.frontend.FRAMEWORKS:
        package = getattr(ember.frontend, name)
        assert package.supported_ops() == package.CONVERTERS.ops() != []


def test_call_errors_name_the_node() -> None:
    builder = GraphBuilder("Toy")
    x = builder.add_input("x", (1, 6))
    with pytest.raises(FrontendError, match="Toy node 'r': cannot build ember op reshape: "):
        builder.call("reshape", x, name="r", newshape=(7, -1))
    node = NodeContext(builder, "r", "Reshape")
    with pytest.raises(FrontendError, match=r"^Toy node 'r' \(Reshape\): cannot build ember op"):
        node.call("reshape", x, newshape=(7, -1))


def test_converting_names_the_node_in_every_error() -> None:
    builder = GraphBuilder("Toy")
    node = NodeContext(builder, "pool1", "Pooling")
    x = builder.add_input("x", (1, 6))
    with pytest.raises(FrontendError, match=r"Toy node 'pool1' \(Pooling\): cannot build ember op"):
        with builder.converting(node):
            builder.call("reshape", x, name="pool1/flat", newshape=(7, -1))
    with pytest.raises(FrontendError, match=r"'pool1' \(Pooling\): the kernel is odd"):
        with builder.converting(node):
            raise FrontendError("the kernel is odd")
    with pytest.raises(FrontendError, match=r"could not be converted: ValueError: (.|\n)*hint"):
        with builder.converting(node):
            int("x")
    with pytest.raises(InternalError, match=r"converting Toy node 'pool1' \(Pooling\) failed"):
        with builder.converting(node):
            _ = 1 / 0
    unsupported = UnsupportedOpError("Toy", [("Mystery", "inner")])
    with pytest.raises(UnsupportedOpError) as info:  # subclasses carry data: passed unchanged
        with builder.converting(node):
            raise unsupported
    assert info.value is unsupported


def test_unsupported_ops_are_reported_together() -> None:
    builder = GraphBuilder("MXNet")
    builder.raise_unsupported()  # nothing recorded: no error
    builder.unsupported("Mystery", "a")
    builder.unsupported("Fancy", "b")
    builder.unsupported("Mystery", "c")
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        builder.raise_unsupported(extra=" (extra)")
    assert info.value.unsupported == [("Mystery", "a"), ("Fancy", "b"), ("Mystery", "c")]
    assert "ember.frontend.mxnet.supported_ops()" in str(info.value)


def test_inputs_weights_and_finish() -> None:
    builder = GraphBuilder("Toy")
    x = builder.add_input("x", (2,))
    with pytest.raises(FrontendError, match="input name 'x' is used twice"):
        builder.add_input("x", (2,))
    scale = builder.add_weight("x", np.float32(2.0))  # 0-d stays 0-d, the name is made unique
    unused = builder.add_weight("unused", np.ones(3, "float32"))
    assert scale.name == "x_1" and scale.type.shape == ()
    mod, params = builder.finish([builder.call("multiply", x, scale, name="y")])
    assert [p.name for p in mod.main.params] == ["x", "x_1"] and set(params) == {"x_1"}
    assert unused.name not in params
    out = interpret(mod, params, {"x": np.array([1, 2], "float32")})[0]
    np.testing.assert_array_equal(out, [2, 4])
    with pytest.raises(FrontendError, match="the Toy model has no outputs"):
        GraphBuilder("Toy").finish([])


def test_normalize_axis_names_the_node() -> None:
    assert normalize_axis(-1, 4, "Toy node 'n'") == 3
    node = NodeContext(GraphBuilder("Toy"), "n", "Softmax")
    with pytest.raises(FrontendError, match=r"Toy node 'n' \(Softmax\): axis 4 is out of range"):
        node.axis(4, 4)
    with pytest.raises(FrontendError, match=r"Toy node 'n' \(Softmax\): dim1 -5 is out of range"):
        normalize_axis(-5, 4, node, "dim1")


def test_free_vars_evaluate_and_fold() -> None:
    builder = GraphBuilder("Toy")
    x, w = builder.add_input("x", (2,)), builder.add_weight("w", np.ones(2, "float32"))
    y = call("add", call("multiply", x, w), x)
    assert free_vars(y) == [x, w]
    value = evaluate(y, {x: np.array([1, 2], "float32"), w: np.array([3, 4], "float32")})
    np.testing.assert_array_equal(value, [4, 10])
    folded = fold_call(call("add", const(np.float32(1)), const(np.float32(2))))
    assert isinstance(folded, Constant) and folded.value == 3
    parts = fold_call(call("split", const(np.arange(4, dtype="float32")), sections=(2, 2)))
    assert isinstance(parts, Tuple) and [f.value.tolist() for f in parts.fields] == [[0, 1], [2, 3]]


def test_small_helpers() -> None:
    assert int_list(np.array([[1, 2]])) == [1, 2] and int_list(3) == [3] and int_list(None) == []
    assert input_dtype({"ids": "int64"}, "ids") == "int64"
    assert input_dtype({"ids": "int64"}, "x") == "float32"
    with pytest.raises(FrontendError, match="dtype 'float' given for input 'x' is not an ember"):
        input_dtype("float", "x")


def test_import_ember_frontend_loads_no_framework_package() -> None:
    code = (
        "import sys, ember.frontend as f; "
        "loaded = [m for m in sys.modules if m.startswith('ember.frontend.') "
        "and m.split('.')[2] in f.FRAMEWORKS]; "
        "assert not loaded, loaded; assert 'onnx' not in sys.modules; "
        "assert f.from_tflite.__module__ == 'ember.frontend.tflite.importer'; "
        "assert 'ember.frontend.tflite' in sys.modules and 'ember.frontend.onnx' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
