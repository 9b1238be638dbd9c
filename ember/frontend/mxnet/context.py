"""What an MXNet converter gets: the converter registry and the node context.

A converter gets an :class:`MXNetNode` (attributes parsed from the symbol's
text, input expressions, calls named after the node) and returns an ember
expression, or a list for ops with several outputs::

    @converter("relu")
    def _relu(node: MXNetNode) -> Expr:
        return node.call("nn.relu", node.input(0))
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from ember.frontend.common import ConverterRegistry, GraphBuilder, NodeContext
from ember.graph.ir import Expr

ConverterFn = Callable[["MXNetNode"], "Expr | list[Expr]"]

# MXNet op name -> converter; filled by ops_nn.py and ops_tensor.py, which
# ember.frontend.mxnet imports.
CONVERTERS: ConverterRegistry[ConverterFn] = ConverterRegistry("MXNet")
converter = CONVERTERS.register

# Loss heads whose inputs after the first are labels (unused at inference).
LABEL_CONSUMERS = frozenset(
    {
        "SoftmaxOutput",
        "LinearRegressionOutput",
        "LogisticRegressionOutput",
        "MAERegressionOutput",
        "SVMOutput",
    }
)


class MXNetNode(NodeContext):
    """One MXNet node being converted: its parsed attributes and input expressions."""

    def __init__(
        self,
        builder: GraphBuilder,
        name: str,
        op: str,
        attrs: dict[str, Any],
        inputs: list[Expr | None],
    ) -> None:
        super().__init__(builder, name, op)
        self.attrs = attrs
        self.inputs = inputs  # None: a label input of a loss head, dropped at inference

    def input(self, index: int) -> Expr:
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None:
            raise self.error(f"needs input {index}, it has {len(self.inputs)}")
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.attrs.get(key, default)
        return default if value is None else value

    def required(self, key: str) -> Any:
        if key not in self.attrs:
            raise self.error(f"has no attribute {key!r}")
        return self.attrs[key]

    def ints(self, key: str, default: Any = ()) -> tuple[int, ...]:
        value = self.get(key, default)
        if isinstance(value, int | float):
            return (int(value),)
        return tuple(int(v) for v in value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        return bool(int(value)) if isinstance(value, int | float) else bool(value)

    def number(self, key: str, default: float) -> float:
        return float(self.get(key, default))


def parse_attr(text: Any) -> Any:
    """An attribute as MXNet writes it (``"(3, 3)"``, ``"True"``, ``"relu"``) as Python.

    >>> parse_attr("(3, 3)"), parse_attr("True"), parse_attr("relu"), parse_attr("None")
    ((3, 3), True, 'relu', None)
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return stripped
