"""TensorFlow inputs and outputs named by node (``x``) or by tensor (``x:0``, ``split:1``).

tf2onnx, TensorFlow's own tools and many scripts name graph inputs as tensors
(``input:0``); ember accepts both forms in ``shape=`` and ``outputs=``, for frozen
GraphDefs and SavedModels (whose placeholders' own names, ``serving_default_x:0``,
work beside the signature keys). The fixtures were written by TensorFlow
(tests/data/make_tf_fixtures.py); outputs are compared with Keras's.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.errors import FrontendError
from ember.frontend import from_tensorflow
from ember.frontend.input_spec import parse_input_spec
from ember.graph.interpreter import interpret
from tests.frontend.test_tensorflow import DATA

TF = DATA / "tensorflow"


def keras_check(mod, params, input_name: str, fixture: str) -> None:
    data = np.load(TF / f"{fixture}.npz")
    (out,) = interpret(mod, params, {input_name: data["input"]})
    ref = data["output"]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("input_name", ["x", "x:0"])
@pytest.mark.parametrize("output", [None, "Identity", "Identity:0"])
def test_frozen_graph_names(input_name: str, output: str | None) -> None:
    outputs = None if output is None else [output]
    mod, params = from_tensorflow(
        TF / "resnet.pb", shape={input_name: (1, 32, 32, 3)}, outputs=outputs
    )
    assert mod.main.params[0].name == "x"  # the input keeps its node name
    keras_check(mod, params, "x", "resnet")


def test_a_nodes_second_output_by_tensor_name() -> None:
    """``split:1`` is the Split node's second output; ``split`` and ``split:0`` its first."""
    split, source = "tensor_ops_1/split", "tensor_ops_1/transpose"
    refs = [source, split, f"{split}:0", f"{split}:1"]
    mod, params = from_tensorflow(TF / "tensor_ops.pb", outputs=refs)
    x = np.random.default_rng().uniform(-1, 1, mod.main.params[0].type.shape).astype("float32")
    whole, first, first_again, second = interpret(mod, params, {"x": x})
    np.testing.assert_array_equal(first, first_again)
    half = whole.shape[-1] // 2  # Split along the last axis, in two
    np.testing.assert_array_equal(first, whole[..., :half])
    np.testing.assert_array_equal(second, whole[..., half:])


def test_unknown_input_lists_both_forms() -> None:
    with pytest.raises(
        FrontendError, match="'input:0', which the TensorFlow model has no input"
    ) as info:
        from_tensorflow(TF / "vgg.pb", shape={"input:0": (1, 32, 32, 3)})
    assert "the model's inputs are: 'x' (tensor 'x:0')" in str(info.value)
    with pytest.raises(FrontendError, match="'x:1', which"):
        from_tensorflow(TF / "vgg.pb", shape={"x:1": (1, 32, 32, 3)})  # a Placeholder has one
    with pytest.raises(FrontendError, match="gives TensorFlow input 'x' twice"):
        from_tensorflow(TF / "vgg.pb", shape={"x": (1, 32, 32, 3), "x:0": (1, 32, 32, 3)})


def test_unknown_output_lists_both_forms() -> None:
    with pytest.raises(FrontendError, match="output 'logits:0' is not a node") as info:
        from_tensorflow(TF / "vgg.pb", outputs=["logits:0"])
    assert "'Identity' or 'Identity:0'" in str(info.value)
    assert "'node:1' is a node's second output" in str(info.value)


@pytest.mark.parametrize("name", ["x", "x:0", "serving_default_x", "serving_default_x:0"])
def test_saved_model_input_names(name: str) -> None:
    mod, params = from_tensorflow(TF / "saved_model_resnet", shape={name: (1, 32, 32, 3)})
    assert mod.main.params[0].name == "x"  # named by the signature key
    keras_check(mod, params, "x", "resnet")


@pytest.mark.parametrize("output", ["output_0", "StatefulPartitionedCall_1:0"])
def test_saved_model_output_names(output: str) -> None:
    mod, params = from_tensorflow(TF / "saved_model_resnet", outputs=[output])
    keras_check(mod, params, "x", "resnet")


def test_saved_model_unknown_names() -> None:
    with pytest.raises(FrontendError, match="'input:0', which(.|\n)*'x' \\(tensor 'x:0'\\)"):
        from_tensorflow(TF / "saved_model_resnet", shape={"input:0": (1, 32, 32, 3)})
    with pytest.raises(
        FrontendError, match="output 'logits' is not a node(.|\n)*output keys: 'output_0'"
    ):
        from_tensorflow(TF / "saved_model_resnet", outputs=["logits"])


def test_tensor_names_in_the_colon_input_spec() -> None:
    """``ember compile model.pb --input x:0:1x32x32x3`` and ``ember.frontend.load``."""
    assert parse_input_spec("x:0:2x32x32x3") == {"x:0": ((2, 32, 32, 3), None)}
    assert parse_input_spec("x:0:2x32x32x3:float32")["x:0"].dtype == "float32"
    assert parse_input_spec("ids:4:int64") == {"ids": ((4,), "int64")}  # shape (4,), a dtype
    mod, params = ember.frontend.load(TF / "resnet.pb", shape="x:0:2x32x32x3")
    assert mod.main.params[0].type.shape == (2, 32, 32, 3)
    data = np.load(TF / "resnet.npz")
    batch = np.concatenate([data["input"], data["input"]])
    (out,) = interpret(mod, params, {"x": batch})
    np.testing.assert_allclose(out[1:], data["output"], rtol=1e-4, atol=1e-4)
