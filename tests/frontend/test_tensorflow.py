"""TensorFlow frontend: committed frozen GraphDefs (tests/data/make_tf_fixtures.py) and
hand-written GraphDefs (a tiny protobuf encoder below) vs ember's interpreter.

No TensorFlow needed: fixture outputs were computed by Keras when they were made.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ember.errors import EmberError, FrontendError, UnsupportedOpError
from ember.frontend import from_tensorflow, from_tflite
from ember.frontend.tensorflow import supported_ops
from ember.graph.interpreter import interpret
from ember.graph.ir import Call

DATA = Path(__file__).resolve().parents[1] / "data"
MODELS = ["resnet", "mobilenet", "vgg", "squeezenet", "densenet", "inception", "conv_ops"]
MODELS += ["tensor_ops", "matmul_ops"]


def ops_of(mod) -> list[str]:
    seen, stack, names = set(), [mod.main.body], []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Call):
            names.append(node.op.name)
            stack.extend(node.args)
    return names


@pytest.mark.parametrize("name", MODELS)
def test_frozen_graph_matches_keras(name):
    mod, params = from_tensorflow(DATA / "tensorflow" / f"{name}.pb")
    data = np.load(DATA / "tensorflow" / f"{name}.npz")
    (out,) = interpret(mod, params, {"x": data["input"]})
    ref = data["output"]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("name", ["resnet", "inception", "conv_ops"])
def test_graphdef_and_tflite_agree_on_fresh_inputs(name):
    """The .pb and the .tflite of one Keras model are two import paths of the same function."""
    tf_mod, tf_params = from_tensorflow(DATA / "tensorflow" / f"{name}.pb")
    lite_mod, lite_params = from_tflite(DATA / "tflite" / f"{name}.tflite")
    shape = tf_mod.main.params[0].type.shape
    x = np.random.default_rng().uniform(-1, 1, shape).astype(np.float32)
    (a,) = interpret(tf_mod, tf_params, {"x": x})
    (b,) = interpret(lite_mod, lite_params, {lite_mod.main.params[0].name: x})
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_function_calls_are_inlined():
    # Keras 3 runs grouped convs through an XLA-compiled function: a StatefulPartitionedCall
    mod, _ = from_tensorflow(DATA / "tensorflow" / "conv_ops.pb")
    assert "nn.conv2d_transpose" in ops_of(mod)


def test_layout_and_folding():
    mod, params = from_tensorflow(DATA / "tensorflow" / "vgg.pb")
    ops = ops_of(mod)
    assert ops.count("transpose") == 2  # after the input, before the NHWC flatten
    assert "nn.dense" in ops and ops.count("reshape") == 1  # Shape/StridedSlice/Pack folded
    assert mod.main.params[0].type.shape == (1, 32, 32, 3)
    assert all(p.name in params for p in mod.main.params[1:])


def test_outputs_and_batch():
    path = DATA / "tensorflow" / "resnet.pb"
    mod, params = from_tensorflow(path, shape={"x": (2, 32, 32, 3)}, outputs=["Identity:0"])
    x = np.random.default_rng().uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    (out,) = interpret(mod, params, {"x": x})
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)  # softmax rows
    mod1, params1 = from_tensorflow(path)
    (first,) = interpret(mod1, params1, {"x": x[1:]})
    np.testing.assert_allclose(out[1:], first, rtol=1e-5, atol=1e-6)


def test_intermediate_output():
    path = DATA / "tensorflow" / "squeezenet.pb"
    relu = next(n for n in _node_names(path) if n.endswith("Relu"))
    mod, params = from_tensorflow(path, outputs=[relu])
    assert len(mod.main.body.type.shape) == 4  # an NHWC activation
    assert mod.main.body.type.shape[-1] == 16


def _node_names(path: Path) -> list[str]:
    from ember.frontend.tensorflow.proto import read_graph_def

    nodes, _ = read_graph_def(path.read_bytes())
    return [n.name for n in nodes]


# ----------------------------------------------------------------------------- error paths


def test_dynamic_spatial_dims_need_shape():
    path = DATA / "tensorflow" / "dynamic.pb"
    with pytest.raises(FrontendError, match=r"input 'x' has unknown dimensions.*\n.*shape="):
        from_tensorflow(path)
    mod, params = from_tensorflow(path, shape={"x": (1, 9, 5, 3)})
    x = np.random.default_rng().standard_normal((1, 9, 5, 3)).astype(np.float32)
    (out,) = interpret(mod, params, {"x": x})
    assert out.shape == (1, 9, 5, 2)


def test_shape_errors():
    path = DATA / "tensorflow" / "vgg.pb"
    with pytest.raises(FrontendError, match="no input called"):
        from_tensorflow(path, shape={"input": (1, 32, 32, 3)})
    with pytest.raises(FrontendError, match="does not fit"):
        from_tensorflow(path, shape={"x": (1, 32, 32)})
    with pytest.raises(FrontendError, match="output 'nope' is not a node"):
        from_tensorflow(path, outputs=["nope"])


def test_unsupported_ops_listed_at_once():
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_tensorflow(DATA / "tensorflow" / "unsupported.pb")
    assert info.value.unsupported == [
        ("Cumsum", "Cumsum"),
        ("TopKV2", "TopKV2"),
        ("Cumsum", "Cumsum_1"),
    ]


@pytest.mark.parametrize("name", ["resnet", "conv_ops"])
def test_saved_model_matches_keras(name):
    mod, params = from_tensorflow(DATA / "tensorflow" / f"saved_model_{name}")
    assert mod.main.params[0].name == "x"  # the signature's input key
    data = np.load(DATA / "tensorflow" / f"{name}.npz")
    (out,) = interpret(mod, params, {"x": data["input"]})
    ref = data["output"]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_saved_model_errors(tmp_path):
    source = DATA / "tensorflow" / "saved_model_resnet"
    with pytest.raises(FrontendError, match="no signature 'predict'(.|\n)*serving_default"):
        from_tensorflow(source, signature="predict")
    (tmp_path / "saved_model.pb").write_bytes((source / "saved_model.pb").read_bytes())
    with pytest.raises(FrontendError, match="cannot read checkpoint index"):
        from_tensorflow(tmp_path)  # no variables/ next to it
    (tmp_path / "variables").mkdir()
    (tmp_path / "variables" / "variables.index").write_bytes(b"\x00" * 100)
    with pytest.raises(FrontendError, match="not an SSTable"):
        from_tensorflow(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FrontendError, match="directory without saved_model.pb"):
        from_tensorflow(empty)


def test_graph_with_variables_is_refused_with_freeze_hint():
    graph = graph_def(
        node("x", "Placeholder", attrs={"dtype": attr_type(1), "shape": attr_shape([1, 4])}),
        node("w", "VarHandleOp", attrs={"dtype": attr_type(1)}),
        node("w/read", "ReadVariableOp", ["w"]),
        node("y", "MatMul", ["x", "w/read"]),
    )
    with pytest.raises(FrontendError, match="not frozen(.|\n)*convert_variables_to_constants"):
        from_tensorflow(graph)


def test_corrupt_and_wrong_files(tmp_path):
    good = (DATA / "tensorflow" / "resnet.pb").read_bytes()
    with pytest.raises(FrontendError, match="not a TensorFlow GraphDef"):
        from_tensorflow(good[: len(good) // 2])
    with pytest.raises(FrontendError, match="not a TensorFlow GraphDef"):
        from_tensorflow(b"\xff\xff\xff\xff")
    with pytest.raises(FrontendError, match="text-format"):
        from_tensorflow(b'node {\n  name: "x"\n  op: "Placeholder"\n}\n')
    with pytest.raises(FrontendError, match="cannot read TensorFlow model"):
        from_tensorflow(tmp_path / "missing.pb")


def test_random_corruption_raises_only_ember_errors():
    rng = np.random.default_rng(7)
    for path, load in (
        (DATA / "tensorflow" / "densenet.pb", from_tensorflow),
        (DATA / "tflite" / "densenet_int8.tflite", from_tflite),
    ):
        good = path.read_bytes()
        for _ in range(40):
            data = bytearray(good)
            for pos in rng.integers(0, len(data), 3):
                data[pos] = rng.integers(0, 256)
            try:
                load(bytes(data))
            except EmberError:
                pass  # a clear error; success is fine too (a flipped weight byte)


def test_supported_ops():
    assert {
        "Conv2D",
        "DepthwiseConv2dNative",
        "FusedBatchNormV3",
        "StatefulPartitionedCall",
    } <= set(supported_ops())


# ----------------------------------------------------------------------------- hand-built graphs
# A protobuf encoder just big enough to write GraphDefs (field numbers of graph.proto,
# node_def.proto, attr_value.proto, tensor.proto, tensor_shape.proto).


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def attr_type(code: int) -> bytes:
    return _int_field(6, code)


def attr_shape(dims: list[int]) -> bytes:
    return _field(7, b"".join(_field(2, _int_field(1, d)) for d in dims))


def attr_s(text: str) -> bytes:
    return _field(2, text.encode())


def attr_ints(values: list[int]) -> bytes:
    return _field(1, _field(3, b"".join(_varint(v) for v in values)))


def attr_tensor(array: np.ndarray) -> bytes:
    code = {"float32": 1, "int32": 3}[str(array.dtype)]
    shape = b"".join(_field(2, _int_field(1, d)) for d in array.shape)
    return _field(8, _int_field(1, code) + _field(2, shape) + _field(4, array.tobytes()))


def node(
    name: str, op: str, inputs: list[str] = (), attrs: dict[str, bytes] | None = None
) -> bytes:
    body = _field(1, name.encode()) + _field(2, op.encode())
    body += b"".join(_field(3, i.encode()) for i in inputs)
    for key, value in (attrs or {}).items():
        body += _field(5, _field(1, key.encode()) + _field(2, value))
    return body


def graph_def(*nodes: bytes) -> bytes:
    return b"".join(_field(1, n) for n in nodes)


def const(name: str, array: np.ndarray) -> bytes:
    code = {"float32": 1, "int32": 3}[str(array.dtype)]
    return node(name, "Const", attrs={"dtype": attr_type(code), "value": attr_tensor(array)})


def conv_nhwc(x: np.ndarray, w: np.ndarray, pads, strides) -> np.ndarray:
    """Direct NHWC convolution (numpy oracle for the hand-built graphs)."""
    (top, bottom), (left, right) = pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, out_c = w.shape
    oh = (x.shape[1] - kh) // strides[0] + 1
    ow = (x.shape[2] - kw) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, out_c), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * strides[0] : i * strides[0] + kh, j * strides[1] : j * strides[1] + kw]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out.astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "padding"), [("NHWC", "SAME"), ("NHWC", "EXPLICIT"), ("NCHW", "VALID")]
)
def test_hand_built_conv_graph(fmt, padding):
    rng = np.random.default_rng()
    w = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    explicit = [0, 0, 1, 2, 0, 1, 0, 0] if fmt == "NHWC" else [0, 0, 0, 0, 1, 2, 0, 1]
    strides = [1, 2, 2, 1] if fmt == "NHWC" else [1, 1, 2, 2]
    shape = [1, 9, 8, 4] if fmt == "NHWC" else [1, 4, 9, 8]
    conv_attrs = {
        "strides": attr_ints(strides),
        "padding": attr_s(padding),
        "data_format": attr_s(fmt),
        "explicit_paddings": attr_ints(explicit if padding == "EXPLICIT" else []),
    }
    graph = graph_def(
        node("x", "Placeholder", attrs={"dtype": attr_type(1), "shape": attr_shape(shape)}),
        const("w", w),
        const("b", bias),
        node("conv", "Conv2D", ["x", "w"], conv_attrs),
        node("bias", "BiasAdd", ["conv", "b", "^x"], {"data_format": attr_s(fmt)}),
        node("out", "Relu6", ["bias"]),
    )
    mod, params = from_tensorflow(graph)
    x = rng.standard_normal(shape).astype(np.float32)
    (out,) = interpret(mod, params, {"x": x})
    x_nhwc = x if fmt == "NHWC" else x.transpose(0, 2, 3, 1)
    pads = {"SAME": ((1, 1), (0, 1)), "EXPLICIT": ((1, 2), (0, 1)), "VALID": ((0, 0), (0, 0))}
    ref = np.clip(conv_nhwc(x_nhwc, w, pads[padding], (2, 2)) + bias, 0, 6)
    if fmt == "NCHW":
        ref = ref.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_hand_built_float_list_constant_and_fused_batch_norm():
    rng = np.random.default_rng()
    stats = [rng.uniform(0.5, 1.5, 3).astype(np.float32) for _ in range(4)]
    nodes = [
        node("x", "Placeholder", attrs={"dtype": attr_type(1), "shape": attr_shape([1, 2, 2, 3])})
    ]
    for name, value in zip(("scale", "offset", "mean", "var"), stats):
        nodes.append(const(name, value))
    # a float_val list constant (field 5) holding one value, broadcast by TF's fill rule
    shape = _field(2, _field(2, _int_field(1, 3)))
    half = _field(8, _int_field(1, 1) + shape + _field(5, struct.pack("<f", 0.5)))
    nodes.append(node("half", "Const", attrs={"dtype": attr_type(1), "value": half}))
    bn_attrs = {"epsilon": _varint(4 << 3 | 5) + struct.pack("<f", 1e-3)}  # AttrValue.f
    nodes.append(node("bn", "FusedBatchNormV3", ["x", "scale", "offset", "mean", "var"], bn_attrs))
    nodes.append(node("out", "Mul", ["bn", "half"]))
    mod, params = from_tensorflow(graph_def(*nodes), outputs=["out"])
    x = rng.standard_normal((1, 2, 2, 3)).astype(np.float32)
    (out,) = interpret(mod, params, {"x": x})
    scale, offset, mean, var = stats
    ref = ((x - mean) / np.sqrt(var + 1e-3) * scale + offset) * 0.5
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_shape_error_names_the_node():
    graph = graph_def(
        node("x", "Placeholder", attrs={"dtype": attr_type(1), "shape": attr_shape([1, 6])}),
        const("shape", np.array([4, 2], np.int32)),
        node("r", "Reshape", ["x", "shape"]),
    )
    with pytest.raises(FrontendError, match="TensorFlow Reshape node 'r'"):
        from_tensorflow(graph)
