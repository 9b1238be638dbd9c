"""Shared helpers of the op tests: run one op, run one ONNX node in onnxruntime, compare.

out = run_op("nn.conv2d", [x, w], strides=2)          # reference, checked against its type rule
want = run_onnx("Conv", [x, w], strides=[2, 2])[0]     # second oracle
assert_close(out, want)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from ember.graph.ir import TensorType, Var
from ember.ops import get_op

# Tolerances per dtype for comparing the reference with a second oracle.
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {"rtol": 1e-10, "atol": 1e-10},
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float16": {"rtol": 2e-3, "atol": 2e-3},
}
EXACT = {"rtol": 0.0, "atol": 0.0}


def rng() -> np.random.Generator:
    """A fresh generator per call: every run draws new inputs."""
    return np.random.default_rng()


def randn(shape: tuple[int, ...], dtype: str = "float32", scale: float = 1.0) -> np.ndarray:
    return np.asarray(rng().standard_normal(shape) * scale).astype(dtype)


def randint(shape: tuple[int, ...], dtype: str, low: int = -10, high: int = 10) -> np.ndarray:
    return np.asarray(rng().integers(low, high, size=shape)).astype(dtype)


def run_op(name: str, inputs: list[np.ndarray], **attrs: Any) -> Any:
    """Evaluate op ``name``'s reference after checking its type rule agrees with the result."""
    op = get_op(name)
    op_attrs = op.make_attrs(attrs)
    args = [Var(f"in{i}", TensorType(x.shape, str(x.dtype))) for i, x in enumerate(inputs)]
    out_type = op.infer_type(args, op_attrs)
    out = op.evaluate([np.asarray(x) for x in inputs], op_attrs)
    outs, types = (out, out_type.fields) if isinstance(out, tuple) else ((out,), (out_type,))
    assert len(outs) == len(types)
    for value, t in zip(outs, types):
        assert isinstance(value, np.ndarray)
        assert value.shape == t.shape, f"{name}: reference shape {value.shape}, type rule {t}"
        assert str(value.dtype) == t.dtype, f"{name}: reference dtype {value.dtype}, type {t}"
    return out


def infer(name: str, shapes: list[tuple[int, ...]], dtypes: list[str] | None = None, **attrs: Any):
    """The output type of op ``name`` on inputs of ``shapes`` (through the registry's wrapper)."""
    op = get_op(name)
    dtypes = dtypes or ["float32"] * len(shapes)
    args = [Var(f"in{i}", TensorType(s, d)) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    return op.infer_type(args, op.make_attrs(attrs), node_name="n")


def run_onnx(
    op_type: str,
    feeds: list[np.ndarray],
    *,
    consts: list[np.ndarray | None] = (),
    opset: int = 18,
    num_outputs: int = 1,
    **attrs: Any,
) -> list[np.ndarray]:
    """Run a one-node ONNX model in onnxruntime.

    ``feeds`` are graph inputs; ``consts`` follow them as initializers (``None``
    leaves an optional input empty, e.g. Resize's roi and scales).
    """
    names = [f"x{i}" for i in range(len(feeds))]
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for n, v in zip(names, feeds)
    ]
    inits = []
    for i, c in enumerate(consts):
        if c is None:
            names.append("")
        else:
            names.append(f"c{i}")
            inits.append(numpy_helper.from_array(np.asarray(c), f"c{i}"))
    outs = [f"y{i}" for i in range(num_outputs)]
    node = helper.make_node(op_type, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "one_op", inputs, [onnx.ValueInfoProto(name=o) for o in outs], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, dict(zip(names, feeds)))


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: str | None = None) -> None:
    """Compare with the tolerance of ``dtype`` (default: the expected dtype); exact for ints."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    tol = TOLERANCES.get(dtype or str(expected.dtype), EXACT)
    np.testing.assert_allclose(actual, expected, **tol, equal_nan=True)
