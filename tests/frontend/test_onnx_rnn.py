"""ONNX LSTM / GRU / RNN, unrolled over the static sequence: checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.frontend.onnx_testlib import make_model, random_array
from tests.frontend.test_onnx import check_against_onnx_reference, check_against_onnxruntime

SEQ, BATCH, INPUT, HIDDEN = 4, 2, 3, 5


def _rnn_model(op_type: str, gates: int, direction: str, layout: int, extra_inputs: bool, **attrs):
    rng = np.random.default_rng()
    dirs = 2 if direction == "bidirectional" else 1
    inits = {
        "W": random_array(rng, (dirs, gates * HIDDEN, INPUT)) * 0.5,
        "R": random_array(rng, (dirs, gates * HIDDEN, HIDDEN)) * 0.5,
        "B": random_array(rng, (dirs, 2 * gates * HIDDEN)) * 0.5,
    }
    inputs = ["X", "W", "R", "B"]
    outputs = ["Y", "Y_h"] + (["Y_c"] if op_type == "LSTM" else [])
    state_shape = (BATCH, dirs, HIDDEN) if layout else (dirs, BATCH, HIDDEN)
    if extra_inputs:
        inits["lens"] = np.full(BATCH, SEQ, dtype="int32")
        inits["h0"] = random_array(rng, state_shape)
        inputs += ["lens", "h0"]
        if op_type == "LSTM":
            inits["c0"] = random_array(rng, state_shape)
            inits["P"] = random_array(rng, (dirs, 3 * HIDDEN))
            inputs += ["c0", "P"]
    x_shape = (BATCH, SEQ, INPUT) if layout else (SEQ, BATCH, INPUT)
    node = helper.make_node(
        op_type, inputs, outputs, hidden_size=HIDDEN, direction=direction, layout=layout, **attrs
    )
    return make_model([node], {"X": (x_shape, "float32")}, outputs, inits, opset=14)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("extra_inputs", [False, True])
def test_lstm(direction: str, extra_inputs: bool) -> None:
    check_against_onnxruntime(_rnn_model("LSTM", 4, direction, 0, extra_inputs), atol=1e-5)


@pytest.mark.parametrize("op_type", ["LSTM", "GRU"])
def test_batch_major_layout(op_type: str) -> None:
    # onnxruntime does not implement layout=1; the onnx reference evaluator does.
    model = _rnn_model(op_type, 4 if op_type == "LSTM" else 3, "bidirectional", 1, True)
    check_against_onnx_reference(model)


def test_lstm_clip_and_input_forget() -> None:
    model = _rnn_model("LSTM", 4, "forward", 0, True, clip=0.7, input_forget=1)
    check_against_onnxruntime(model, atol=1e-5)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru(direction: str, linear_before_reset: int) -> None:
    model = _rnn_model("GRU", 3, direction, 0, True, linear_before_reset=linear_before_reset)
    check_against_onnxruntime(model, atol=1e-5)


@pytest.mark.parametrize(
    "activations", [["Tanh"], ["Relu"], ["LeakyRelu", "Sigmoid"]], ids=["tanh", "relu", "mixed"]
)
def test_rnn(activations: list[str]) -> None:
    direction = "bidirectional" if len(activations) == 2 else "reverse"
    model = _rnn_model("RNN", 1, direction, 0, True, activations=activations)
    check_against_onnxruntime(model, atol=1e-5)


def test_variable_sequence_lengths_are_reported() -> None:
    from ember.frontend import from_onnx
    from ember.frontend.onnx import UnsupportedFeatureError

    model = _rnn_model("RNN", 1, "forward", 0, True)
    model.graph.initializer[3].CopyFrom(
        helper.make_tensor("lens", 6, [BATCH], [SEQ, SEQ - 1])  # 6: INT32
    )
    with pytest.raises(UnsupportedFeatureError, match=r"sequence_lens \[4, 3\] shorter"):
        from_onnx(model)
