"""TensorFlow converters: shape and data-movement ops (reshape, concat, slices, reductions).

Shape-only ops (``Shape``, ``Rank``, ``Size``, ``Fill``, ``Range``) produce import-time
constants, so the graph ends with static shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.frontend.common import int_list
from ember.frontend.nhwc import NHWCBuilder, Value, batch_to_space, space_to_batch, strided_slice
from ember.frontend.tensorflow.context import TFNode, converter
from ember.frontend.tensorflow.proto import DTYPES
from ember.graph.ir import TupleGetItem


@converter("Shape")
def _shape(node: TFNode) -> list[Value]:
    dtype = DTYPES.get(node.attrs.get("out_type", 3)) or "int32"
    return [Value(array=np.asarray(node.input(0).shape, dtype=dtype))]


@converter("Rank")
def _rank(node: TFNode) -> list[Value]:
    return [Value(array=np.asarray(len(node.input(0).shape), dtype="int32"))]


@converter("Size")
def _size(node: TFNode) -> list[Value]:
    dtype = DTYPES.get(node.attrs.get("out_type", 3)) or "int32"
    return [Value(array=np.asarray(np.prod(node.input(0).shape), dtype=dtype))]


@converter("Fill")
def _fill(node: TFNode) -> list[Value]:
    dims = int_list(node.const(0, "dims"))
    value = node.const(1, "value")
    return [Value(array=np.full(dims, value, dtype=value.dtype))]


@converter("Range")
def _range(node: TFNode) -> list[Value]:
    start, limit, delta = (
        node.const(k, what) for k, what in enumerate(("start", "limit", "delta"))
    )
    return [Value(array=np.arange(start, limit, delta).astype(start.dtype))]


@converter("Reshape")
def _reshape(node: TFNode) -> list[Value]:
    b = node.builder
    newshape = tuple(int_list(node.const(1, "shape")))
    return [
        b.apply("reshape", [b.fold_or_expr(node.input(0), node.name)], node.name, newshape=newshape)
    ]


@converter("Squeeze")
def _squeeze(node: TFNode) -> list[Value]:
    b = node.builder
    x = node.input(0)
    axes = int_list(node.attrs.get("squeeze_dims", []))
    if not axes:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [b.apply("squeeze", [b.fold_or_expr(x, node.name)], node.name, axes=tuple(axes))]


@converter("ExpandDims")
def _expand_dims(node: TFNode) -> list[Value]:
    b = node.builder
    x = node.input(0)
    axis = node.axis(int_list(node.const(1, "axis"))[0], len(x.shape) + 1)
    return [b.apply("expand_dims", [b.fold_or_expr(x, node.name)], node.name, axes=(axis,))]


@converter("Transpose")
def _transpose(node: TFNode) -> list[Value]:
    b = node.builder
    perm = tuple(int_list(node.const(1, "perm")))
    return [b.apply("transpose", [b.fold_or_expr(node.input(0), node.name)], node.name, axes=perm)]


@converter("ConcatV2", "Concat")
def _concat(node: TFNode) -> list[Value]:
    count = len(node.inputs())
    if node.op == "ConcatV2":  # the axis comes last; "Concat" (TF 1.0) has it first
        axis, values = (
            node.const(count - 1, "axis"),
            [node.input(k) for k in range(count - 1)],
        )
    else:
        axis, values = node.const(0, "axis"), [node.input(k) for k in range(1, count)]
    return [node.builder.concat(values, int_list(axis)[0], node.name)]


@converter("Pack")
def _pack(node: TFNode) -> list[Value]:
    b = node.builder
    values = [node.input(k) for k in range(len(node.inputs()))]
    axis = node.axis(int(node.attrs.get("axis", 0)), len(values[0].shape) + 1)
    parts = [
        b.fold_or_expr(
            b.apply(
                "expand_dims", [b.fold_or_expr(v, node.name)], f"{node.name}/{k}", axes=(axis,)
            ),
            node.name,
        )
        for k, v in enumerate(values)
    ]
    return [b.apply("concatenate", parts, node.name, axis=axis)]


def _split(b: NHWCBuilder, x: Value, sections: list[int], axis: int, name: str) -> list[Value]:
    if len(sections) == 1:
        return [x]
    if x.array is not None:
        cuts = np.cumsum(sections)[:-1]
        return [Value(array=part) for part in np.split(x.array, cuts, axis=axis)]
    whole = b.apply("split", [b.expr(x, name)], name, axis=axis, sections=tuple(sections))
    return [Value(expr=TupleGetItem(whole.expr, k)) for k in range(len(sections))]


@converter("Split")
def _split_op(node: TFNode) -> list[Value]:
    x = node.input(1)
    axis = node.axis(int_list(node.const(0, "axis"))[0], len(x.shape))
    count = int(node.attrs.get("num_split", 1))
    if x.shape[axis] % count:
        raise node.error(
            f"axis {axis} of size {x.shape[axis]} does not split into {count} equal parts"
        )
    return _split(node.builder, x, [x.shape[axis] // count] * count, axis, node.name)


@converter("SplitV")
def _split_v(node: TFNode) -> list[Value]:
    x = node.input(0)
    sizes = int_list(node.const(1, "size_splits"))
    axis = node.axis(int_list(node.const(2, "axis"))[0], len(x.shape))
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return _split(node.builder, x, sizes, axis, node.name)


@converter("Unpack")
def _unpack(node: TFNode) -> list[Value]:
    b = node.builder
    x = node.input(0)
    axis = node.axis(int(node.attrs.get("axis", 0)), len(x.shape))
    parts = _split(node.builder, x, [1] * x.shape[axis], axis, node.name)
    return [
        b.apply("squeeze", [b.fold_or_expr(p, node.name)], f"{node.name}:{k}", axes=(axis,))
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
def _reduce(node: TFNode) -> list[Value]:
    axes = int_list(node.const(1, "reduction indices"))
    keepdims = bool(node.attrs.get("keep_dims", False))
    return [node.builder.reduce(REDUCTIONS[node.op], node.input(0), axes, keepdims, node.name)]


@converter("ArgMax", "ArgMin")
def _arg(node: TFNode) -> list[Value]:
    b = node.builder
    axis = int_list(node.const(1, "dimension"))[0]
    op = "argmax" if node.op == "ArgMax" else "argmin"
    out = b.apply(
        op, [b.fold_or_expr(node.input(0), node.name)], node.name, axis=axis, keepdims=False
    )
    dtype = DTYPES.get(node.attrs.get("output_type", 9)) or "int64"
    return [out if dtype == out.dtype else b.unary("cast", out, f"{node.name}/cast", dtype=dtype)]


@converter("Pad", "PadV2", "MirrorPad")
def _pad(node: TFNode) -> list[Value]:
    pads = np.asarray(node.const(1, "paddings")).reshape(-1, 2)
    width = [(int(p[0]), int(p[1])) for p in pads]
    attrs: dict[str, Any] = {}
    if node.op == "PadV2":
        attrs["pad_value"] = float(np.asarray(node.const(2, "constant value")).reshape(-1)[0])
    if node.op == "MirrorPad":
        mode = node.attrs.get("mode", "REFLECT")
        if mode != "REFLECT":
            raise node.error(f"mode {mode} is not supported")
        attrs["mode"] = "reflect"
    return [node.builder.pad(node.input(0), width, node.name, **attrs)]


@converter("StridedSlice")
def _strided_slice(node: TFNode) -> list[Value]:
    begin, end, strides = (
        int_list(node.const(k, w)) for k, w in ((1, "begin"), (2, "end"), (3, "strides"))
    )
    masks = {
        key: int(node.attrs.get(key, 0))
        for key in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
    }
    return [strided_slice(node.builder, node.input(0), begin, end, strides, masks, node.name)]


@converter("Slice")
def _slice(node: TFNode) -> list[Value]:
    b = node.builder
    x = node.input(0)
    begin, size = int_list(node.const(1, "begin")), int_list(node.const(2, "size"))
    end = [x.shape[i] if s == -1 else begin[i] + s for i, s in enumerate(size)]
    attrs = dict(
        begin=tuple(begin), end=tuple(end), strides=(1,) * len(begin), axes=tuple(range(len(begin)))
    )
    return [b.apply("strided_slice", [b.fold_or_expr(x, node.name)], node.name, **attrs)]


@converter("GatherV2", "Gather")
def _gather(node: TFNode) -> list[Value]:
    b = node.builder
    if int(node.attrs.get("batch_dims", 0)):
        raise node.error("batch_dims is not supported")
    axis = int_list(node.const(2, "axis"))[0] if node.op == "GatherV2" else 0
    args = [
        b.fold_or_expr(node.input(0), node.name),
        b.fold_or_expr(node.input(1), node.name),
    ]
    return [b.apply("take", args, node.name, axis=axis)]


@converter("Tile")
def _tile(node: TFNode) -> list[Value]:
    b = node.builder
    reps = tuple(int_list(node.const(1, "multiples")))
    return [b.apply("tile", [b.fold_or_expr(node.input(0), node.name)], node.name, reps=reps)]


@converter("BroadcastTo")
def _broadcast_to(node: TFNode) -> list[Value]:
    b = node.builder
    shape = tuple(int_list(node.const(1, "shape")))
    return [
        b.apply("broadcast_to", [b.fold_or_expr(node.input(0), node.name)], node.name, shape=shape)
    ]


@converter("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(node: TFNode) -> list[Value]:
    size = tuple(int_list(node.const(1, "size")))
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
        node.builder.nchw_call("image.resize2d", node.input(0), [], node.name, size=size, **attrs)
    ]


@converter("DepthToSpace", "SpaceToDepth")
def _depth_space(node: TFNode) -> list[Value]:
    b = node.builder
    if node.attrs.get("data_format", "NHWC") != "NHWC":
        raise node.error("only NHWC is supported")
    block = int(node.attrs.get("block_size", 2))
    n, h, w, ch = node.input(0).shape
    if node.op == "DepthToSpace":
        first = (n, h, w, block, block, ch // block**2)
        final = (n, h * block, w * block, ch // block**2)
    else:
        first = (n, h // block, block, w // block, block, ch)
        final = (n, h // block, w // block, ch * block**2)
    value = node.input(0)
    steps = [("reshape", {"newshape": first}), ("transpose", {"axes": (0, 1, 3, 2, 4, 5)})]
    for k, (op, attrs) in enumerate([*steps, ("reshape", {"newshape": final})]):
        name = node.name if k == 2 else f"{node.name}/{k}"
        value = b.apply(op, [b.fold_or_expr(value, node.name)], name, **attrs)
    return [value]


@converter("SpaceToBatchND", "BatchToSpaceND")
def _space_batch(node: TFNode) -> list[Value]:
    block = int_list(node.const(1, "block shape"))
    pads = np.asarray(node.const(2, "paddings")).reshape(-1, 2).tolist()
    fn = space_to_batch if node.op == "SpaceToBatchND" else batch_to_space
    return [fn(node.builder, node.input(0), block, pads, node.name)]


@converter("Select", "SelectV2")
def _select(node: TFNode) -> list[Value]:
    b = node.builder
    args = [b.fold_or_expr(node.input(k), f"{node.name}/{k}") for k in range(3)]
    return [b.apply("where", args, node.name)]
