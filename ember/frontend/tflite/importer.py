"""Import TFLite models (``.tflite`` flatbuffers, float32 and int8-quantized).

``from_tflite`` reads the file with ember's own flatbuffer reader (no TensorFlow
needed) and converts subgraph 0 to a :class:`Module`::

    mod, params = from_tflite("mobilenet.tflite", shape={"input": (1, 224, 224, 3)})

Layout: TFLite is NHWC. Inputs and outputs keep their NHWC shapes; inside the
graph ember's NCHW convs and pools are used, with a transpose after each input
and before each 4-D output (see :mod:`ember.frontend.nhwc`).
Weights are transposed at import time (OHWI -> OIHW; depthwise 1HW(C*M) ->
(C*M)1HW with ``groups=C``).

Quantized models: weights are dequantized at import time (per-tensor or
per-channel scales and zero points). Activations are computed in float32 and
rounded to the tensor's quantization grid after every op (``x -> scale *
clip(round(x / scale), qmin - zp, qmax - zp)``), which reproduces TFLite's
integer kernels to within one quantization step. An int8 (uint8) model input
stays int8: the graph dequantizes it with ``(cast(x) - zp) * scale``; an int8
output is re-quantized with ``round``/``clip``/``cast``. A later quantization
pass may turn these patterns back into integer kernels.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.nhwc import NHWCBuilder, Value, check_shape_names, resolve_input_shape
from ember.frontend.tflite.context import CONVERTERS, TFLiteNode
from ember.frontend.tflite.schema import Quantization, Tensor, read_model
from ember.graph.ir import Module

QUANT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}

# Ops whose output is on the same quantization grid as their first input when the
# tensors share scale and zero point: no re-rounding needed after them.
GRID_PRESERVING = {
    "RESHAPE",
    "SQUEEZE",
    "TRANSPOSE",
    "MAX_POOL_2D",
    "STRIDED_SLICE",
    "SLICE",
    "PAD",
    "EXPAND_DIMS",
    "GATHER",
    "SPLIT",
    "SPLIT_V",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
}


def from_tflite(
    model: str | os.PathLike | bytes, shape: dict[str, Any] | None = None
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert a TFLite model (a path or the file's bytes) to ``(Module, params)``.

    ``shape`` maps input tensor names to static shapes. Without it an unknown
    leading (batch) dimension is 1 and other unknown dimensions are an error.

    >>> mod, params = from_tflite("model.tflite")  # doctest: +SKIP
    """
    if isinstance(model, bytes | bytearray | memoryview):
        buf = bytes(model)
    else:
        try:
            with open(model, "rb") as f:
                buf = f.read()
        except OSError as err:
            raise FrontendError(
                f"cannot read TFLite model {str(model)!r}: {err.strerror}"
            ) from None
    return TFLiteConverter(read_model(buf), shape).convert()


def supported_ops() -> list[str]:
    """TFLite builtin operators that :func:`from_tflite` converts, sorted.

    >>> "CONV_2D" in supported_ops()
    True
    """
    return CONVERTERS.ops()


class TFLiteConverter:
    """Converts subgraph 0 of a parsed model; see :func:`from_tflite`."""

    def __init__(self, model: Any, shape: dict[str, Any] | None) -> None:
        self.graph = model.subgraphs[0]
        self.shape = dict(shape or {})
        self.builder = NHWCBuilder("TFLite")
        self.values: dict[int, Value] = {}
        # tensor index -> (scale, zero point) of the grid its value already lies on
        self.grids: dict[int, tuple[float, int]] = {}

    # ------------------------------------------------------------------ driver

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        graph = self.graph
        for op in graph.operators:
            if op.opcode not in CONVERTERS:
                self.builder.unsupported(op.opcode, self.out_name(op))
        self.builder.raise_unsupported()
        names = [self.tensor(i).name for i in graph.inputs]
        check_shape_names("TFLite", self.shape, names)
        for index in graph.inputs:
            self.values[index] = self._input(self.tensor(index))
        for op in graph.operators:
            node = TFLiteNode(self, op)
            with self.builder.converting(node):
                outputs = CONVERTERS[op.opcode](node)
            for k, (index, value) in enumerate(zip(op.outputs, outputs)):
                self.values[index] = self._requantize(op, k, index, value)
        outputs, out_names = [], []
        for index in graph.outputs:
            tensor = self.tensor(index)
            outputs.append(self._output(tensor, self.value(index)))
            out_names.append(tensor.name)
        return self.builder.finish_values(outputs, out_names)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def _input(self, tensor: Tensor) -> Value:
        dtype = self._dtype(tensor)
        file_shape = list(tensor.shape_signature or tensor.shape)
        shape = resolve_input_shape("TFLite", tensor.name, file_shape, self.shape)
        value = Value(expr=self.builder.add_input(tensor.name, shape, dtype))
        q = tensor.quantization
        if q is not None and dtype in QUANT_RANGES:
            scale, zero_point = _per_tensor(q, tensor.name)
            name = f"{tensor.name}/dequantize"
            real = self.builder.unary("cast", value, name + "/cast", dtype="float32")
            real = self.builder.binary("subtract", real, _scalar(zero_point), name + "/zp")
            value = self.builder.binary("multiply", real, _scalar(scale), name)
            self.grids[tensor.index] = (scale, zero_point)
        return value

    def _output(self, tensor: Tensor, value: Value) -> Value:
        q = tensor.quantization
        dtype = self._dtype(tensor)
        if q is None or dtype not in QUANT_RANGES or value.dtype == dtype:
            return value
        scale, zero_point = _per_tensor(q, tensor.name)
        qmin, qmax = QUANT_RANGES[dtype]
        name = f"{tensor.name}/quantize"
        b = self.builder
        x = b.binary("divide", value, _scalar(scale), name + "/scale")
        x = b.unary("round", x, name + "/round")
        x = b.binary("add", x, _scalar(zero_point), name + "/zp")
        x = b.unary("clip", x, name + "/clip", a_min=float(qmin), a_max=float(qmax))
        return b.unary("cast", x, name, dtype=dtype)

    def _requantize(self, op: Any, k: int, index: int, value: Value) -> Value:
        """Round a quantized op output to its tensor's grid, as TFLite's int kernels do."""
        tensor = self.tensor(index)
        q = tensor.quantization
        if q is None or tensor.dtype not in QUANT_RANGES or value.dtype != "float32":
            return value
        scale, zero_point = _per_tensor(q, tensor.name)
        grid = (scale, zero_point)
        if op.opcode in GRID_PRESERVING and self.grids.get(op.inputs[0]) == grid:
            self.grids[index] = grid
            return value
        if op.opcode == "CONCATENATION" and all(self.grids.get(i) == grid for i in op.inputs):
            self.grids[index] = grid
            return value
        self.grids[index] = grid
        qmin, qmax = QUANT_RANGES[tensor.dtype]  # type: ignore[index]
        if op.opcode == "AVERAGE_POOL_2D":
            return _average_pool_rounding(
                self.builder, value, scale, zero_point, qmin, qmax, tensor.name
            )
        return fake_quantize(self.builder, value, scale, zero_point, qmin, qmax, tensor.name)

    def _dtype(self, tensor: Tensor) -> str:
        if tensor.dtype is None:
            raise FrontendError(
                f"TFLite tensor {tensor.name!r} has type code {tensor.type_code}, which ember "
                "cannot represent (string, complex, resource ...)"
            )
        return tensor.dtype

    # ------------------------------------------------------------------ for converters

    def value(self, index: int) -> Value:
        """The converted value of tensor ``index`` (constants are dequantized floats)."""
        if index in self.values:
            return self.values[index]
        tensor = self.tensor(index)
        if tensor.data is None:
            raise FrontendError(
                f"TFLite tensor {tensor.name!r} is read before any operator writes it and "
                "holds no constant data"
            )
        self._dtype(tensor)
        value = Value(array=dequantize_array(tensor))
        self.values[index] = value
        return value

    def out_name(self, op: Any, k: int = 0) -> str:
        return self.tensor(op.outputs[k]).name if op.outputs else f"operator_{op.index}"

    def out_dtype(self, op: Any, k: int = 0) -> str:
        return self._dtype(self.tensor(op.outputs[k]))


def _scalar(x: float) -> Value:
    return Value(array=np.asarray(x, dtype="float32"))


def _per_tensor(q: Quantization, name: str) -> tuple[float, int]:
    if len(q.scale) != 1:
        raise FrontendError(
            f"TFLite tensor {name!r}: per-channel quantization of an activation is not supported"
        )
    return float(q.scale[0]), int(q.zero_point[0])


def dequantize_array(tensor: Tensor) -> np.ndarray:
    """A constant's real value: ``scale * (q - zero_point)`` along its quantized axis."""
    data = tensor.data
    assert data is not None
    q = tensor.quantization
    if q is None or data.dtype.kind not in "iu" or tensor.dtype in ("int64",):
        return data
    shape = [1] * data.ndim
    if len(q.scale) > 1:
        shape[q.axis] = len(q.scale)
    scale = q.scale.astype("float64").reshape(shape if len(q.scale) > 1 else ())
    zero = q.zero_point.astype("float64")
    zero = zero.reshape(shape) if len(zero) > 1 else (zero[0] if len(zero) else 0.0)
    return ((data.astype("float64") - zero) * scale).astype("float32")


def fake_quantize(
    builder: NHWCBuilder,
    value: Value,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    name: str,
) -> Value:
    """``scale * clip(round(x / scale), qmin - zp, qmax - zp)``: x rounded to the int grid."""
    x = builder.binary("divide", value, _scalar(scale), f"{name}/fq_scale")
    x = builder.unary("round", x, f"{name}/fq_round")
    x = builder.unary(
        "clip", x, f"{name}/fq_clip", a_min=float(qmin - zero_point), a_max=float(qmax - zero_point)
    )
    return builder.binary("multiply", x, _scalar(scale), f"{name}/fq")


# Window sums divided by the window size are exact multiples of 1/size; snapping to
# this grid first makes float error unable to move a tie (x.5) to either side.
TIE_SNAP = 4096.0


def _average_pool_rounding(
    builder: NHWCBuilder,
    value: Value,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    name: str,
) -> Value:
    """TFLite's int8 average pool rounds the mean of the raw int8 values half away from zero.

    Averages of small integer windows hit ties (x.5) often, so plain round-half-even
    would differ from TFLite by one step on many pixels.
    """
    b = builder
    x = b.binary("divide", value, _scalar(scale), f"{name}/fq_scale")
    x = b.binary("add", x, _scalar(zero_point), f"{name}/fq_raw")  # the raw int8 mean
    x = b.binary("multiply", x, _scalar(TIE_SNAP), f"{name}/fq_snap_up")
    x = b.unary("round", x, f"{name}/fq_snap")
    x = b.binary("divide", x, _scalar(TIE_SNAP), f"{name}/fq_snapped")
    sign = b.unary("sign", x, f"{name}/fq_sign")
    magnitude = b.binary(
        "add", b.unary("abs", x, f"{name}/fq_abs"), _scalar(0.5), f"{name}/fq_half"
    )
    x = b.binary(
        "multiply", sign, b.unary("floor", magnitude, f"{name}/fq_floor"), f"{name}/fq_round"
    )
    x = b.unary("clip", x, f"{name}/fq_clip", a_min=float(qmin), a_max=float(qmax))
    x = b.binary("subtract", x, _scalar(zero_point), f"{name}/fq_zp")
    return b.binary("multiply", x, _scalar(scale), f"{name}/fq")


__all__ = ["from_tflite", "supported_ops", "TFLiteConverter"]
