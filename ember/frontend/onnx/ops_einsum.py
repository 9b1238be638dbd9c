"""ONNX Einsum as transposes, reshapes, matmuls, products and sums.

    Einsum("bij,bjk->bik")  ->  batch of matmuls: nn.matmul over (batch, i, j) x (batch, j, k)
    Einsum("...ii->...i")   ->  diagonal (multiply by an identity mask, sum one axis)
    Einsum("ij->i")         ->  reduce_sum over j

Each operand first loses its repeated labels (diagonals) and the labels no other
operand or the output has (summed at once). Two operands then contract with one
``nn.matmul`` (batch labels: in both and the output; contracted: in both, not the
output); otherwise (one operand, or three and more) the operands broadcast to every
label, multiply, and the labels not in the output are summed. ``...`` stands for the
same broadcast dimensions in every operand, right-aligned as numpy does.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ember.frontend.common import shape_of
from ember.frontend.einsum import arrange, contract, sum_out
from ember.frontend.onnx.context import OnnxNode, converter
from ember.graph.ir import Expr

Label = str | tuple[str, int]  # a letter, or ("...", k): the k-th ellipsis dimension


def _parse(node: OnnxNode, ranks: list[int]) -> tuple[list[list[Label]], list[Label]]:
    """Each operand's labels, one per axis, and the output's (ellipsis expanded)."""
    equation = node.attr("equation", "")
    if isinstance(equation, bytes):
        equation = equation.decode()
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise node.error(
            f"equation {equation!r} names {len(terms)} operands but the node has {len(ranks)}"
        )
    ellipsis_rank = 0
    for term, rank in zip(terms, ranks, strict=True):
        letters = len(term.replace("...", ""))
        if "..." in term:
            ellipsis_rank = max(ellipsis_rank, rank - letters)
        elif letters != rank:
            raise node.error(
                f"equation term {term!r} has {letters} labels but its operand has rank {rank}",
                hint="give one label per axis, or '...' for the leading axes",
            )

    def expand(term: str, rank: int | None) -> list[Label]:
        head, dots, tail = term.partition("...")
        if not dots:
            return list(term)
        count = ellipsis_rank if rank is None else rank - len(head) - len(tail)
        return [*head, *[("...", ellipsis_rank - count + k) for k in range(count)], *tail]

    inputs = [expand(t, r) for t, r in zip(terms, ranks, strict=True)]
    if arrow:
        output = expand(rhs, None)
    else:  # implicit output: the ellipsis, then the letters used once, sorted
        counts = Counter(label for labels in inputs for label in labels)
        dims: list[Label] = [("...", k) for k in range(ellipsis_rank)]
        output = dims + sorted(c for c, n in counts.items() if isinstance(c, str) and n == 1)
    return inputs, output


def _diagonal(node: OnnxNode, x: Expr, labels: list[Label], shape: list[int]) -> Expr:
    """Remove repeated labels of one operand by taking diagonals (in place in the lists)."""
    while len(set(labels)) < len(labels):
        seen: dict[Label, int] = {}
        for b, label in enumerate(labels):
            if label in seen:
                a = seen[label]
                break
            seen[label] = b
        n = shape[a]
        eye = np.zeros([n if k in (a, b) else 1 for k in range(len(shape))], bool)
        idx = [slice(None) if k in (a, b) else 0 for k in range(len(shape))]
        eye[tuple(idx)] = np.eye(n, dtype=bool)
        zero = node.constant(np.zeros((), node.dtype(0)))
        x = node.call("where", node.constant(eye), x, zero)
        x = node.call("reduce_sum", x, axes=(b,))
        del labels[b], shape[b]
    return x


@converter("Einsum", min_version=12)
def _einsum(node: OnnxNode) -> Expr:
    xs = node.inputs()
    shapes = [list(node.shape(i)) for i in range(len(xs))]
    inputs, output = _parse(node, [len(s) for s in shapes])
    sizes: dict[Label, int] = {}
    for labels, shape in zip(inputs, shapes, strict=True):
        for label, d in zip(labels, shape, strict=True):
            known = sizes.setdefault(label, d)
            if known == 1:  # a size-1 axis broadcasts (numpy's rule)
                sizes[label] = d
            elif d not in (1, known):
                raise node.error(f"label {label!r} has sizes {known} and {d}")
    if any(label not in sizes for label in output):
        raise node.error(f"an output label of {output} is on no operand")
    ops = []
    for k, (x, labels, shape) in enumerate(zip(xs, inputs, shapes, strict=True)):
        labels, shape = list(labels), list(shape)
        x = _diagonal(node, x, labels, shape)
        others = {c for j, other in enumerate(inputs) if j != k for c in other}
        ops.append(sum_out(node, x, labels, set(output) | others))
    broadcast = any(
        d != sizes[c] for x, labels in ops for c, d in zip(labels, shape_of(x), strict=True)
    )
    if len(ops) == 2 and not broadcast:
        (a, a_labels), (b, b_labels) = ops
        y, labels = contract(node, a, a_labels, b, b_labels, set(output))
        return arrange(node, y, labels, output)
    # broadcast every operand to all labels, multiply, sum what the output drops
    order = list(dict.fromkeys([*output, *(c for _, labels in ops for c in labels)]))
    product: Expr | None = None
    for x, labels in ops:
        own = dict(zip(labels, shape_of(x), strict=True))
        x = arrange(node, x, labels, [c for c in order if c in labels])
        x = node.call("reshape", x, newshape=tuple(own.get(c, 1) for c in order))
        product = x if product is None else node.call("multiply", product, x)
    assert product is not None
    shape = tuple(sizes[c] for c in order)
    if product.type.shape != shape:  # type: ignore[union-attr]
        product = node.call("broadcast_to", product, shape=shape)
    result, _ = sum_out(node, product, order, set(output))  # order starts with the output
    return node.call("identity", result) if result is xs[0] else result
