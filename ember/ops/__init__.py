"""Graph ops: importing this package registers every op listed in docs/ops.md.

>>> from ember.ops import get_op
>>> get_op("nn.conv2d").pattern
<OpPattern.OUT_ELEMWISE_FUSABLE: 4>
>>> y = call("nn.relu", x)   # a graph Call of an op by name  # doctest: +SKIP
"""

from ember.ops import (
    control_flow,  # cf.if, cf.loop: ops whose attributes hold their bodies
    image,
    layout,  # blocked layouts (NCHWc) made by alter_layout; x86 helper
    math,
    nn,
    nn_conv,
    nn_dense,  # nn.dense_pack: weights in column panels, made by the pack_dense pass
    nn_pool,
    reduce,
    transform,
    winograd,  # Winograd 3x3 convs made by the winograd_conv2d pass
)
from ember.ops.registry import NoAttrs, Op, OpPattern, call, get_op, list_ops, register_op

__all__ = [
    "NoAttrs",
    "Op",
    "OpPattern",
    "call",
    "control_flow",
    "get_op",
    "image",
    "layout",
    "list_ops",
    "math",
    "nn",
    "nn_conv",
    "nn_dense",
    "nn_pool",
    "reduce",
    "register_op",
    "transform",
    "winograd",
]
