"""PyTorch converters for bitwise ops on masks and for the checks torch.export records.

    ~mask                   (bitwise_not on bool)    -> logical_not(mask)
    ~ids                    (bitwise_not on ints)    -> -ids - 1   (two's complement)
    a & b, a | b, a ^ b     (on bool)                -> logical_and / logical_or / logical_xor
    _assert_tensor_metadata(x, dtype=...)            -> nothing (shapes and dtypes are static)

DETR's padding masks (``~mask``) and attention masks combined with ``&`` are
bools; ember has no integer bitwise ops, so and/or/xor on integers get an error.
"""

from __future__ import annotations

from ember.frontend.common import scalar
from ember.frontend.pytorch.context import AtenNode, converter
from ember.graph.ir import Expr


@converter("bitwise_not")
def _bitwise_not(node: AtenNode) -> Expr:
    x = node.tensor(0)
    if x.type.dtype == "bool":
        return node.call("logical_not", x)
    if not x.type.dtype.startswith(("int", "uint")):
        raise node.error(f"bitwise_not of a {x.type.dtype} tensor (torch takes bool or integers)")
    negated = node.call("negative", x, suffix="/negative")
    return node.call("subtract", negated, scalar(1, x))


def _logical(ember_op: str):
    def convert(node: AtenNode) -> Expr:
        lhs = node.tensor(0)
        rhs = node.args[1]
        rhs = scalar(bool(rhs), lhs) if isinstance(rhs, bool | int) else node.tensor(1)
        if lhs.type.dtype != "bool" or rhs.type.dtype != "bool":
            raise node.error(
                f"{node.op} of {lhs.type.dtype} and {rhs.type.dtype} tensors is not supported "
                "(ember has bitwise ops on bool masks only)",
                hint="compare to get bool masks first: (a != 0) & (b != 0)",
            )
        return node.call(ember_op, lhs, rhs)

    return convert


converter("bitwise_and", "__and__")(_logical("logical_and"))
converter("bitwise_or", "__or__")(_logical("logical_or"))
converter("bitwise_xor", "__xor__")(_logical("logical_xor"))


@converter(
    "_assert_tensor_metadata", "_assert_scalar", "_assert_async", "sym_constrain_range_for_size"
)
def _no_check(node: AtenNode) -> None:
    """Checks torch.export inserts; ember's static types already hold what they check."""
    return None
