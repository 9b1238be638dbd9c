"""Converters of ONNX optional ops: whether an optional holds a value is decided at import.

An ONNX ``optional`` is a tensor or sequence that may be absent. ember keeps the ones
whose presence is known at import: a present optional *is* its value (a tensor, or a
tuple for a sequence), and an absent one is an :class:`EmptyOptional` marker that
never reaches the graph. ``OptionalHasElement`` then folds to a constant, so an ``If``
on it resolves at import, and ``OptionalGetElement`` is the value itself. An optional
model input is present unless ``shape=`` gives ``None`` for it; an empty optional that
would have to leave the model, or cross a run-time branch, is a clear error.

    Optional(x) -> x;  Optional(type=...) -> EmptyOptional
    OptionalHasElement(x) -> Constant(True);  OptionalGetElement(x) -> x
"""

from __future__ import annotations

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter
from ember.frontend.onnx.scope import EmptyOptional
from ember.graph.ir import Constant, Expr


@converter("Optional", min_version=15)
def _optional(node: OnnxNode) -> Expr:
    if node.has_input(0):
        return node.input(0)
    return EmptyOptional((), node.name)


@converter("OptionalHasElement", min_version=15)
def _optional_has_element(node: OnnxNode) -> Expr:
    # opset 18 allows a tensor or sequence input (always present) and an omitted one
    present = node.has_input(0) and not isinstance(node.input(0), EmptyOptional)
    return Constant(np.asarray(present), node.name)


@converter("OptionalGetElement", min_version=15)
def _optional_get_element(node: OnnxNode) -> Expr:
    value = node.input(0)
    if isinstance(value, EmptyOptional):
        raise node.error(
            f"input 0 ({node.proto.input[0]!r}) is an empty optional, which has no element",
            hint="guard the node with OptionalHasElement and an If",
        )
    return value
