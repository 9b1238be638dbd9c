"""Einsum building blocks the frontends share: sum labels out, arrange axes, and
contract two operands with one batched ``nn.matmul``.

Each operand carries one label per axis (any hashable: a letter, or a stand-in for
an axis ``...`` covers); the frontends parse their equations into labels and keep
their own rules for what they accept. ``node`` is the converting node (a
:class:`~ember.frontend.common.NodeContext`); ``suffix`` names the calls built::

    x, labels = sum_out(node, x, ["b", "i", "j"], keep={"b", "i"})     # reduce_sum over j
    y, labels = contract(node, q, ["b", "i", "d"], k, ["b", "j", "d"], keep={"b", "i", "j"})
    y = arrange(node, y, labels, ["b", "j", "i"])                     # a transpose
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence
from typing import Any

from ember.frontend.common import shape_of
from ember.graph.ir import Expr


def sum_out(
    node: Any, x: Expr, labels: Sequence[Hashable], keep: Collection[Hashable], suffix: str = ""
) -> tuple[Expr, list[Hashable]]:
    """``x`` summed over the axes whose label is not in ``keep``, and the labels left."""
    axes = tuple(k for k, label in enumerate(labels) if label not in keep)
    if not axes:
        return x, list(labels)
    x = node.call("reduce_sum", x, suffix=suffix, axes=axes, keepdims=False)
    return x, [label for label in labels if label in keep]


def arrange(
    node: Any, x: Expr, labels: Sequence[Hashable], order: Sequence[Hashable], suffix: str = ""
) -> Expr:
    """``x`` (axes ``labels``) transposed so its axes follow ``order``."""
    perm = tuple(list(labels).index(label) for label in order)
    if perm == tuple(range(len(perm))):
        return x
    return node.call("transpose", x, suffix=suffix, axes=perm)


def contract(
    node: Any,
    x: Expr,
    x_labels: Sequence[Hashable],
    y: Expr,
    y_labels: Sequence[Hashable],
    keep: Collection[Hashable],
    suffix: str = "",
) -> tuple[Expr, list[Hashable]]:
    """``x`` times ``y`` over their shared labels, as one ``nn.matmul`` of
    (batch, left, contracted) by (batch, contracted, right): a shared label in ``keep``
    is a batch axis, a shared one not in it is summed. Labels must be unique in each
    operand, shared ones of equal size. Returns the product and its labels
    (batch, then ``x``'s own, then ``y``'s own)."""
    size = dict(zip(x_labels, shape_of(x), strict=True))
    size.update(zip(y_labels, shape_of(y), strict=True))
    batch = [c for c in x_labels if c in y_labels and c in keep]
    contracted = [c for c in x_labels if c in y_labels and c not in keep]
    left = [c for c in x_labels if c not in y_labels]
    right = [c for c in y_labels if c not in x_labels]

    def dims(labels: list[Hashable]) -> int:
        return math.prod(size[c] for c in labels)

    a = arrange(node, x, x_labels, batch + left + contracted, f"{suffix}/lhs_t")
    a = node.call(
        "reshape", a, suffix=f"{suffix}/lhs", newshape=(dims(batch), dims(left), dims(contracted))
    )
    b = arrange(node, y, y_labels, batch + contracted + right, f"{suffix}/rhs_t")
    b = node.call(
        "reshape", b, suffix=f"{suffix}/rhs", newshape=(dims(batch), dims(contracted), dims(right))
    )
    product = node.call("nn.matmul", a, b, suffix=f"{suffix}/matmul")
    labels = batch + left + right
    out = node.call(
        "reshape", product, suffix=f"{suffix}/unflatten", newshape=tuple(size[c] for c in labels)
    )
    return out, labels
