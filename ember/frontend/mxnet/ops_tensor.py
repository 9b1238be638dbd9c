"""MXNet converters: arithmetic, reductions and shape ops.

Reshape follows MXNet's special codes: ``0`` copies a dim, ``-1`` infers one,
``-2`` copies the rest, ``-3`` merges two dims, ``-4`` splits one in two::

    >>> mxnet_reshape((2, 3, 4), (0, -3))
    (2, 12)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ember.errors import FrontendError
from ember.frontend.common import scalar, shape_of
from ember.frontend.mxnet.context import ConverterFn, MXNetNode, converter
from ember.graph.ir import Expr

_BINARY = {
    "add": ("elemwise_add", "_Plus", "_plus", "_add", "broadcast_add", "broadcast_plus"),
    "subtract": ("elemwise_sub", "_Minus", "_minus", "_sub", "broadcast_sub", "broadcast_minus"),
    "multiply": ("elemwise_mul", "_Mul", "_mul", "broadcast_mul"),
    "divide": ("elemwise_div", "_Div", "_div", "broadcast_div"),
    "maximum": ("_Maximum", "_maximum", "broadcast_maximum"),
    "minimum": ("_Minimum", "_minimum", "broadcast_minimum"),
    "power": ("_Power", "_power", "broadcast_power"),
}


def _binary(op: str) -> ConverterFn:
    return lambda node: node.call(op, node.input(0), node.input(1))


for _ember_op, _names in _BINARY.items():
    converter(*_names)(_binary(_ember_op))

# _name: (ember op, scalar on the left?)
_SCALAR = {
    "_plus_scalar": ("add", False),
    "_PlusScalar": ("add", False),
    "_minus_scalar": ("subtract", False),
    "_MinusScalar": ("subtract", False),
    "_rminus_scalar": ("subtract", True),
    "_RMinusScalar": ("subtract", True),
    "_mul_scalar": ("multiply", False),
    "_MulScalar": ("multiply", False),
    "_div_scalar": ("divide", False),
    "_DivScalar": ("divide", False),
    "_rdiv_scalar": ("divide", True),
    "_RDivScalar": ("divide", True),
    "_power_scalar": ("power", False),
    "_PowerScalar": ("power", False),
    "_rpower_scalar": ("power", True),
    "_RPowerScalar": ("power", True),
    "_maximum_scalar": ("maximum", False),
    "_MaximumScalar": ("maximum", False),
    "_minimum_scalar": ("minimum", False),
    "_MinimumScalar": ("minimum", False),
}


def _scalar_op(op: str, reverse: bool) -> ConverterFn:
    def convert(node: MXNetNode) -> Expr:
        x = node.input(0)
        value = scalar(node.number("scalar", 0.0), x, name=f"{node.name}/scalar")
        return node.call(op, value, x) if reverse else node.call(op, x, value)

    return convert


for _name, (_ember_op, _reverse) in _SCALAR.items():
    converter(_name)(_scalar_op(_ember_op, _reverse))


@converter("Concat", "concat")
def _concat(node: MXNetNode) -> Expr:
    inputs = [node.input(i) for i in range(len(node.inputs))]
    if len(inputs) == 1:
        return inputs[0]
    return node.call("concatenate", *inputs, axis=int(node.get("dim", 1)))


@converter("Flatten", "flatten")
def _flatten(node: MXNetNode) -> Expr:
    return node.call("flatten", node.input(0), axis=1)


def mxnet_reshape(
    shape: Sequence[int], spec: Sequence[int], reverse: bool = False, what: str = "Reshape"
) -> tuple[int, ...]:
    """The output shape of MXNet's Reshape of ``shape`` by ``spec`` (special codes resolved)."""
    if reverse:
        # MXNet matches the codes from the right: reverse both, reshape, reverse back
        if -4 in spec:
            raise FrontendError(f"{what}: reverse=True with code -4 is not supported")
        return tuple(reversed(mxnet_reshape(tuple(reversed(shape)), spec[::-1], False, what)))
    dims = list(shape)
    out: list[int] = []
    infer_at = -1
    src = 0
    i = 0

    def fail(reason: str) -> FrontendError:
        return FrontendError(f"{what}: cannot reshape {tuple(shape)} by {tuple(spec)}: {reason}")

    while i < len(spec):
        code = int(spec[i])
        if code == 0:
            if src >= len(dims):
                raise fail("code 0 copies a dim the input does not have")
            out.append(dims[src])
            src += 1
        elif code == -1:
            if infer_at >= 0:
                raise fail("more than one -1")
            infer_at = len(out)
            out.append(-1)
            src += 1
        elif code == -2:
            out.extend(dims[src:])
            src = len(dims)
        elif code == -3:
            if src + 1 >= len(dims):
                raise fail("code -3 merges two dims the input does not have")
            out.append(dims[src] * dims[src + 1])
            src += 2
        elif code == -4:
            if i + 2 >= len(spec) or src >= len(dims):
                raise fail("code -4 must be followed by two sizes and split an existing dim")
            first, second = int(spec[i + 1]), int(spec[i + 2])
            if first == -1:
                first = dims[src] // second if second > 0 else -1
            if second == -1:
                second = dims[src] // first if first > 0 else -1
            if first <= 0 or second <= 0 or first * second != dims[src]:
                raise fail(f"cannot split dim {dims[src]} into ({spec[i + 1]}, {spec[i + 2]})")
            out.extend((first, second))
            src += 1
            i += 2
        elif code > 0:
            out.append(code)
            src += 1
        else:
            raise fail(f"unknown code {code}")
        i += 1
    total = math.prod(dims)
    if infer_at >= 0:
        known = math.prod(d for j, d in enumerate(out) if j != infer_at)
        if known == 0 or total % known:
            raise fail(f"{total} elements do not split into {out}")
        out[infer_at] = total // known
    if math.prod(out) != total:
        raise fail(f"{total} elements cannot take shape {tuple(out)}")
    return tuple(out)


@converter("Reshape", "reshape")
def _reshape(node: MXNetNode) -> Expr:
    if node.ints("target_shape"):
        raise node.error("the legacy target_shape attribute is not supported; use shape")
    x = node.input(0)
    newshape = mxnet_reshape(
        shape_of(x),
        node.ints("shape"),
        node.flag("reverse", False),
        what=f"MXNet node {node.name!r} (Reshape)",
    )
    return node.call("reshape", x, newshape=newshape)


@converter("transpose")
def _transpose(node: MXNetNode) -> Expr:
    axes = node.ints("axes")
    return node.call("transpose", node.input(0), axes=axes or None)


@converter("SwapAxis", "swapaxes")
def _swapaxes(node: MXNetNode) -> Expr:
    x = node.input(0)
    rank = len(shape_of(x))
    first = node.axis(int(node.get("dim1", 0)), rank)
    second = node.axis(int(node.get("dim2", 0)), rank)
    axes = list(range(rank))
    axes[first], axes[second] = axes[second], axes[first]
    return node.call("transpose", x, axes=tuple(axes))


@converter("expand_dims")
def _expand_dims(node: MXNetNode) -> Expr:
    x = node.input(0)
    axis = int(node.required("axis"))
    rank = len(shape_of(x)) + 1
    return node.call("expand_dims", x, axes=(node.axis(axis, rank),))


@converter("squeeze")
def _squeeze(node: MXNetNode) -> Expr:
    axes = node.ints("axis") or None
    return node.call("squeeze", node.input(0), axes=axes)


@converter("slice_axis")
def _slice_axis(node: MXNetNode) -> Expr:
    x = node.input(0)
    axis = node.axis(int(node.required("axis")), len(shape_of(x)))
    begin = int(node.get("begin", 0))
    end = node.get("end")
    end = shape_of(x)[axis] if end is None else int(end)
    return node.call("strided_slice", x, begin=(begin,), end=(end,), axes=(axis,))


@converter("slice", "crop")
def _slice(node: MXNetNode) -> Expr:
    x = node.input(0)
    shape = shape_of(x)
    begin = node.get("begin", ())
    end = node.get("end", ())
    step = node.get("step", ()) or (None,) * len(begin)
    if not len(begin) == len(end) == len(step):
        raise node.error(f"begin {begin}, end {end} and step {step} differ in length")
    starts, stops, strides = [], [], []
    for axis, (b, e, s) in enumerate(zip(begin, end, step)):
        s = 1 if s is None else int(s)
        if s == 0:
            raise node.error(f"step 0 on axis {axis}")
        starts.append((0 if s > 0 else shape[axis] - 1) if b is None else int(b))
        stops.append((shape[axis] if s > 0 else -shape[axis] - 1) if e is None else int(e))
        strides.append(s)
    return node.call(
        "strided_slice", x, begin=tuple(starts), end=tuple(stops), strides=tuple(strides)
    )


def _reduce(op: str) -> ConverterFn:
    def convert(node: MXNetNode) -> Expr:
        x = node.input(0)
        rank = len(shape_of(x))
        axes = node.get("axis", ())
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        axes = tuple(node.axis(int(a), rank) for a in axes)
        if node.flag("exclude", False):
            axes = tuple(a for a in range(rank) if a not in axes)
        elif not axes:
            axes = tuple(range(rank))
        return node.call(op, x, axes=axes, keepdims=node.flag("keepdims", False))

    return convert


for _name, _ember_op in (
    ("sum", "reduce_sum"),
    ("sum_axis", "reduce_sum"),
    ("mean", "reduce_mean"),
    ("max", "reduce_max"),
    ("max_axis", "reduce_max"),
    ("min", "reduce_min"),
    ("min_axis", "reduce_min"),
    ("prod", "reduce_prod"),
):
    converter(_name)(_reduce(_ember_op))


@converter("Pad", "pad")
def _pad(node: MXNetNode) -> Expr:
    widths = node.ints("pad_width")
    x = node.input(0)
    if len(widths) != 2 * len(shape_of(x)):
        raise node.error(f"pad_width {widths} must give two values per axis of {shape_of(x)}")
    mode = node.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise node.error(f"mode {mode!r} is not supported (constant, edge, reflect)")
    pairs = tuple((widths[i], widths[i + 1]) for i in range(0, len(widths), 2))
    return node.call(
        "nn.pad", x, pad_width=pairs, pad_value=node.number("constant_value", 0.0), mode=mode
    )


@converter("SliceChannel", "split")
def _split(node: MXNetNode) -> list[Expr]:
    x = node.input(0)
    shape = shape_of(x)
    axis = node.axis(int(node.get("axis", 1)), len(shape))
    parts = int(node.required("num_outputs"))
    if parts <= 0 or shape[axis] % parts:
        raise node.error(f"cannot split axis {axis} of size {shape[axis]} into {parts} equal parts")
    size = shape[axis] // parts
    outputs = []
    for i in range(parts):
        piece = node.call(
            "strided_slice",
            x,
            suffix=f"/{i}",
            begin=(i * size,),
            end=((i + 1) * size,),
            axes=(axis,),
        )
        if node.flag("squeeze_axis", False):
            piece = node.call("squeeze", piece, suffix=f"/{i}/squeeze", axes=(axis,))
        outputs.append(piece)
    return outputs


@converter("dot")
def _dot(node: MXNetNode) -> Expr:
    a, b = node.input(0), node.input(1)
    if len(shape_of(a)) != 2 or len(shape_of(b)) != 2:
        raise node.error("dot of tensors of rank other than 2 is not supported")
    if node.flag("transpose_a", False):
        a = node.call("transpose", a, suffix="/transpose_a", axes=(1, 0))
    if node.flag("transpose_b", False):
        b = node.call("transpose", b, suffix="/transpose_b", axes=(1, 0))
    return node.call("nn.matmul", a, b)


@converter("batch_dot")
def _batch_dot(node: MXNetNode) -> Expr:
    return node.call(
        "nn.batch_matmul",
        node.input(0),
        node.input(1),
        transpose_a=node.flag("transpose_a", False),
        transpose_b=node.flag("transpose_b", False),
    )


@converter("Cast", "cast")
def _cast(node: MXNetNode) -> Expr:
    return node.call("cast", node.input(0), dtype=str(node.required("dtype")))
