"""Blocked-layout ops: ``layout_transform`` and the NCHW[x]c convolution ``nn.conv2d_nchwc``.

These ops are not in ONNX models: :func:`ember.graph.passes.alter_layout.alter_layout`
introduces them so that convolution chains run in a layout whose innermost axis is one
SIMD vector of channels (TVM's NCHWc). A layout string names the primal axes in capitals
and each blocked (sub-)axis as ``<factor><lowercase letter>``::

    NCHW8c      (N, C/8, H, W, 8)         channel c of pixel (h, w) at [n, c//8, h, w, c%8]
    OIHW8i8o    (O/8, I/8, KH, KW, 8, 8)  conv weights packed for the NCHW8c kernel

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((1, 16, 4, 4)))
    >>> call("layout_transform", x, src_layout="NCHW", dst_layout="NCHW8c").type.shape
    (1, 2, 4, 4, 8)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import NUMBER_DTYPES, check_dtype, check_rank, same_dtype, tensor
from ember.ops.nn_conv import Conv2DAttrs, conv2d
from ember.ops.nn_pool import AvgPool2DAttrs, MaxPool2DAttrs, avg_pool2d, max_pool2d
from ember.ops.registry import OpPattern, register_op

_AXIS = re.compile(r"(\d*)([A-Za-z])")


@dataclass(frozen=True)
class Layout:
    """A parsed layout: ``axes`` in storage order, each (letter, block factor or 0 if primal).

    >>> Layout.parse("NCHW8c").axes
    (('N', 0), ('C', 0), ('H', 0), ('W', 0), ('c', 8))
    """

    name: str
    axes: tuple[tuple[str, int], ...]

    @staticmethod
    def parse(name: str) -> Layout:
        if not isinstance(name, str) or not name or _AXIS.sub("", name):
            raise AttrError(
                f"layout {name!r} is not a layout string",
                hint="write primal axes in capitals and blocks as <factor><letter>, e.g. NCHW8c",
            )
        axes: list[tuple[str, int]] = []
        for factor, letter in _AXIS.findall(name):
            if letter.isupper():
                if factor:
                    raise AttrError(f"layout {name!r}: primal axis {letter} cannot have a factor")
                axes.append((letter, 0))
            else:
                if not factor or int(factor) < 1:
                    raise AttrError(f"layout {name!r}: block axis {letter} needs a factor >= 1")
                axes.append((letter, int(factor)))
        letters = [a for a, _ in axes]
        if len(set(letters)) != len(letters):
            raise AttrError(f"layout {name!r} names an axis twice")
        for a, _ in axes:
            if a.islower() and a.upper() not in letters:
                raise AttrError(f"layout {name!r}: block axis {a} has no primal axis {a.upper()}")
        return Layout(name, tuple(axes))

    @property
    def primal(self) -> str:
        """The primal axes in order: ``"NCHW"`` for ``"NCHW8c"``."""
        return "".join(a for a, _ in self.axes if a.isupper())

    def factor(self, primal_axis: str) -> int:
        """Block factor of ``primal_axis`` (1 when it is not blocked)."""
        for a, f in self.axes:
            if a == primal_axis.lower():
                return f
        return 1

    def shape_from_primal(self, primal_shape: tuple[int, ...]) -> tuple[int, ...]:
        extents = dict(zip(self.primal, primal_shape, strict=True))
        shape = []
        for a, f in self.axes:
            if a.isupper():
                block = self.factor(a)
                if extents[a] % block:
                    raise ShapeError(
                        f"axis {a} of extent {extents[a]} does not divide into blocks of {block} "
                        f"(layout {self.name})",
                        hint="pad the channels or keep this tensor in its primal layout",
                    )
                shape.append(extents[a] // block)
            else:
                shape.append(f)
        return tuple(shape)

    def primal_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        dims = dict(zip((a for a, _ in self.axes), shape, strict=True))
        return tuple(dims[a] * dims.get(a.lower(), 1) for a in self.primal)


def to_primal(x: np.ndarray, layout: Layout) -> np.ndarray:
    """numpy: blocked ``x`` in ``layout`` -> its primal layout."""
    letters = [a for a, _ in layout.axes]
    order: list[int] = []
    for a in layout.primal:
        order.append(letters.index(a))
        if a.lower() in letters:
            order.append(letters.index(a.lower()))
    return x.transpose(order).reshape(layout.primal_shape(x.shape))


def from_primal(x: np.ndarray, layout: Layout) -> np.ndarray:
    """numpy: ``x`` in the primal layout -> ``layout`` (blocked)."""
    split: list[int] = []
    names: list[str] = []
    for a, n in zip(layout.primal, x.shape, strict=True):
        f = layout.factor(a)
        if f > 1 or a.lower() in [b for b, _ in layout.axes]:
            split += [n // f, f]
            names += [a, a.lower()]
        else:
            split.append(n)
            names.append(a)
    order = [names.index(a) for a, _ in layout.axes]
    return x.reshape(split).transpose(order)


# ----------------------------------------------------------------------------- layout_transform


@dataclass(frozen=True)
class LayoutTransformAttrs:
    """``src_layout`` -> ``dst_layout``; both name the same primal axes in the same order."""

    src_layout: str = "NCHW"
    dst_layout: str = "NCHW8c"

    def __post_init__(self) -> None:
        src, dst = Layout.parse(self.src_layout), Layout.parse(self.dst_layout)
        if src.primal != dst.primal:
            raise AttrError(
                f"layout_transform from {self.src_layout} to {self.dst_layout}: the primal axes "
                f"differ ({src.primal} vs {dst.primal})",
                hint="only blocking and unblocking are supported, not transposition",
            )


layout_transform = register_op(
    "layout_transform", LayoutTransformAttrs, OpPattern.INJECTIVE, num_inputs=1
)


@layout_transform.type_rule
def _layout_transform_type(types: list, attrs: LayoutTransformAttrs) -> TensorType:
    x = tensor(types, 0, "data")
    src, dst = Layout.parse(attrs.src_layout), Layout.parse(attrs.dst_layout)
    check_rank(x, f"data ({attrs.src_layout})", len(src.axes))
    for (a, f), n in zip(src.axes, x.shape, strict=True):
        if a.islower() and n != f:
            raise ShapeError(f"block axis {a} of layout {src.name} has extent {n}, expected {f}")
    return TensorType(dst.shape_from_primal(src.primal_shape(x.shape)), x.dtype)


@layout_transform.reference
def _layout_transform_ref(inputs: list[np.ndarray], attrs: LayoutTransformAttrs) -> np.ndarray:
    src, dst = Layout.parse(attrs.src_layout), Layout.parse(attrs.dst_layout)
    return np.ascontiguousarray(from_primal(to_primal(np.asarray(inputs[0]), src), dst))


# ----------------------------------------------------------------------------- conv2d_nchwc


conv2d_nchwc = register_op(
    "nn.conv2d_nchwc",
    Conv2DAttrs,
    OpPattern.OUT_ELEMWISE_FUSABLE,
    num_inputs=None,
    doc="conv2d on NCHW[x]c data with OIHW[x]i[y]o weights and an optional (O,) bias; "
    "groups is 1, the channel count (depthwise, weights OIHW1i[y]o) or any count whose "
    "groups the blocks do not straddle (grouped, data block x = weight input block)",
)


@conv2d_nchwc.flop_rule
def _conv2d_nchwc_flops(call: Call) -> int:
    # Weights (O/o, I/i, KH, KW, i, o): each output element sums I/groups * KH * KW products.
    _, in_blocks, kh, kw, in_block, _ = call.args[1].type.shape
    out = call.type.size
    return 2 * out * in_blocks * in_block * kh * kw + (out if len(call.args) == 3 else 0)


def _pool_nchwc_flops(call: Call) -> int:
    kh, kw = call.attrs.pool_size
    return call.type.size * kh * kw


def nchwc_layouts(data: TensorType, weight: TensorType) -> tuple[Layout, Layout, Layout]:
    """(data, weight, output) layouts implied by 5-D data and 6-D weight shapes."""
    data_block, in_block, out_block = data.shape[4], weight.shape[4], weight.shape[5]
    return (
        Layout.parse(f"NCHW{data_block}c"),
        Layout.parse(f"OIHW{in_block}i{out_block}o"),
        Layout.parse(f"NCHW{out_block}c"),
    )


def _check_grouped_blocks(
    data: TensorType, weight: TensorType, group_out: int, groups: int
) -> None:
    """A grouped conv's blocks must not straddle groups: the data block is the weight's
    input block (the kernel picks a group's input blocks by index) and the output block
    divides the output channels of one group."""
    data_block, in_block, out_block = data.shape[4], weight.shape[4], weight.shape[5]
    if data_block != in_block or group_out % out_block:
        raise ShapeError(
            f"conv2d_nchwc: groups={groups} with data block {data_block}, weight blocks "
            f"{in_block}i{out_block}o and {group_out} output channels per group: a block "
            f"would straddle two groups",
            hint="use one channel block for data and weight input that divides the group's "
            "input channels, and an output block that divides its output channels",
        )


@conv2d_nchwc.type_rule
def _conv2d_nchwc_type(types: list, attrs: Conv2DAttrs) -> TensorType:
    if len(types) not in (2, 3):
        raise ShapeError(f"conv2d_nchwc takes data, weight and an optional bias; got {len(types)}")
    data, weight = tensor(types, 0, "data"), tensor(types, 1, "weight")
    check_rank(data, "data (N, C/c, H, W, c)", 5)
    check_rank(weight, "weight (O/o, I/i, KH, KW, i, o)", 6)
    dtype = same_dtype([data, weight], ["data", "weight"])
    check_dtype(data, "data", NUMBER_DTYPES)
    dl, wl, ol = nchwc_layouts(data, weight)
    channels = dl.primal_shape(data.shape)[1]
    o, cg = wl.primal_shape(weight.shape)[:2]
    if channels != cg * attrs.groups:
        raise ShapeError(
            f"conv2d_nchwc: data has {channels} channels, weight expects {cg * attrs.groups} with "
            f"groups={attrs.groups}",
            hint="the weight's input axis times groups must be the data's channels",
        )
    if attrs.groups > 1 and cg == 1:
        if o != channels or data.shape[4] != weight.shape[5]:
            raise ShapeError("conv2d_nchwc: depthwise needs O == C and equal data/output blocks")
    elif attrs.groups > 1:
        _check_grouped_blocks(data, weight, o // attrs.groups, attrs.groups)
    if len(types) == 3:
        bias = tensor(types, 2, "bias")
        if bias.shape != (o,):
            raise ShapeError(f"bias has shape {bias.shape}, expected ({o},)")
    # The primal conv's rule gives the output size (and checks kernel vs padded input).
    primal = conv2d._type_rule(  # type: ignore[misc]
        [
            TensorType(dl.primal_shape(data.shape), dtype),
            TensorType(wl.primal_shape(weight.shape), dtype),
        ],
        attrs,
    )
    return TensorType(ol.shape_from_primal(primal.shape), dtype)


@conv2d_nchwc.reference
def _conv2d_nchwc_ref(inputs: list[np.ndarray], attrs: Conv2DAttrs) -> np.ndarray:
    data, weight = np.asarray(inputs[0]), np.asarray(inputs[1])
    dl, wl, ol = nchwc_layouts(TensorType(data.shape), TensorType(weight.shape))
    args = [to_primal(data, dl), to_primal(weight, wl), *inputs[2:]]
    out = conv2d.evaluate(args, attrs)
    return np.ascontiguousarray(from_primal(out, ol))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- max_pool2d_nchwc


def _pool_nchwc_type(types: list, attrs: MaxPool2DAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_rank(data, "data (N, C/c, H, W, c)", 5)
    layout = Layout.parse(f"NCHW{data.shape[4]}c")
    primal = max_pool2d._type_rule(  # type: ignore[misc]
        [TensorType(layout.primal_shape(data.shape), data.dtype)], attrs
    )
    return TensorType(layout.shape_from_primal(primal.shape), data.dtype)


def _pool_nchwc_reference(primal_op: Any) -> Any:
    def reference(inputs: list[np.ndarray], attrs: MaxPool2DAttrs) -> np.ndarray:
        data = np.asarray(inputs[0])
        layout = Layout.parse(f"NCHW{data.shape[4]}c")
        out = primal_op.evaluate([to_primal(data, layout)], attrs)
        return np.ascontiguousarray(from_primal(out, layout))

    return reference


max_pool2d_nchwc = register_op(
    "nn.max_pool2d_nchwc",
    MaxPool2DAttrs,
    OpPattern.COMM_REDUCE,
    num_inputs=1,
    doc="nn.max_pool2d on NCHW[x]c data (the window slides over H and W of every block)",
)
max_pool2d_nchwc.type_rule(_pool_nchwc_type)
max_pool2d_nchwc.reference(_pool_nchwc_reference(max_pool2d))
max_pool2d_nchwc.flop_rule(_pool_nchwc_flops)

avg_pool2d_nchwc = register_op(
    "nn.avg_pool2d_nchwc",
    AvgPool2DAttrs,
    OpPattern.COMM_REDUCE,
    num_inputs=1,
    doc="nn.avg_pool2d on NCHW[x]c data",
)
avg_pool2d_nchwc.type_rule(_pool_nchwc_type)
avg_pool2d_nchwc.reference(_pool_nchwc_reference(avg_pool2d))
avg_pool2d_nchwc.flop_rule(_pool_nchwc_flops)


__all__ = [
    "Layout",
    "avg_pool2d_nchwc",
    "conv2d_nchwc",
    "from_primal",
    "layout_transform",
    "max_pool2d_nchwc",
    "to_primal",
]
