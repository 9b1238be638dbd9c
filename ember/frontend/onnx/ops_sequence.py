"""Converters of ONNX sequence ops: a sequence of static length is an ember Tuple.

A sequence is a list of tensors whose length ONNX may only know at run time. ember
keeps the ones whose length is known at import: each is a :class:`Tuple` of tensor
expressions, so ``SequenceInsert`` builds a longer tuple, ``SequenceAt`` picks a
field, ``ConcatFromSequence`` is one ``concatenate`` and ``SplitToSequence`` one
``split``. A loop that grows a sequence is unrolled at import (see
:mod:`ember.frontend.onnx.ops_control`), so the sequence it returns is a tuple too.
Positions must be known at import; a position computed from a model input is a
:class:`NotStaticError` naming that input, and a sequence that would have to cross a
run-time loop or branch is a clear error.

    SequenceConstruct(a, b) -> (a, b);  SequenceInsert(s, c) -> (a, b, c)
    ConcatFromSequence(s, axis=0) -> concatenate(a, b, c, axis=0)
"""

from __future__ import annotations

import numpy as np

from ember.frontend.common import int_list
from ember.frontend.onnx.context import OnnxNode, converter
from ember.frontend.onnx.scope import item_exprs, scalar_of
from ember.graph.ir import Constant, Expr, TensorType, Tuple


def _items(node: OnnxNode, index: int) -> list[Expr]:
    value = node.input(index)
    if isinstance(value.type, TensorType):
        raise node.error(f"input {index} is a tensor ({value.type}), not a sequence")
    return item_exprs(value)


def _position(node: OnnxNode, index: int, length: int, *, insert: bool) -> int:
    """The static position input ``index`` gives, checked against ``length``."""
    at = int(scalar_of(node.const(index, "position")))
    top = length if insert else length - 1
    if not -length <= at <= top:
        raise node.error(f"position {at} is out of range for a sequence of length {length}")
    return at + length if at < 0 else at


@converter("SequenceEmpty", min_version=11)
def _sequence_empty(node: OnnxNode) -> Expr:
    return Tuple((), node.name)


@converter("SequenceConstruct", min_version=11)
def _sequence_construct(node: OnnxNode) -> Expr:
    inputs = node.inputs()
    dtypes = {x.type.dtype for x in inputs if isinstance(x.type, TensorType)}
    if len(dtypes) > 1:
        raise node.error(f"the tensors of a sequence must share one dtype, got {sorted(dtypes)}")
    return Tuple(tuple(inputs), node.name)


@converter("SequenceAt", min_version=11)
def _sequence_at(node: OnnxNode) -> Expr:
    items = _items(node, 0)
    return items[_position(node, 1, len(items), insert=False)]


@converter("SequenceInsert", min_version=11)
def _sequence_insert(node: OnnxNode) -> Expr:
    items = _items(node, 0)
    at = _position(node, 2, len(items), insert=True) if node.has_input(2) else len(items)
    return Tuple((*items[:at], node.input(1), *items[at:]), node.name)


@converter("SequenceErase", min_version=11)
def _sequence_erase(node: OnnxNode) -> Expr:
    items = _items(node, 0)
    if not items:
        raise node.error("cannot erase from an empty sequence")
    at = _position(node, 1, len(items), insert=False) if node.has_input(1) else len(items) - 1
    return Tuple((*items[:at], *items[at + 1 :]), node.name)


@converter("SequenceLength", min_version=11)
def _sequence_length(node: OnnxNode) -> Expr:
    return Constant(np.asarray(len(_items(node, 0)), "int64"), node.name)


@converter("ConcatFromSequence", min_version=11)
def _concat_from_sequence(node: OnnxNode) -> Expr:
    items = _items(node, 0)
    if not items:
        raise node.error("cannot concatenate an empty sequence (its result has no shape)")
    rank = len(items[0].type.shape)  # type: ignore[union-attr]
    if node.attr("new_axis", 0):
        axis = node.axis(node.attr("axis"), rank + 1)
        items = [
            node.call("expand_dims", x, axes=(axis,), suffix=f"/{i}") for i, x in enumerate(items)
        ]
    else:
        axis = node.axis(node.attr("axis"), rank)
    return items[0] if len(items) == 1 else node.call("concatenate", *items, axis=axis)


@converter("SplitToSequence", min_version=11)
def _split_to_sequence(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    axis = node.axis(node.attr("axis", 0), len(shape))
    dim = shape[axis]
    split = node.maybe_const(1, "split")
    if split is None:
        sizes, squeeze = [1] * dim, not node.attr("keepdims", 1)
    elif np.ndim(split) == 0:
        chunk = int(scalar_of(split))
        if chunk <= 0:
            raise node.error(f"split size {chunk} must be positive")
        sizes, squeeze = [min(chunk, dim - i) for i in range(0, dim, chunk)], False
    else:
        sizes, squeeze = int_list(split), False
        if sum(sizes) != dim:
            raise node.error(f"split sizes {sizes} do not add up to axis {axis}'s size {dim}")
    if len(sizes) == 1:
        parts = [node.input(0)]
    else:
        whole = node.call("split", node.input(0), axis=axis, sections=tuple(sizes))
        parts = [node.item(whole, i) for i in range(len(sizes))]
    if squeeze:
        parts = [node.call("squeeze", p, axes=(axis,), suffix=f"/{i}") for i, p in enumerate(parts)]
    return Tuple(tuple(parts), node.name)
