"""A user's module of custom ops, as the tests of ``ember.custom`` import it.

It lives outside the ember package on purpose: the tuner's worker processes import it by
name (tests/custom/conftest.py puts this folder on ``sys.path``), and the compiled
artifacts must run in a process that cannot import it.

- ``example.fancy_gelu``: elementwise ``x * sigmoid(alpha * x)``; converters for the ONNX
  op ``com.example.FancyGelu``, the PyTorch op ``example::fancy_gelu`` and the TensorFlow
  op ``FancyGelu`` (one converter for all three);
- ``example.scaled_dense``: ``scale * x @ w.T``, a dense-like reduction registered
  tunable (an anchor; ONNX ``com.example.ScaledDense``);
- ``example.rms_norm``: ``x / sqrt(mean(x * x, last axis) + eps)``, opaque, with its
  own schedule (the reduction computed per row inside the output's parallel loop); the
  rule declines rows that are not a multiple of the vector width (``SCHEDULED`` records
  which kernels it scheduled);
- ``example.sign_split``: two outputs, ``(max(x, 0), min(x, 0))`` (ONNX
  ``com.example.SignSplit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember import custom, te
from ember.errors import ShapeError
from ember.graph.ir import TensorType, TupleType

# ----------------------------------------------------------------------------- fancy_gelu


@dataclass(frozen=True)
class FancyGeluAttrs:
    alpha: float = 1.702


fancy_gelu = custom.register_op("example.fancy_gelu", FancyGeluAttrs, pattern="elemwise")


@fancy_gelu.type_rule
def _(types: list[Any], attrs: FancyGeluAttrs) -> Any:
    return types[0]


@fancy_gelu.reference
def _(inputs: list[np.ndarray], attrs: FancyGeluAttrs) -> np.ndarray:
    (x,) = inputs
    return (x / (1.0 + np.exp(-attrs.alpha * x))).astype(x.dtype)


@custom.register_compute(fancy_gelu)
def _(inputs: list[Any], attrs: FancyGeluAttrs, out_type: Any) -> Any:
    (x,) = inputs
    return te.compute(
        out_type.shape, lambda *i: x[i] * te.sigmoid(x[i] * attrs.alpha), name="fancy_gelu"
    )


@custom.register_converter("onnx", "FancyGelu", domain="com.example")
@custom.register_converter("pytorch", "example::fancy_gelu")
@custom.register_converter("tensorflow", "FancyGelu")
def _(node: custom.CustomNode) -> Any:
    return node.call(fancy_gelu, node.input(0), alpha=float(node.attr("alpha", 1.702)))


# ----------------------------------------------------------------------------- scaled_dense


@dataclass(frozen=True)
class ScaledDenseAttrs:
    scale: float = 1.0


scaled_dense = custom.register_op(
    "example.scaled_dense", ScaledDenseAttrs, pattern="anchor", num_inputs=2
)


@scaled_dense.type_rule
def _(types: list[Any], attrs: ScaledDenseAttrs) -> Any:
    x, w = types
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ShapeError(f"expects x (n, k) and w (m, k), got {x.shape} and {w.shape}")
    return TensorType((x.shape[0], w.shape[0]), x.dtype)


@scaled_dense.reference
def _(inputs: list[np.ndarray], attrs: ScaledDenseAttrs) -> np.ndarray:
    x, w = inputs
    return (attrs.scale * (x @ w.T)).astype(x.dtype)


@scaled_dense.flop_rule
def _(call: Any) -> int:
    (n, k), (m, _) = call.args[0].type.shape, call.args[1].type.shape
    return 2 * n * m * k


@custom.register_compute(scaled_dense, tunable=True)
def _(inputs: list[Any], attrs: ScaledDenseAttrs, out_type: Any) -> Any:
    x, w = inputs
    k = te.reduce_axis((0, x.shape[1]), name="k")
    return te.compute(
        out_type.shape,
        lambda i, j: te.sum(x[i, k] * w[j, k] * attrs.scale, axis=k),
        name="scaled_dense",
    )


@custom.register_converter("onnx", "ScaledDense", domain="com.example")
def _(node: custom.CustomNode) -> Any:
    return node.call(scaled_dense, node.input(0), node.input(1), scale=node.attr("scale", 1.0))


# ----------------------------------------------------------------------------- rms_norm


@dataclass(frozen=True)
class RmsNormAttrs:
    eps: float = 1e-6


rms_norm = custom.register_op("example.rms_norm", RmsNormAttrs, pattern="opaque")
SCHEDULED: list[tuple[int, ...]] = []  # output shapes the schedule rule below scheduled
ROW_VECTOR = 8  # float32 lanes of one AVX2 vector


@rms_norm.type_rule
def _(types: list[Any], attrs: RmsNormAttrs) -> Any:
    return types[0]


@rms_norm.reference
def _(inputs: list[np.ndarray], attrs: RmsNormAttrs) -> np.ndarray:
    (x,) = inputs
    mean = np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True)
    return (x / np.sqrt(mean + attrs.eps)).astype(x.dtype)


@custom.register_compute(rms_norm)
def _(inputs: list[Any], attrs: RmsNormAttrs, out_type: Any) -> Any:
    (x,) = inputs
    *rows, width = out_type.shape
    r = te.reduce_axis((0, width), name="r")
    squares = te.compute(
        tuple(rows), lambda *i: te.sum(x[(*i, r)] * x[(*i, r)], axis=r), name="rms_sum"
    )
    return te.compute(
        out_type.shape,
        lambda *i: x[i] * te.rsqrt(squares[i[:-1]] / float(width) + attrs.eps),
        name="rms_norm",
    )


@custom.register_schedule(rms_norm)
def _(outputs: list[Any], target: Any) -> Any:
    (out,) = outputs
    width = int(out.shape[-1].value)
    if width % ROW_VECTOR:
        return None  # declined: the default schedule handles ragged rows
    squares = out.op.input_tensors[1]
    s = te.create_schedule(out.op)
    rows = s[out].fuse(*out.op.axis[:-1]) if out.ndim > 2 else out.op.axis[0]
    s[out].parallel(rows)
    _, lanes = s[out].split(out.op.axis[-1], factor=ROW_VECTOR)
    s[out].vectorize(lanes)
    s[squares].compute_at(s[out], rows)  # each row's sum right before the row is written
    SCHEDULED.append(tuple(int(d.value) for d in out.shape))
    return s


@custom.register_converter("onnx", "RmsNorm", domain="com.example")
def _(node: custom.CustomNode) -> Any:
    return node.call(rms_norm, node.input(0), eps=node.attr("eps", 1e-6))


# ----------------------------------------------------------------------------- sign_split

sign_split = custom.register_op("example.sign_split", pattern="opaque")


@sign_split.type_rule
def _(types: list[Any], attrs: Any) -> Any:
    return TupleType((types[0], types[0]))


@sign_split.reference
def _(inputs: list[np.ndarray], attrs: Any) -> tuple[np.ndarray, np.ndarray]:
    (x,) = inputs
    return np.maximum(x, 0).astype(x.dtype), np.minimum(x, 0).astype(x.dtype)


@custom.register_compute(sign_split)
def _(inputs: list[Any], attrs: Any, out_type: Any) -> Any:
    (x,) = inputs
    zero = te.const(0.0, x.dtype)
    positive = te.compute(
        x.shape, lambda *i: te.if_then_else(x[i] > zero, x[i], zero), name="positive"
    )
    negative = te.compute(
        x.shape, lambda *i: te.if_then_else(x[i] < zero, x[i], zero), name="negative"
    )
    return positive, negative


@custom.register_converter("onnx", "SignSplit", domain="com.example")
def _(node: custom.CustomNode) -> Any:
    y = node.call(sign_split, node.input(0))
    return node.item(y, 0), node.item(y, 1)
