"""PyTorch's topk, sort and argsort over short axes, as k rounds of argmax.

    topk(x, 2, dim=-1)   ->  i0 = argmax(x); i1 = argmax(x with i0 masked); values gathered

ember has no sort op. The axes these see in vision models are short (classes
of a token-routing gate, a few candidates per query), so k rounds of
argmax/argmin, each masking the position it picked, cost little and give
torch's order: descending for ``largest`` (ascending otherwise), the first
position first among equal values (NaNs are not ordered as torch orders them).
Axes longer than ``MAX_ROUNDS`` get an error instead of a graph with thousands
of nodes.
"""

from __future__ import annotations

import numpy as np

from ember.frontend.common import shape_of, top_k_indices
from ember.frontend.pytorch.context import AtenNode, converter
from ember.frontend.pytorch.ops_layout import gather_along
from ember.graph.ir import Expr, const

MAX_ROUNDS = 64


def _select(node: AtenNode, axis: int, k: int, largest: bool) -> tuple[Expr, Expr]:
    """(values, indices) of the k largest (or smallest) entries along ``axis``, in order."""
    x = node.tensor(0)
    shape = shape_of(x)
    length = shape[axis]
    if k < 0 or k > length:
        raise node.error(f"k={k} is out of range for axis {axis} of size {length}")
    if k > MAX_ROUNDS:
        raise node.error(
            f"{node.op} of {k} entries along an axis of {length}: ember composes it from one "
            f"argmax per entry, up to {MAX_ROUNDS}",
            hint="take fewer entries (topk with a small k), or sort outside the model",
        )
    if k == 0:  # empty results of the right shape
        empty = (*shape[:axis], 0, *shape[axis + 1 :])
        return const(np.zeros(empty, x.type.dtype)), const(np.zeros(empty, "int64"))
    indices = top_k_indices(node, x, axis, k, largest)
    values = gather_along(node, x, axis, indices, "/values")
    return values, indices


@converter("topk")
def _topk(node: AtenNode) -> tuple[Expr, Expr]:
    """topk(self, k, dim=-1, largest=True, sorted=True) -> (values, indices)."""
    rank = len(shape_of(node.tensor(0)))
    axis = node.axis(node.arg(2, -1), rank, "dim")
    return _select(node, axis, int(node.arg(1)), bool(node.arg(3, True)))


def _sort_args(node: AtenNode) -> tuple[int, bool]:
    """(axis, descending) of sort/argsort and their .stable overloads (self, *, stable, dim,
    descending): the stable overloads put ``stable`` second."""
    rank = len(shape_of(node.tensor(0)))
    first = 2 if node.overload == "stable" else 1
    return node.axis(node.arg(first, -1), rank, "dim"), bool(node.arg(first + 1, False))


@converter("sort")
def _sort(node: AtenNode) -> tuple[Expr, Expr]:
    axis, descending = _sort_args(node)
    return _select(node, axis, shape_of(node.tensor(0))[axis], descending)


@converter("argsort")
def _argsort(node: AtenNode) -> Expr:
    axis, descending = _sort_args(node)
    return _select(node, axis, shape_of(node.tensor(0))[axis], descending)[1]


@converter("one_hot")
def _one_hot(node: AtenNode) -> Expr:
    """one_hot(self, num_classes=-1): int64 (*, n) with 1 at each index (MoE gates)."""
    index = node.tensor(0)
    classes = int(node.arg(1, -1))
    if classes < 0:  # torch counts max(index) + 1, a value only known at run time
        raise node.error(
            "one_hot without num_classes depends on the input's values",
            hint="give num_classes: F.one_hot(index, num_classes=8)",
        )
    if index.type.dtype not in ("int32", "int64"):
        raise node.error(f"one_hot takes an int64 index, got {index.type.dtype}")
    classes_row = const(np.arange(classes, dtype=index.type.dtype), name=f"{node.name}/classes")
    expanded = node.call("expand_dims", index, suffix="/expand", axes=(len(shape_of(index)),))
    hit = node.call("equal", expanded, classes_row, suffix="/hit")
    return node.call("cast", hit, dtype="int64")
