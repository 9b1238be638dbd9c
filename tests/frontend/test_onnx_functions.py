"""ONNX functions, expanded at import: model-local functions and schema-defined ops.

The expanded graph must compute what onnxruntime (and, for the PyTorch exporter's
files, torch itself) computes on fresh random inputs; nodes from a body are named
``<call node>/<body node>``; an op inside a body that ember cannot convert is
reported with that path.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ember
from ember.errors import UnsupportedOpError
from ember.frontend.onnx import from_onnx, unsupported_nodes
from ember.frontend.onnx.functions import local_functions, schema_function
from ember.graph import interpret, post_order
from ember.graph.ir import Call
from tests.frontend.onnx_testlib import run_onnxruntime

RTOL, ATOL = 1e-5, 1e-5


def _ref(name: str, kind: int, ref: str | None = None) -> onnx.AttributeProto:
    """An attribute of a function body node that takes the caller's attribute ``ref``."""
    attr = onnx.AttributeProto(name=name, type=kind)
    attr.ref_attr_name = ref or name
    return attr


def _model(nodes, inputs, outputs, functions=(), opset=18, ir_version=9, domains=("local",)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model


def _check_against_onnxruntime(model, shapes, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    mod, params = from_onnx(model)
    ours = interpret(mod, params, feeds)
    theirs = run_onnxruntime(model, feeds)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    return mod


def _call_names(mod):
    return [n.name for n in post_order(mod.main) if isinstance(n, Call)]


# ----------------------------------------------------------------------------- model-local


def _scaled_act():
    """local.ScaledAct(x) = LeakyRelu(x, alpha=@alpha) * @scale, scale defaults to 2."""
    scale = helper.make_attribute("scale", 2.0)
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["a"], name="act"),
        helper.make_node("Constant", [], ["s"], name="scale"),
        helper.make_node("Mul", ["a", "s"], ["y"], name="mul"),
    ]
    nodes[0].attribute.append(_ref("alpha", onnx.AttributeProto.FLOAT))
    nodes[1].attribute.append(_ref("value_float", onnx.AttributeProto.FLOAT, "scale"))
    fn = helper.make_function(
        "local", "ScaledAct", ["x"], ["y"], nodes, [helper.make_opsetid("", 18)], ["alpha"]
    )
    fn.attribute_proto.append(scale)  # IR 9: a default for an attribute
    return fn


def _outer():
    """local.Outer(x, b) = ScaledAct(x + b, alpha=@slope) (scale: the default), nested."""
    call = helper.make_node("ScaledAct", ["t"], ["y"], domain="local", name="inner")
    call.attribute.append(_ref("alpha", onnx.AttributeProto.FLOAT, "slope"))
    nodes = [helper.make_node("Add", ["x", "b"], ["t"], name="add"), call]
    return helper.make_function(
        "local",
        "Outer",
        ["x", "b"],
        ["y"],
        nodes,
        [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)],
        ["slope"],
    )


def test_local_function_with_attribute_references_and_defaults():
    nodes = [
        helper.make_node("ScaledAct", ["x"], ["y1"], domain="local", name="f1", alpha=0.3),
        helper.make_node(
            "ScaledAct", ["x"], ["y2"], domain="local", name="f2", alpha=0.05, scale=-1.5
        ),
    ]
    model = _model(nodes, [("x", [3, 4])], [("y1", [3, 4]), ("y2", [3, 4])], [_scaled_act()])
    mod = _check_against_onnxruntime(model, {"x": (3, 4)})
    assert set(_call_names(mod)) >= {"f1/act", "f1/mul", "f2/act", "f2/mul"}


def test_nested_local_functions():
    node = helper.make_node("Outer", ["x", "b"], ["y"], domain="local", name="outer", slope=0.2)
    model = _model(
        [node], [("x", [2, 5]), ("b", [2, 5])], [("y", [2, 5])], [_scaled_act(), _outer()]
    )
    mod = _check_against_onnxruntime(model, {"x": (2, 5), "b": (2, 5)})
    names = _call_names(mod)
    assert "outer/add" in names and "outer/inner/act" in names and "outer/inner/mul" in names


def test_function_opsets_are_its_own():
    fn = _scaled_act()
    del fn.opset_import[:]
    fn.opset_import.append(helper.make_opsetid("", 16))  # LeakyRelu-16 = LeakyRelu at 18
    node = helper.make_node("ScaledAct", ["x"], ["y"], domain="local", alpha=0.1)
    model = _model([node], [("x", [4])], [("y", [4])], [fn])
    assert local_functions(model)[("local", "ScaledAct")].opsets[""] == 16
    _check_against_onnxruntime(model, {"x": (4,)})


def test_an_unsupported_op_in_a_function_body_is_named_with_its_call():
    body = [helper.make_node("Unique", ["x"], ["y"], name="unique")]
    fn = helper.make_function(
        "local", "Distinct", ["x"], ["y"], body, [helper.make_opsetid("", 18)]
    )
    node = helper.make_node("Distinct", ["x"], ["y"], domain="local", name="call")
    model = _model([node], [("x", [4])], [("y", [4])], [fn])
    assert unsupported_nodes(model) == [("Unique", "call/unique")]
    with pytest.raises(UnsupportedOpError, match="Unique.*'call/unique'"):
        from_onnx(model)


def test_an_unknown_function_is_an_unsupported_op():
    node = helper.make_node("Missing", ["x"], ["y"], domain="local", name="m")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)]
    )
    with pytest.raises(UnsupportedOpError, match="local.Missing"):
        from_onnx(model)


# ----------------------------------------------------------------------------- PyTorch exporter


@pytest.mark.frameworks
def test_pytorch_export_modules_as_functions(tmp_path):
    torch = pytest.importorskip("torch")

    class Block(torch.nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(width, width)
            self.norm = torch.nn.LayerNorm(width)

        def forward(self, x):
            return x + torch.nn.functional.gelu(self.norm(self.fc(x)))

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.Sequential(Block(8), Block(8), Block(8))
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.blocks(x))

    torch.manual_seed(0)
    net = Net().eval()
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.randn(4, 8),),
            str(path),
            input_names=["x"],
            export_modules_as_functions={Block},
            dynamo=False,
            opset_version=17,
        )
    model = onnx.load(str(path))
    assert len(model.functions) >= 1 and model.ir_version >= 8
    assert [n.op_type for n in model.graph.node].count("Block") == 3
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    mod, params = ember.frontend.from_onnx(str(path))
    ours = interpret(mod, params, {"x": x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours, run_onnxruntime(model, {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert any(name.startswith("/blocks/blocks.1/Block/") for name in _call_names(mod))


# ----------------------------------------------------------------------------- schema functions


def test_schema_function_bodies_are_found():
    body = schema_function("AffineGrid", "", 20)
    assert body is not None and body.origin == "ONNX function AffineGrid-20"
    assert schema_function("Conv", "", 18) is None
    # context-dependent bodies need the node and its input types
    assert schema_function("SoftmaxCrossEntropyLoss", "", 13) is None


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_expands_and_matches_onnxruntime(reduction):
    # SoftmaxCrossEntropyLoss: a context-dependent function (built for the input types)
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((3, 5, 2)).astype(np.float32)
    labels = rng.integers(0, 5, (3, 2)).astype(np.int64)
    node = helper.make_node(
        "SoftmaxCrossEntropyLoss", ["scores", "labels"], ["loss"], reduction=reduction, name="sce"
    )
    shape = [3, 2] if reduction == "none" else []
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [3, 5, 2]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [3, 2]),
        ],
        [helper.make_tensor_value_info("loss", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    feeds = {"scores": scores, "labels": labels}
    mod, params = from_onnx(model)
    ours = interpret(mod, params, feeds)[0]
    np.testing.assert_allclose(ours, run_onnxruntime(model, feeds)[0], rtol=1e-5, atol=1e-6)
    assert all(name.startswith("sce/") for name in _call_names(mod))


def test_a_native_converter_wins_over_the_schema_function():
    # Relu-14 has a function body in its schema; ember converts Relu natively
    assert schema_function("Relu", "", 18) is not None
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    model = _model([node], [("x", [2, 6])], [("y", [2, 6])], domains=())
    mod = _check_against_onnxruntime(model, {"x": (2, 6)})
    assert _call_names(mod) == ["relu"]
