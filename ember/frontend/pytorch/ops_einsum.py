"""PyTorch's ``einsum`` as transposes, reshapes, sums and batched matmuls.

    einsum("bhid,bhjd->bhij", q, k)   ->  matmul(q (bh, i, d), k^T (bh, d, j)) -> (b, h, i, j)
    einsum("bchw,c->bhw", x, w)       ->  matmul(x (1, bhw, c), w (1, c, 1)) -> (b, h, w)

Attention blocks (relative-position ViTs, MaxViT, CoaT) write their products
with einsum. Operands are contracted pairwise from the left: each index is a
batch axis (in both operands and needed later), a contracted axis (in both,
not needed later) or a free axis of one side; an index in one operand only
and not needed later is summed out first. Ellipses (``...``) name the same
leading axes in every operand; their sizes must match (no broadcasting).
"""

from __future__ import annotations

import string

from ember.frontend.common import shape_of
from ember.frontend.einsum import arrange, contract, sum_out
from ember.frontend.pytorch.context import AtenNode, converter
from ember.graph.ir import Expr

_ELLIPSIS_LETTERS = "0123456789"  # stand-ins for the axes "..." covers; never einsum letters


@converter("einsum")
def _einsum(node: AtenNode) -> Expr:
    equation = str(node.arg(0)).replace(" ", "")
    operands = [node.to_expr(t, f"{node.name}/operand{i}") for i, t in enumerate(node.arg(1))]
    terms, output = _parse(node, equation, operands)
    sizes: dict[str, int] = {}
    for term, x in zip(terms, operands):
        for letter, size in zip(term, shape_of(x)):
            if sizes.setdefault(letter, size) != size:
                raise node.error(
                    f"einsum {equation!r}: index {_show(letter)} has sizes {sizes[letter]} and "
                    f"{size} (broadcasting a size-1 axis is not supported)",
                    hint="expand the operand to the full size first",
                )
    keep = set(output) | set("".join(terms[1:]))
    x, term = sum_out(node, operands[0], terms[0], keep, f"/sum_{terms[0]}")
    for index in range(1, len(terms)):
        later = set(output) | set("".join(terms[index + 1 :]))
        y, y_term = sum_out(
            node, operands[index], terms[index], later | set(term), f"/sum_{terms[index]}"
        )
        x, term = contract(node, x, term, y, y_term, later, f"/pair{index}")
    x, term = sum_out(node, x, term, set(output), f"/sum_{''.join(term)}")
    return arrange(node, x, term, output)


def _parse(node: AtenNode, equation: str, operands: list[Expr]) -> tuple[list[str], str]:
    """The operands' index strings and the output's, with "..." spelled out as digits."""
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise node.error(f"einsum {equation!r} names {len(terms)} operands, got {len(operands)}")
    spelled = []
    ellipsis_rank = 0
    for term, x in zip(terms, operands):
        rank = len(shape_of(x))
        if "..." in term:
            covered = rank - (len(term) - 3)
            ellipsis_rank = max(ellipsis_rank, covered)
            term = term.replace("...", _ELLIPSIS_LETTERS[len(_ELLIPSIS_LETTERS) - covered :])
        if len(term) != rank or any(
            c not in string.ascii_letters + _ELLIPSIS_LETTERS for c in term
        ):
            raise node.error(
                f"einsum {equation!r}: term {term!r} does not fit a rank-{rank} operand"
            )
        if len(set(term)) != len(term):
            raise node.error(f"einsum {equation!r}: repeated index in {term!r} (a diagonal)")
        spelled.append(term)
    ellipsis = _ELLIPSIS_LETTERS[len(_ELLIPSIS_LETTERS) - ellipsis_rank :]
    if arrow:
        output = output.replace("...", ellipsis)
    else:  # implicit: "..." first, then the indices seen once, alphabetically
        counts = "".join(spelled)
        output = ellipsis + "".join(
            sorted(c for c in set(counts) if counts.count(c) == 1 and c.isalpha())
        )
    unknown = set(output) - set("".join(spelled))
    if unknown or len(set(output)) != len(output):
        raise node.error(f"einsum {equation!r}: the output names unknown or repeated indices")
    return spelled, output


def _show(letter: str) -> str:
    return "'...'" if letter in _ELLIPSIS_LETTERS else repr(letter)
