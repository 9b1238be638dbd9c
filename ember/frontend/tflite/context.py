"""What a TFLite converter gets: the converter registry, the operator context, fused activations.

A converter takes a :class:`TFLiteNode` and returns one
:class:`~ember.frontend.nhwc.Value` per operator output (NHWC semantics; NCHW
inside for convs and pools). Options tables are read by their vtable offsets in
``schema.fbs`` (4 = first field, 6 = second, ...)::

    @converter("RELU")
    def _relu(node: TFLiteNode) -> list[Value]:
        return [node.builder.unary("nn.relu", node.input(0), node.name)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.frontend.common import ConverterRegistry, NodeContext
from ember.frontend.nhwc import NHWCBuilder, Value

if TYPE_CHECKING:
    from ember.frontend.tflite.importer import TFLiteConverter

ConverterFn = Callable[["TFLiteNode"], list[Value]]

# TFLite builtin operator name -> converter; filled by ops_nn.py and ops_tensor.py,
# which ember.frontend.tflite imports.
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("TFLite")
converter = CONVERTERS.register

PADDING = {0: "SAME", 1: "VALID"}  # schema.fbs Padding


class TFLiteNode(NodeContext):
    """One TFLite operator being converted, named after its first output tensor.

    ``importer`` is the :class:`~ember.frontend.tflite.importer.TFLiteConverter`
    (tensors, their values and quantization); ``operator`` the parsed operator.
    """

    builder: NHWCBuilder

    def __init__(self, importer: TFLiteConverter, operator: Any) -> None:
        super().__init__(importer.builder, importer.out_name(operator), operator.opcode)
        self.importer = importer
        self.operator = operator
        self.options = operator.options  # the options table, read with schema.read_options

    def __str__(self) -> str:
        return f"TFLite {self.op} operator {self.operator.index} (output {self.name!r})"

    def input(self, k: int) -> Value:
        if k >= len(self.operator.inputs) or self.operator.inputs[k] < 0:
            raise self.error(f"lacks input {k}")
        return self.importer.value(self.operator.inputs[k])

    def optional(self, k: int) -> Value | None:
        """Input ``k``, or None if the operator leaves it out."""
        if k >= len(self.operator.inputs) or self.operator.inputs[k] < 0:
            return None
        return self.importer.value(self.operator.inputs[k])

    def const(self, k: int, what: str) -> np.ndarray:
        """Input ``k`` as a numpy array; it must be known at import time."""
        value = self.input(k)
        if value.array is None:
            raise self.error(
                f"its {what} (input {k}) is computed at run time; ember needs it at import time",
                hint="export the model with static shapes",
            )
        return value.array

    def input_name(self, k: int) -> str:
        """The tensor name of input ``k`` (weights are named after it)."""
        return self.importer.tensor(self.operator.inputs[k]).name

    def out_name(self, k: int = 0) -> str:
        return self.importer.out_name(self.operator, k)

    def out_dtype(self, k: int = 0) -> str:
        return self.importer.out_dtype(self.operator, k)


def activation(node: TFLiteNode, value: Value, code: int) -> Value:
    """``value`` through the operator's fused activation (schema.fbs ActivationFunctionType)."""
    b, name = node.builder, node.name
    if code == 0:
        return value
    if code == 1:
        return b.unary("nn.relu", value, f"{name}/relu")
    if code == 2:
        return b.unary("clip", value, f"{name}/relu_n1_to_1", a_min=-1.0, a_max=1.0)
    if code == 3:
        return b.unary("clip", value, f"{name}/relu6", a_min=0.0, a_max=6.0)
    if code == 4:
        return b.unary("tanh", value, f"{name}/tanh")
    raise node.error(f"fused activation {code} (SIGN_BIT) is not supported")
