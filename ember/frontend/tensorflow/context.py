"""What a TensorFlow converter gets: the converter registry and the node context.

A converter takes a :class:`TFNode` and returns the node's output values
(:class:`~ember.frontend.nhwc.Value` s, NHWC semantics; NCHW inside for convs
and pools)::

    @converter("Relu")
    def _relu(node: TFNode) -> list[Value]:
        return [node.builder.unary("nn.relu", node.input(0), node.name)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.frontend.common import ConverterRegistry, NodeContext
from ember.frontend.custom import CustomNode, find_converter, run_converter
from ember.frontend.nhwc import NHWCBuilder, Value
from ember.frontend.tensorflow.proto import NodeDef
from ember.graph.ir import Constant

if TYPE_CHECKING:
    from ember.frontend.tensorflow.importer import TensorFlowConverter

ConverterFn = Callable[["TFNode"], list[Value]]

# TensorFlow op type -> converter; filled by ops_nn.py and ops_tensor.py, which
# ember.frontend.tensorflow imports.
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("TensorFlow")
converter = CONVERTERS.register

FREEZE_HINT = (
    "freeze the model to a GraphDef first (TF 2.x):\n"
    "    from tensorflow.python.framework.convert_to_constants import "
    "convert_variables_to_constants_v2\n"
    "    fn = tf.function(model).get_concrete_function(tf.TensorSpec(shape, tf.float32))\n"
    "    open('frozen.pb', 'wb').write(convert_variables_to_constants_v2(fn)"
    ".graph.as_graph_def().SerializeToString())"
)


class TFNode(NodeContext):
    """One TensorFlow node being converted: its attributes and input values.

    ``importer`` is the :class:`~ember.frontend.tensorflow.importer.TensorFlowConverter`
    (function calls, checkpoint variables, placeholders).
    """

    builder: NHWCBuilder

    def __init__(self, importer: TensorFlowConverter, node_def: NodeDef) -> None:
        super().__init__(importer.builder, node_def.name, node_def.op)
        self.importer = importer
        self.node_def = node_def
        self.attrs: dict[str, Any] = node_def.attrs

    def __str__(self) -> str:
        return f"TensorFlow {self.op} node {self.name!r}"

    def inputs(self) -> list[str]:
        """The refs (``"node:1"``) of the data inputs; control inputs (``^node``) left out."""
        return [ref for ref in self.node_def.inputs if not ref.startswith("^")]

    def input(self, k: int) -> Value:
        refs = self.inputs()
        if k >= len(refs):
            raise self.error(f"lacks input {k}")
        return self.importer.value(refs[k])

    def const(self, k: int, what: str) -> np.ndarray:
        """Input ``k`` as a numpy array; it must be known at import time."""
        value = self.input(k)
        if value.array is None:
            raise self.error(
                f"its {what} (input {k}) is computed from the model inputs; ember needs it at "
                "import time",
                hint="freeze the graph with static input shapes",
            )
        return value.array

    def data_format(self) -> str:
        """``"NHWC"`` (TensorFlow's default) or ``"NCHW"``."""
        fmt = self.attrs.get("data_format", "NHWC")
        if fmt not in ("NHWC", "NCHW"):
            raise self.error(f"data_format {fmt} is not supported")
        return fmt


# ----------------------------------------------------------------------------- custom ops


def custom_converter(op: str) -> ConverterFn | None:
    """The converter a user registered for TensorFlow op ``op`` (``ember.custom``), as a
    converter of this frontend; None if there is none.

    The user's converter sees the inputs in TensorFlow's layout (NHWC) and returns plain
    graph expressions; inputs known at import time are Constants when all of them are,
    so the op folds.
    """
    custom = find_converter("tensorflow", op)
    if custom is None:
        return None

    def convert(node: TFNode) -> list[Value]:
        values = [node.input(k) for k in range(len(node.inputs()))]
        folding = all(v.is_const for v in values)
        inputs = [
            node.builder.fold_or_expr(v, f"{node.name}/input{k}")
            if folding
            else node.builder.expr(v, f"{node.name}/input{k}")
            for k, v in enumerate(values)
        ]
        view = CustomNode("tensorflow", node, inputs, node.attrs, None)
        outputs = run_converter(custom, view)
        return [Value(array=o.value) if isinstance(o, Constant) else Value(expr=o) for o in outputs]

    return convert
