"""Custom ops through every frontend: an ONNX custom domain, a TensorFlow op in a GraphDef,
a PyTorch ``torch.library`` op through torch.export and TorchScript; what a converter
gets and what it must return; the one error listing the ops nobody converts."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import custom_models
import example_ops  # noqa: F401 (registers the example ops and their converters)
import numpy as np
import pytest
from onnx import TensorProto, helper

from ember import custom
from ember.errors import CustomOpError, UnsupportedOpError
from ember.frontend import from_onnx, from_tensorflow
from ember.frontend.onnx import supported_ops
from ember.frontend.tensorflow.proto import read_graph_def
from ember.graph import interpret

_fresh = itertools.count()


def fancy_gelu(x: np.ndarray, alpha: float) -> np.ndarray:
    return x / (1.0 + np.exp(-alpha * x))


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng().standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- ONNX


def test_onnx_custom_domain_ops_import_and_match_onnxruntime() -> None:
    mod, params = from_onnx(custom_models.onnx_model(custom=True))
    ops = {c.op.name for c in _calls(mod)}
    assert {"example.fancy_gelu", "example.rms_norm", "example.scaled_dense"} <= ops
    x = rand(1, 4, 8, 8)
    got = interpret(mod, params, {"x": x})
    # onnxruntime runs the same model with each custom op spelled in standard ops
    want = custom_models.run_onnxruntime(custom_models.onnx_model(custom=False), {"x": x})
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_onnx_unknown_ops_are_listed_at_once_with_the_custom_op_pointer() -> None:
    nodes = [
        helper.make_node("Mystery", ["x"], ["a"], domain="com.example"),
        helper.make_node("FancyGelu", ["a"], ["b"], domain="com.example"),
        helper.make_node("Enigma", ["b"], ["y"], domain="org.other"),
    ]
    model = _onnx_graph(nodes, ["y"], {"com.example": 1, "org.other": 2})
    with pytest.raises(UnsupportedOpError, match=r"2 unsupported op\(s\)") as info:
        from_onnx(model)
    message = str(info.value)
    assert "com.example.Mystery: 1 node(s)" in message and "org.other.Enigma" in message
    assert "FancyGelu" not in message  # registered by example_ops
    assert "ember.custom.register_converter (see docs/custom_ops.md)" in message


def test_onnx_converter_gets_inputs_attrs_and_its_domain_version() -> None:
    seen: dict[str, Any] = {}
    op_type = f"Probe{next(_fresh)}"

    @custom.register_converter("onnx", op_type, domain="com.probe")
    def _(node: custom.CustomNode) -> Any:
        seen.update(
            framework=node.framework,
            inputs=len(node.inputs),
            omitted=node.inputs[1],
            attrs=node.attrs,
            version=node.node.version,
            outputs=node.num_outputs,
        )
        return node.call("example.fancy_gelu", node.input(0), alpha=node.attr("alpha"))

    nodes = [helper.make_node(op_type, ["x", "", "x"], ["y"], domain="com.probe", alpha=0.5)]
    mod, params = from_onnx(_onnx_graph(nodes, ["y"], {"com.probe": 3}))
    assert seen == {
        "framework": "onnx",
        "inputs": 3,
        "omitted": None,
        "attrs": {"alpha": 0.5},
        "version": 3,
        "outputs": 1,
    }
    x = rand(2, 3)
    np.testing.assert_allclose(interpret(mod, params, {"x": x})[0], fancy_gelu(x, 0.5), 1e-5)


def test_a_converter_returning_the_wrong_arity_names_op_node_and_library() -> None:
    op_type = f"TwoOut{next(_fresh)}"
    custom.register_converter("onnx", op_type, domain="com.arity")(lambda node: node.input(0))
    nodes = [helper.make_node(op_type, ["x"], ["y", "z"], domain="com.arity", name="split0")]
    with pytest.raises(
        CustomOpError,
        match=rf"custom converter of onnx op 'com.arity.{op_type}' \(library "
        r"'test_custom_frontends'\) returned 1 output\(s\) for .*'split0', which has 2",
    ):
        from_onnx(_onnx_graph(nodes, ["y", "z"], {"com.arity": 1}))


def test_a_converter_returning_something_else_or_failing_says_whose_it_is() -> None:
    wrong, failing = f"Wrong{next(_fresh)}", f"Failing{next(_fresh)}"
    custom.register_converter("onnx", wrong, domain="com.bad")(lambda node: "y")
    custom.register_converter("onnx", failing, domain="com.bad")(lambda node: node.attrs["k"])
    node = helper.make_node(wrong, ["x"], ["y"], domain="com.bad", name="w0")
    with pytest.raises(CustomOpError, match=rf"op 'com.bad.{wrong}' .* returned str for"):
        from_onnx(_onnx_graph([node], ["y"], {"com.bad": 1}))
    node = helper.make_node(failing, ["x"], ["y"], domain="com.bad", name="f0")
    with pytest.raises(CustomOpError, match=r"failed on .*'f0'.*: KeyError: 'k'"):
        from_onnx(_onnx_graph([node], ["y"], {"com.bad": 1}))


def test_a_multi_output_custom_op_and_constant_folding() -> None:
    nodes = [
        helper.make_node("SignSplit", ["x"], ["p", "n"], domain="com.example"),
        helper.make_node("Constant", [], ["c"], value_floats=[-1.0, 2.0, -3.0]),
        helper.make_node("FancyGelu", ["c"], ["g"], domain="com.example", alpha=2.0),
        helper.make_node("Add", ["n", "g"], ["y"]),
    ]
    mod, params = from_onnx(_onnx_graph(nodes, ["p", "y"], {"com.example": 1}, shape=[2, 3]))
    assert sum(c.op.name == "example.fancy_gelu" for c in _calls(mod)) == 0  # folded
    x = rand(2, 3)
    p, y = interpret(mod, params, {"x": x})
    constant = fancy_gelu(np.array([-1.0, 2.0, -3.0], np.float32), 2.0)
    np.testing.assert_allclose(p, np.maximum(x, 0))
    np.testing.assert_allclose(y, np.minimum(x, 0) + constant, rtol=1e-6)


def test_a_default_domain_op_ember_lacks_can_be_added_and_matches_onnxruntime() -> None:
    if "Det" in supported_ops():
        pytest.skip("ember converts ONNX Det itself now")
    det = custom.register_op("test_onnx.det")
    det.type_rule(lambda types, attrs: custom.TensorType(types[0].shape[:-2], types[0].dtype))
    det.reference(lambda inputs, attrs: np.linalg.det(inputs[0]).astype(inputs[0].dtype))
    # conftest's fixture removes the converter after the test (ONNX conformance expects
    # Det unknown)
    custom.register_converter("onnx", "Det")(lambda node: node.call(det, node.input(0)))
    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"])],
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    mod, params = from_onnx(model)
    x = rand(5, 3, 3)
    (got,) = interpret(mod, params, {"x": x})
    np.testing.assert_allclose(got, custom_models.run_onnxruntime(model, {"x": x})[0], rtol=1e-4)


# ----------------------------------------------------------------------------- TensorFlow


def test_tensorflow_graphdef_with_a_custom_op() -> None:
    w = rand(3, 3, 3, 4) * 0.3
    bias = rand(4)
    graph = _graph_def(
        _placeholder("x", [1, 6, 6, 3]),
        _const("w", w),
        _const("bias", bias),
        _node(
            "conv",
            "Conv2D",
            ["x", "w"],
            {"strides": _attr_ints([1, 1, 1, 1]), "padding": _attr_s("SAME")},
        ),
        _node("gelu", "FancyGelu", ["conv"], {"alpha": _attr_f(1.25), "T": _attr_type(1)}),
        _node("folded", "FancyGelu", ["bias"], {"T": _attr_type(1)}),  # a constant: folds
        _node("y", "Add", ["gelu", "folded"]),
    )
    nodes, _ = read_graph_def(graph)  # the test's encoder writes what ember's decoder reads
    assert [n.op for n in nodes][-3:] == ["FancyGelu", "FancyGelu", "Add"]
    assert nodes[-3].attrs["alpha"] == pytest.approx(1.25)
    mod, params = from_tensorflow(graph, outputs=["y"])
    assert sum(c.op.name == "example.fancy_gelu" for c in _calls(mod)) == 1
    x = rand(1, 6, 6, 3)
    (got,) = interpret(mod, params, {"x": x})
    conv = _conv_same_nhwc(x, w)
    want = fancy_gelu(conv, 1.25) + fancy_gelu(bias, 1.702)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_tensorflow_unknown_op_points_at_the_custom_op_api() -> None:
    graph = _graph_def(
        _placeholder("x", [2]),
        _node("y", "Addons>GeluNew", ["x"]),
    )
    with pytest.raises(UnsupportedOpError, match=r"Addons>GeluNew: 1 node\(s\): 'y'") as info:
        from_tensorflow(graph)
    assert "ember.custom.register_converter" in str(info.value)


def test_tensorflow_declared_output_count_is_checked() -> None:
    op = f"Pair{next(_fresh)}"
    custom.register_converter("tensorflow", op, num_outputs=2)(lambda node: node.input(0))
    graph = _graph_def(
        _placeholder("x", [2]),
        _node("y", op, ["x"]),
    )
    with pytest.raises(CustomOpError, match=rf"'{op}' .* returned 1 output\(s\) .* declares 2"):
        from_tensorflow(graph)


# ----------------------------------------------------------------------------- helpers


def _calls(mod: Any) -> list[Any]:
    from ember.graph.ir import Call, post_order

    return [n for n in post_order(mod.main.body) if isinstance(n, Call)]


def _onnx_graph(
    nodes: list[Any], outputs: list[str], domains: dict[str, int], shape: list[int] | None = None
) -> Any:
    shape = shape or [2, 3]  # the input's; the outputs' too (the checker wants them)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o in outputs],
    )
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, v) for d, v in domains.items()]
    return helper.make_model(graph, opset_imports=opsets)


def _conv_same_nhwc(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3 stride-1 'SAME' NHWC convolution in numpy."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((x.shape[0], height, width, w.shape[3]), np.float64)
    for i in range(height):
        for j in range(width):
            out[:, i, j] = np.einsum("nhwc,hwco->no", padded[:, i : i + 3, j : j + 3], w)
    return out.astype(np.float32)


# A protobuf encoder just big enough for these GraphDefs (graph.proto, node_def.proto,
# attr_value.proto, tensor.proto field numbers), read back by ember's own decoder.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _attr_type(code: int) -> bytes:
    return _varint(6 << 3) + _varint(code)


def _attr_f(value: float) -> bytes:
    return _varint(4 << 3 | 5) + struct.pack("<f", value)


def _attr_s(text: str) -> bytes:
    return _field(2, text.encode())


def _attr_ints(values: list[int]) -> bytes:
    return _field(1, _field(3, b"".join(_varint(v) for v in values)))


def _attr_shape(dims: list[int]) -> bytes:
    return _field(7, b"".join(_field(2, _varint(1 << 3) + _varint(d)) for d in dims))


def _node(name: str, op: str, inputs: Any = (), attrs: dict[str, bytes] | None = None) -> bytes:
    body = _field(1, name.encode()) + _field(2, op.encode())
    body += b"".join(_field(3, i.encode()) for i in inputs)
    for key, value in (attrs or {}).items():
        body += _field(5, _field(1, key.encode()) + _field(2, value))
    return body


def _placeholder(name: str, shape: list[int]) -> bytes:
    return _node(name, "Placeholder", attrs={"dtype": _attr_type(1), "shape": _attr_shape(shape)})


def _const(name: str, array: np.ndarray) -> bytes:
    shape = b"".join(_field(2, _varint(1 << 3) + _varint(d)) for d in array.shape)
    tensor = _varint(1 << 3) + _varint(1) + _field(2, shape) + _field(4, array.tobytes())
    return _node(name, "Const", attrs={"dtype": _attr_type(1), "value": _field(8, tensor)})


def _graph_def(*nodes: bytes) -> bytes:
    return b"".join(_field(1, n) for n in nodes)
