"""Small models that use the custom ops of example_ops.py, for the tests of ember.custom.

:func:`onnx_model` builds one ONNX graph two ways: with the ``com.example`` ops
(``custom=True``, what ember imports) or with each custom op spelled in standard ONNX
ops (``custom=False``), which onnxruntime runs: a second oracle for the same math.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
CUSTOM_DOMAIN = "com.example"
ALPHA = 1.5
SCALE = 0.5
EPS = 1e-5


def _standard(op: str, inputs: list[str], outputs: list[str], **attrs: float) -> list:
    """The custom op ``op`` written with standard ONNX ops (what onnxruntime can run)."""
    x, out = inputs[0], outputs[0]
    if op == "FancyGelu":  # x * sigmoid(alpha * x)
        alpha = helper.make_tensor(f"{out}_alpha", TensorProto.FLOAT, [], [attrs["alpha"]])
        return [
            helper.make_node("Constant", [], [f"{out}_a"], value=alpha),
            helper.make_node("Mul", [x, f"{out}_a"], [f"{out}_ax"]),
            helper.make_node("Sigmoid", [f"{out}_ax"], [f"{out}_s"]),
            helper.make_node("Mul", [x, f"{out}_s"], [out]),
        ]
    if op == "ScaledDense":  # scale * x @ w.T
        return [helper.make_node("Gemm", inputs, outputs, alpha=attrs["scale"], transB=1)]
    if op == "RmsNorm":  # x / sqrt(mean(x * x, -1) + eps)
        eps = helper.make_tensor(f"{out}_eps", TensorProto.FLOAT, [], [attrs["eps"]])
        return [
            helper.make_node("Constant", [], [f"{out}_e"], value=eps),
            helper.make_node("Mul", [x, x], [f"{out}_sq"]),
            helper.make_node("ReduceMean", [f"{out}_sq"], [f"{out}_m"], axes=[-1]),
            helper.make_node("Add", [f"{out}_m", f"{out}_e"], [f"{out}_me"]),
            helper.make_node("Sqrt", [f"{out}_me"], [f"{out}_r"]),
            helper.make_node("Div", [x, f"{out}_r"], [out]),
        ]
    if op == "SignSplit":  # (max(x, 0), min(x, 0)) = (relu(x), -relu(-x))
        positive, negative = outputs
        return [
            helper.make_node("Relu", [x], [positive]),
            helper.make_node("Neg", [x], [f"{negative}_n"]),
            helper.make_node("Relu", [f"{negative}_n"], [f"{negative}_r"]),
            helper.make_node("Neg", [f"{negative}_r"], [negative]),
        ]
    raise ValueError(op)


def _node(op: str, inputs: list[str], outputs: list[str], custom: bool, **attrs: float) -> list:
    if custom:
        return [helper.make_node(op, inputs, outputs, domain=CUSTOM_DOMAIN, **attrs)]
    return _standard(op, inputs, outputs, **attrs)


def onnx_model(custom: bool = True, width: int = 8, seed: int = 0) -> onnx.ModelProto:
    """conv -> FancyGelu (the conv's epilogue) -> RmsNorm (its own schedule when ``width``
    is a multiple of 8) -> flatten -> ScaledDense (a tunable anchor) -> FancyGelu (its
    epilogue) -> SignSplit (two outputs); input ``x`` of shape (1, 4, width, width)."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
    dense = (rng.standard_normal((10, 8 * width * width)) * 0.05).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1])]
    nodes += _node("FancyGelu", ["conv"], ["gelu"], custom, alpha=ALPHA)
    nodes += _node("RmsNorm", ["gelu"], ["norm"], custom, eps=EPS)
    nodes += [helper.make_node("Flatten", ["norm"], ["flat"])]
    nodes += _node("ScaledDense", ["flat", "dense_w"], ["dense"], custom, scale=SCALE)
    nodes += _node("FancyGelu", ["dense"], ["act"], custom, alpha=1.0)
    nodes += _node("SignSplit", ["act"], ["positive", "negative"], custom)
    graph = helper.make_graph(
        nodes,
        "custom_ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, width, width])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 10])
            for name in ("positive", "negative")
        ],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(dense, "dense_w")],
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if custom:
        opsets.append(helper.make_opsetid(CUSTOM_DOMAIN, 1))
    return helper.make_model(graph, opset_imports=opsets)


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)
