"""TensorFlow converters of shape and data-movement ops (reshape, concat, slices, reductions).

Registered into :data:`ember.frontend.tensorflow_ops.CONVERTERS`. Shape-only
ops (``Shape``, ``Rank``, ``Size``, ``Fill``, ``Range``) produce import-time
constants, so the graph ends with static shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.tensorflow_common import Value, batch_to_space, space_to_batch, strided_slice
from ember.frontend.tensorflow_ops import _ints, converter
from ember.frontend.tensorflow_proto import DTYPES, NodeDef
from ember.graph.ir import TupleGetItem


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


@converter("Shape")
def _shape(c: Any, node: NodeDef) -> list[Value]:
    dtype = DTYPES.get(node.attrs.get("out_type", 3)) or "int32"
    return [Value(array=np.asarray(c.input(node, 0).shape, dtype=dtype))]


@converter("Rank")
def _rank(c: Any, node: NodeDef) -> list[Value]:
    return [Value(array=np.asarray(len(c.input(node, 0).shape), dtype="int32"))]


@converter("Size")
def _size(c: Any, node: NodeDef) -> list[Value]:
    dtype = DTYPES.get(node.attrs.get("out_type", 3)) or "int32"
    return [Value(array=np.asarray(np.prod(c.input(node, 0).shape), dtype=dtype))]


@converter("Fill")
def _fill(c: Any, node: NodeDef) -> list[Value]:
    dims = _ints(c.const(node, 0, "dims"))
    value = c.const(node, 1, "value")
    return [Value(array=np.full(dims, value, dtype=value.dtype))]


@converter("Range")
def _range(c: Any, node: NodeDef) -> list[Value]:
    start, limit, delta = (
        c.const(node, k, what) for k, what in enumerate(("start", "limit", "delta"))
    )
    return [Value(array=np.arange(start, limit, delta).astype(start.dtype))]


@converter("Reshape")
def _reshape(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    newshape = tuple(_ints(c.const(node, 1, "shape")))
    return [
        b.call(
            "reshape", [b.fold_or_expr(c.input(node, 0), node.name)], node.name, newshape=newshape
        )
    ]


@converter("Squeeze")
def _squeeze(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    x = c.input(node, 0)
    axes = _ints(node.attrs.get("squeeze_dims", []))
    if not axes:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [b.call("squeeze", [b.fold_or_expr(x, node.name)], node.name, axes=tuple(axes))]


@converter("ExpandDims")
def _expand_dims(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    x = c.input(node, 0)
    axis = _axis(_ints(c.const(node, 1, "axis"))[0], len(x.shape) + 1)
    return [b.call("expand_dims", [b.fold_or_expr(x, node.name)], node.name, axes=(axis,))]


@converter("Transpose")
def _transpose(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    perm = tuple(_ints(c.const(node, 1, "perm")))
    return [
        b.call("transpose", [b.fold_or_expr(c.input(node, 0), node.name)], node.name, axes=perm)
    ]


@converter("ConcatV2", "Concat")
def _concat(c: Any, node: NodeDef) -> list[Value]:
    count = len(c.inputs(node))
    if node.op == "ConcatV2":  # the axis comes last; "Concat" (TF 1.0) has it first
        axis, values = (
            c.const(node, count - 1, "axis"),
            [c.input(node, k) for k in range(count - 1)],
        )
    else:
        axis, values = c.const(node, 0, "axis"), [c.input(node, k) for k in range(1, count)]
    return [c.builder.concat(values, _ints(axis)[0], node.name)]


@converter("Pack")
def _pack(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    values = [c.input(node, k) for k in range(len(c.inputs(node)))]
    axis = _axis(int(node.attrs.get("axis", 0)), len(values[0].shape) + 1)
    parts = [
        b.fold_or_expr(
            b.call("expand_dims", [b.fold_or_expr(v, node.name)], f"{node.name}/{k}", axes=(axis,)),
            node.name,
        )
        for k, v in enumerate(values)
    ]
    return [b.call("concatenate", parts, node.name, axis=axis)]


def _split(c: Any, x: Value, sections: list[int], axis: int, name: str) -> list[Value]:
    b = c.builder
    if len(sections) == 1:
        return [x]
    if x.array is not None:
        cuts = np.cumsum(sections)[:-1]
        return [Value(array=part) for part in np.split(x.array, cuts, axis=axis)]
    whole = b.call("split", [b.expr(x, name)], name, axis=axis, sections=tuple(sections))
    return [Value(expr=TupleGetItem(whole.expr, k)) for k in range(len(sections))]


@converter("Split")
def _split_op(c: Any, node: NodeDef) -> list[Value]:
    x = c.input(node, 1)
    axis = _axis(_ints(c.const(node, 0, "axis"))[0], len(x.shape))
    count = int(node.attrs.get("num_split", 1))
    if x.shape[axis] % count:
        raise FrontendError(
            f"TensorFlow Split {node.name!r}: axis {axis} of size {x.shape[axis]} does not split "
            f"into {count} equal parts"
        )
    return _split(c, x, [x.shape[axis] // count] * count, axis, node.name)


@converter("SplitV")
def _split_v(c: Any, node: NodeDef) -> list[Value]:
    x = c.input(node, 0)
    sizes = _ints(c.const(node, 1, "size_splits"))
    axis = _axis(_ints(c.const(node, 2, "axis"))[0], len(x.shape))
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return _split(c, x, sizes, axis, node.name)


@converter("Unpack")
def _unpack(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    x = c.input(node, 0)
    axis = _axis(int(node.attrs.get("axis", 0)), len(x.shape))
    parts = _split(c, x, [1] * x.shape[axis], axis, node.name)
    return [
        b.call("squeeze", [b.fold_or_expr(p, node.name)], f"{node.name}:{k}", axes=(axis,))
        for k, p in enumerate(parts)
    ]


REDUCTIONS = {
    "Mean": "reduce_mean",
    "Sum": "reduce_sum",
    "Max": "reduce_max",
    "Min": "reduce_min",
    "Prod": "reduce_prod",
}


@converter(*REDUCTIONS)
def _reduce(c: Any, node: NodeDef) -> list[Value]:
    axes = _ints(c.const(node, 1, "reduction indices"))
    keepdims = bool(node.attrs.get("keep_dims", False))
    return [c.builder.reduce(REDUCTIONS[node.op], c.input(node, 0), axes, keepdims, node.name)]


@converter("ArgMax", "ArgMin")
def _arg(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    axis = _ints(c.const(node, 1, "dimension"))[0]
    op = "argmax" if node.op == "ArgMax" else "argmin"
    out = b.call(
        op, [b.fold_or_expr(c.input(node, 0), node.name)], node.name, axis=axis, keepdims=False
    )
    dtype = DTYPES.get(node.attrs.get("output_type", 9)) or "int64"
    return [out if dtype == out.dtype else b.unary("cast", out, f"{node.name}/cast", dtype=dtype)]


@converter("Pad", "PadV2", "MirrorPad")
def _pad(c: Any, node: NodeDef) -> list[Value]:
    pads = np.asarray(c.const(node, 1, "paddings")).reshape(-1, 2)
    width = [(int(p[0]), int(p[1])) for p in pads]
    attrs: dict[str, Any] = {}
    if node.op == "PadV2":
        attrs["pad_value"] = float(np.asarray(c.const(node, 2, "constant value")).reshape(-1)[0])
    if node.op == "MirrorPad":
        mode = node.attrs.get("mode", "REFLECT")
        if mode != "REFLECT":
            raise FrontendError(f"TensorFlow MirrorPad {node.name!r}: mode {mode} is not supported")
        attrs["mode"] = "reflect"
    return [c.builder.pad(c.input(node, 0), width, node.name, **attrs)]


@converter("StridedSlice")
def _strided_slice(c: Any, node: NodeDef) -> list[Value]:
    begin, end, strides = (
        _ints(c.const(node, k, w)) for k, w in ((1, "begin"), (2, "end"), (3, "strides"))
    )
    masks = {
        key: int(node.attrs.get(key, 0))
        for key in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
    }
    return [strided_slice(c.builder, c.input(node, 0), begin, end, strides, masks, node.name)]


@converter("Slice")
def _slice(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    x = c.input(node, 0)
    begin, size = _ints(c.const(node, 1, "begin")), _ints(c.const(node, 2, "size"))
    end = [x.shape[i] if s == -1 else begin[i] + s for i, s in enumerate(size)]
    attrs = dict(
        begin=tuple(begin), end=tuple(end), strides=(1,) * len(begin), axes=tuple(range(len(begin)))
    )
    return [b.call("strided_slice", [b.fold_or_expr(x, node.name)], node.name, **attrs)]


@converter("GatherV2", "Gather")
def _gather(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    if int(node.attrs.get("batch_dims", 0)):
        raise FrontendError(f"TensorFlow {node.op} {node.name!r}: batch_dims is not supported")
    axis = _ints(c.const(node, 2, "axis"))[0] if node.op == "GatherV2" else 0
    args = [
        b.fold_or_expr(c.input(node, 0), node.name),
        b.fold_or_expr(c.input(node, 1), node.name),
    ]
    return [b.call("take", args, node.name, axis=axis)]


@converter("Tile")
def _tile(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    reps = tuple(_ints(c.const(node, 1, "multiples")))
    return [b.call("tile", [b.fold_or_expr(c.input(node, 0), node.name)], node.name, reps=reps)]


@converter("BroadcastTo")
def _broadcast_to(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    shape = tuple(_ints(c.const(node, 1, "shape")))
    return [
        b.call(
            "broadcast_to", [b.fold_or_expr(c.input(node, 0), node.name)], node.name, shape=shape
        )
    ]


@converter("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(c: Any, node: NodeDef) -> list[Value]:
    size = tuple(_ints(c.const(node, 1, "size")))
    align = bool(node.attrs.get("align_corners", False))
    half = bool(node.attrs.get("half_pixel_centers", False))
    if node.op == "ResizeBilinear":
        attrs = {"method": "linear"}
        mode = "half_pixel" if half else "asymmetric"
    else:  # TF rounds half away from zero (coordinates are >= 0) or floors
        attrs = {"method": "nearest", "nearest_mode": "round_prefer_ceil" if align else "floor"}
        mode = "tf_half_pixel_for_nn" if half else "asymmetric"
    attrs["coordinate_transformation_mode"] = "align_corners" if align else mode
    return [
        c.builder.nchw_call("image.resize2d", c.input(node, 0), [], node.name, size=size, **attrs)
    ]


@converter("DepthToSpace", "SpaceToDepth")
def _depth_space(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    if node.attrs.get("data_format", "NHWC") != "NHWC":
        raise FrontendError(f"TensorFlow {node.op} {node.name!r}: only NHWC is supported")
    block = int(node.attrs.get("block_size", 2))
    n, h, w, ch = c.input(node, 0).shape
    if node.op == "DepthToSpace":
        first = (n, h, w, block, block, ch // block**2)
        final = (n, h * block, w * block, ch // block**2)
    else:
        first = (n, h // block, block, w // block, block, ch)
        final = (n, h // block, w // block, ch * block**2)
    value = c.input(node, 0)
    steps = [("reshape", {"newshape": first}), ("transpose", {"axes": (0, 1, 3, 2, 4, 5)})]
    for k, (op, attrs) in enumerate([*steps, ("reshape", {"newshape": final})]):
        name = node.name if k == 2 else f"{node.name}/{k}"
        value = b.call(op, [b.fold_or_expr(value, node.name)], name, **attrs)
    return [value]


@converter("SpaceToBatchND", "BatchToSpaceND")
def _space_batch(c: Any, node: NodeDef) -> list[Value]:
    block = _ints(c.const(node, 1, "block shape"))
    pads = np.asarray(c.const(node, 2, "paddings")).reshape(-1, 2).tolist()
    fn = space_to_batch if node.op == "SpaceToBatchND" else batch_to_space
    return [fn(c.builder, c.input(node, 0), block, pads, node.name)]


@converter("Select", "SelectV2")
def _select(c: Any, node: NodeDef) -> list[Value]:
    b = c.builder
    args = [b.fold_or_expr(c.input(node, k), f"{node.name}/{k}") for k in range(3)]
    return [b.call("where", args, node.name)]
