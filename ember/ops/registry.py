"""The standard op library's registry: ops by name, and calls built by name.

Everything about one op sits in one place, the module that defines it: its
attribute dataclass, type rule, numpy reference, fusion pattern and FLOP rule,
registered on one :class:`~ember.graph.op.Op` object (the IR's op class)::

    @dataclass(frozen=True)
    class LeakyReluAttrs:
        alpha: float = 0.01

    leaky_relu = register_op("nn.leaky_relu", LeakyReluAttrs, OpPattern.ELEMWISE, num_inputs=1)

    @leaky_relu.type_rule
    def _(types, attrs):
        return types[0]

    @leaky_relu.reference
    def _(inputs, attrs):
        x = inputs[0]
        return np.where(x >= 0, x, x * attrs.alpha).astype(x.dtype)

Importing this module imports the ``ember.ops`` package first, which registers
every standard op, so :func:`get_op` and :func:`call` here always see all of them.
"""

from __future__ import annotations

from typing import Any

from ember.graph.ir import Call, Expr
from ember.graph.ir import call as call_op
from ember.graph.op import NoAttrs, Op, OpPattern, get_op, register_op, registered_ops


def list_ops() -> list[str]:
    """Names of all registered ops, sorted.

    >>> "nn.conv2d" in list_ops()
    True
    """
    return registered_ops()


def call(op: str | Op, *args: Expr, name: str = "", **attrs: Any) -> Call:
    """A :class:`Call` of ``op`` (an Op or its registered name) with keyword attributes.

    >>> y = call("nn.relu", x)  # doctest: +SKIP
    """
    return call_op(get_op(op) if isinstance(op, str) else op, *args, name=name, **attrs)


__all__ = ["NoAttrs", "Op", "OpPattern", "call", "get_op", "list_ops", "register_op"]
