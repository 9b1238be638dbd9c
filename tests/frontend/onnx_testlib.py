"""Builders of small ONNX models for the frontend tests, and an onnxruntime oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NP_TO_ONNX = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, tuple[Sequence[Any] | None, str]],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
    initializers_as_inputs: bool = False,
) -> onnx.ModelProto:
    """A checked model; output types come from ONNX shape inference.

    ``inputs`` maps names to (shape, dtype); a shape may hold strings (dynamic dims).
    """
    initializers = dict(initializers or {})
    graph_inputs = [
        helper.make_tensor_value_info(n, NP_TO_ONNX[dtype], shape)
        for n, (shape, dtype) in inputs.items()
    ]
    if initializers_as_inputs:  # what MXNet's and old exporters write
        graph_inputs += [
            helper.make_tensor_value_info(n, NP_TO_ONNX[str(v.dtype)], v.shape)
            for n, v in initializers.items()
        ]
    graph = helper.make_graph(
        list(nodes),
        "test",
        graph_inputs,
        [onnx.ValueInfoProto(name=o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)  # onnxruntime may lag the onnx package
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {vi.name: vi for vi in (*inferred.graph.value_info, *inferred.graph.output)}
    for out in model.graph.output:
        if out.name in known and known[out.name].type.HasField("tensor_type"):
            out.type.CopyFrom(known[out.name].type)
        if not out.type.tensor_type.elem_type:  # inference gave up: the tests' outputs are float
            out.type.tensor_type.elem_type = TensorProto.FLOAT
        if not out.type.tensor_type.HasField("shape"):
            out.type.tensor_type.shape.SetInParent()
    onnx.checker.check_model(model)
    return model


def run_onnxruntime(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, dict(feeds))


def random_array(
    rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32"
) -> np.ndarray:
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)
