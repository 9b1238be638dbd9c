"""ONNX frontend: every error a user can hit, with its message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from ember.errors import FrontendError, UnsupportedOpError
from ember.frontend import from_onnx
from ember.frontend.onnx import NotStaticError, UnsupportedFeatureError
from tests.frontend.onnx_testlib import make_model, random_array


def _relu_model(shape=("N", 3, 8, 8)) -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Relu", ["data"], ["y"])], {"data": (shape, "float32")}, ["y"]
    )


def test_missing_input_shape_names_input_and_dim() -> None:
    with pytest.raises(
        FrontendError,
        match=r"(?s)input 'data' has a dynamic dimension 0 \('N'\)"
        r".*shape=\{'data': \(1, 3, 8, 8\)\}",
    ):
        from_onnx(_relu_model())


def test_unnamed_dynamic_dim() -> None:
    model = _relu_model((1, 3, 8, 8))
    model.graph.input[0].type.tensor_type.shape.dim[2].Clear()  # neither a value nor a name
    with pytest.raises(
        FrontendError, match=r"dynamic dimension 2 \(declared shape \[1, 3, \?, 8\]\)"
    ):
        from_onnx(model)


def test_output_without_shape_fails_the_onnx_checker() -> None:
    model = _relu_model((1, 3, 8, 8))
    model.graph.output[0].type.tensor_type.ClearField("shape")
    with pytest.raises(FrontendError, match="is not a valid ONNX model: Field 'shape'"):
        from_onnx(model)


def test_wrong_rank_in_shape() -> None:
    with pytest.raises(FrontendError, match=r"input 'data' has rank 4 .* \[1, 3, 8\], has rank 3"):
        from_onnx(_relu_model(), shape={"data": (1, 3, 8)})


def test_shape_for_unknown_input_lists_real_inputs() -> None:
    with pytest.raises(FrontendError, match=r"shape given for 'input0'.*its inputs are: 'data'"):
        from_onnx(_relu_model(), shape={"input0": (1, 3, 8, 8)})


def test_bad_shape_values() -> None:
    with pytest.raises(FrontendError, match="not a sequence of ints"):
        from_onnx(_relu_model(), shape={"data": "1x3x8x8"})
    with pytest.raises(FrontendError, match="negative dim"):
        from_onnx(_relu_model(), shape={"data": (-1, 3, 8, 8)})


def test_conflicting_dtype() -> None:
    with pytest.raises(
        FrontendError, match="input 'data' is declared float32 in the model, but dtype 'int32'"
    ):
        from_onnx(_relu_model((1, 3, 8, 8)), dtype={"data": "int32"})


def test_all_unsupported_ops_listed_at_once() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("NonZero", ["a"], ["nz"], name="nz_1"),
        helper.make_node("Unique", ["a"], ["v"], name="uniq"),
        helper.make_node("NonZero", ["a"], ["nz2"], name="nz_2"),
        helper.make_node("Relu", ["x"], ["y"]),
    ]
    model = make_model(
        nodes,
        {"x": ((4,), "float32")},
        ["y", "nz", "v", "nz2"],
        opset=17,
    )
    with pytest.raises(UnsupportedOpError, match=r"2 unsupported op\(s\) at opset 17") as info:
        from_onnx(model)
    message = str(info.value)
    assert "NonZero: 2 node(s): 'nz_1', 'nz_2'" in message
    assert "Unique: 1 node(s): 'uniq'" in message
    assert info.value.unsupported == [("NonZero", "nz_1"), ("Unique", "uniq"), ("NonZero", "nz_2")]


def test_unsupported_ops_inside_subgraphs_and_other_domains() -> None:
    then_graph = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["t"], name="unique_inner")],
        "then",
        [],
        [helper.make_tensor_value_info("t", onnx.TensorProto.FLOAT, [4])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, [4])],
    )
    nodes = [
        helper.make_node(
            "If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph, name="if"
        ),
        helper.make_node("FusedConv", ["x"], ["z"], domain="com.microsoft", name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    # If itself is supported (ember.frontend.onnx.ops_control); the op in its branch is not
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_onnx(model)
    assert {op for op, _ in info.value.unsupported} == {"Unique", "com.microsoft.FusedConv"}
    assert ("Unique", "unique_inner") in info.value.unsupported


def test_too_old_op_version_is_reported() -> None:
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"], broadcast=1)],
        {"a": ((2,), "float32"), "b": ((2,), "float32")},
        ["y"],
        opset=6,
    )
    with pytest.raises(UnsupportedOpError, match=r"Add-6 \(ember supports version 7\+\)"):
        from_onnx(model)


def test_unhonourable_attributes_name_node_and_attribute() -> None:
    rng = np.random.default_rng()
    conv3d = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c3")],
        {"x": ((1, 2, 4, 4, 4), "float32")},
        ["y"],
        {"w": random_array(rng, (3, 2, 2, 2, 2))},
    )
    with pytest.raises(UnsupportedFeatureError, match="Conv node 'c3' .*3-D Conv"):
        from_onnx(conv3d)
    pool = make_model(
        [
            helper.make_node(
                "MaxPool", ["x"], ["y"], kernel_shape=[2, 2], storage_order=1, name="mp"
            )
        ],
        {"x": ((1, 2, 4, 4), "float32")},
        ["y"],
    )
    with pytest.raises(FrontendError, match="MaxPool node 'mp' .*storage_order=1"):
        from_onnx(pool)


def test_shape_input_computed_from_model_input_is_not_static() -> None:
    model = make_model(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
        {"x": ((2, 6), "float32"), "s": ((2,), "int64")},
        ["y"],
    )
    with pytest.raises(
        NotStaticError,
        match=r"Reshape node 'r': shape \('s'\) must be known at import time.*model input\(s\) 's'",
    ) as info:
        from_onnx(model)
    assert info.value.input_names == ("s",)


def test_unsupported_input_dtype() -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT8E4M3FN, [2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT8E4M3FN, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(
        UnsupportedFeatureError, match="graph input 'x' has ONNX element type FLOAT8E4M3FN"
    ):
        from_onnx(model)


# ----------------------------------------------------------------------------- files


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage" * 10)
    with pytest.raises(FrontendError, match=r"bad.onnx' is not a valid ONNX model: "):
        from_onnx(path)


def test_truncated_file(tmp_path: Path) -> None:
    rng = np.random.default_rng()
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"x": ((2, 64), "float32")},
        ["y"],
        {"w": random_array(rng, (64, 64))},
    )
    data = model.SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrontendError, match=r"truncated.onnx' is not a valid ONNX model"):
        from_onnx(str(path))


def test_non_onnx_bytes() -> None:
    with pytest.raises(FrontendError, match="the given model bytes is not a valid ONNX model"):
        from_onnx(b"PK\x03\x04 this is a zip file, not a model")


def test_text_file_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("just some text\n")
    with pytest.raises(FrontendError, match="is not a valid ONNX model"):
        from_onnx(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="does not exist"):
        from_onnx(tmp_path / "nope.onnx")
    with pytest.raises(FrontendError, match="is a folder, not an ONNX file"):
        from_onnx(tmp_path)


def test_missing_external_data(tmp_path: Path) -> None:
    rng = np.random.default_rng()
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        {"x": ((2, 8), "float32")},
        ["y"],
        {"w": random_array(rng, (8, 8))},
    )
    path = tmp_path / "m.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, location="m.data", size_threshold=0
    )
    (tmp_path / "m.data").unlink()
    with pytest.raises(FrontendError, match="m.onnx'.*external data file .* could not be read"):
        from_onnx(path)


def test_wrong_argument_type() -> None:
    with pytest.raises(FrontendError, match="expects a ModelProto, a path or bytes, got int"):
        from_onnx(42)
