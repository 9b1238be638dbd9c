"""TFLite converters: shape and data-movement ops (reshape, concat, slices, reductions).

Ops that depend on
the axis order work on the NHWC (framework) form of their input, except
concatenation, padding and reductions, which remap their axes and stay NCHW.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.frontend.common import int_list
from ember.frontend.nhwc import Value, batch_to_space, space_to_batch, strided_slice
from ember.frontend.tflite.context import TFLiteNode, activation, converter
from ember.frontend.tflite.schema import read_options, read_options_vector
from ember.graph.ir import TupleGetItem


@converter("RESHAPE")
def _reshape(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    if node.optional(1) is not None:
        newshape = int_list(node.const(1, "shape"))
    else:
        newshape = list(read_options_vector(node.options, 4))
    if newshape and newshape[0] == -1 and -1 in newshape[1:]:
        raise node.error(f"shape {newshape} has two -1 entries")
    return [b.apply("reshape", [b.fold_or_expr(x, name)], name, newshape=tuple(newshape))]


@converter("SQUEEZE")
def _squeeze(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    axes = read_options_vector(node.options, 4)
    if not axes:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    return [b.apply("squeeze", [b.fold_or_expr(x, name)], name, axes=tuple(axes))]


@converter("EXPAND_DIMS")
def _expand_dims(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    axis = int_list(node.const(1, "axis"))[0]
    axis = node.axis(axis, len(x.shape) + 1)
    return [b.apply("expand_dims", [b.fold_or_expr(x, name)], name, axes=(axis,))]


@converter("TRANSPOSE")
def _transpose(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    perm = tuple(int_list(node.const(1, "permutation")))
    return [b.apply("transpose", [b.fold_or_expr(node.input(0), name)], name, axes=perm)]


@converter("CONCATENATION")
def _concatenation(node: TFLiteNode) -> list[Value]:
    name = node.name
    opts = read_options(node.options, {"axis": (4, "i", 0), "act": (6, "b", 0)})
    values = [node.input(k) for k in range(len(node.operator.inputs))]
    out = node.builder.concat(values, opts["axis"], name)
    return [activation(node, out, opts["act"])]


@converter("PACK")
def _pack(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    axis = read_options(node.options, {"axis": (6, "i", 0)})["axis"]
    values = [node.input(k) for k in range(len(node.operator.inputs))]
    axis = node.axis(axis, len(values[0].shape) + 1)
    expanded = [
        b.apply("expand_dims", [b.fold_or_expr(v, name)], f"{name}/expand_{k}", axes=(axis,))
        for k, v in enumerate(values)
    ]
    return [b.apply("concatenate", [b.fold_or_expr(v, name) for v in expanded], name, axis=axis)]


@converter("UNPACK")
def _unpack(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    opts = read_options(node.options, {"num": (4, "i", 0), "axis": (6, "i", 0)})
    axis = node.axis(opts["axis"], len(x.shape))
    parts = _split(node, x, [1] * x.shape[axis], axis)
    return [
        b.apply("squeeze", [b.fold_or_expr(p, name)], f"{node.out_name(k)}", axes=(axis,))
        for k, p in enumerate(parts)
    ]


def _split(node: TFLiteNode, x: Value, sections: list[int], axis: int) -> list[Value]:
    b, name = node.builder, node.name
    if len(sections) == 1:
        return [x]
    whole = b.apply("split", [b.fold_or_expr(x, name)], name, axis=axis, sections=tuple(sections))
    if whole.array is not None:
        raise node.error("splitting a constant is not supported")
    return [Value(expr=TupleGetItem(whole.expr, k)) for k in range(len(sections))]


@converter("SPLIT")
def _split_op(node: TFLiteNode) -> list[Value]:
    axis = int_list(node.const(0, "axis"))[0]
    x = node.input(1)
    axis = node.axis(axis, len(x.shape))
    count = len(node.operator.outputs)
    if x.shape[axis] % count:
        raise node.error(
            f"axis {axis} of size {x.shape[axis]} does not split into {count} equal parts"
        )
    return _split(node, x, [x.shape[axis] // count] * count, axis)


@converter("SPLIT_V")
def _split_v(node: TFLiteNode) -> list[Value]:
    x = node.input(0)
    sizes = int_list(node.const(1, "size_splits"))
    axis = int_list(node.const(2, "axis"))[0]
    axis = node.axis(axis, len(x.shape))
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return _split(node, x, sizes, axis)


REDUCTIONS = {
    "MEAN": "reduce_mean",
    "SUM": "reduce_sum",
    "REDUCE_MAX": "reduce_max",
    "REDUCE_MIN": "reduce_min",
    "REDUCE_PROD": "reduce_prod",
}


@converter(*REDUCTIONS)
def _reduce(node: TFLiteNode) -> list[Value]:
    axes = int_list(node.const(1, "axes"))
    keepdims = read_options(node.options, {"keep_dims": (4, "?", False)})["keep_dims"]
    return [node.builder.reduce(REDUCTIONS[node.op], node.input(0), axes, keepdims, node.name)]


@converter("ARG_MAX", "ARG_MIN")
def _arg(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    axis = int_list(node.const(1, "axis"))[0]
    ember_op = "argmax" if node.op == "ARG_MAX" else "argmin"
    out = b.apply(ember_op, [b.fold_or_expr(node.input(0), name)], name, axis=axis, keepdims=False)
    if node.out_dtype() != out.dtype:
        out = b.unary("cast", out, f"{name}/cast", dtype=node.out_dtype())
    return [out]


@converter("PAD", "PADV2", "MIRROR_PAD")
def _pad(node: TFLiteNode) -> list[Value]:
    name = node.name
    pads = np.asarray(node.const(1, "paddings")).reshape(-1, 2)
    width = [(int(p[0]), int(p[1])) for p in pads]
    attrs: dict[str, Any] = {}
    if node.op == "PADV2" and node.optional(2) is not None:
        attrs["pad_value"] = float(np.asarray(node.const(2, "constant value")).reshape(-1)[0])
    if node.op == "MIRROR_PAD":
        if read_options(node.options, {"mode": (4, "b", 0)})["mode"] != 0:
            raise node.error("SYMMETRIC mode is not supported (REFLECT is)")
        attrs["mode"] = "reflect"
    return [node.builder.pad(node.input(0), width, name, **attrs)]


STRIDED_SLICE_OPTIONS = {
    "begin_mask": (4, "i", 0),
    "end_mask": (6, "i", 0),
    "ellipsis_mask": (8, "i", 0),
    "new_axis_mask": (10, "i", 0),
    "shrink_axis_mask": (12, "i", 0),
    "offset": (14, "?", False),
}


@converter("STRIDED_SLICE")
def _strided_slice(node: TFLiteNode) -> list[Value]:
    opts = read_options(node.options, STRIDED_SLICE_OPTIONS)
    begin = int_list(node.const(1, "begin"))
    end = int_list(node.const(2, "end"))
    strides = (
        int_list(node.const(3, "strides")) if node.optional(3) is not None else [1] * len(begin)
    )
    if opts.pop("offset"):
        end = [b_ + e for b_, e in zip(begin, end)]
    return [strided_slice(node.builder, node.input(0), begin, end, strides, opts, node.name)]


@converter("SLICE")
def _slice(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    x = node.input(0)
    begin = int_list(node.const(1, "begin"))
    size = int_list(node.const(2, "size"))
    end = [x.shape[i] if s == -1 else begin[i] + s for i, s in enumerate(size)]
    return [
        b.apply(
            "strided_slice",
            [b.fold_or_expr(x, name)],
            name,
            begin=tuple(begin),
            end=tuple(end),
            strides=(1,) * len(begin),
            axes=tuple(range(len(begin))),
        )
    ]


@converter("SHAPE")
def _shape(node: TFLiteNode) -> list[Value]:
    return [Value(array=np.asarray(node.input(0).shape, dtype=node.out_dtype()))]


@converter("GATHER")
def _gather(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    opts = read_options(node.options, {"axis": (4, "i", 0), "batch_dims": (6, "i", 0)})
    if opts["batch_dims"]:
        raise node.error("batch_dims is not supported")
    x, indices = node.input(0), node.input(1)
    args = [b.fold_or_expr(x, name), b.fold_or_expr(indices, f"{name}/indices")]
    return [b.apply("take", args, name, axis=opts["axis"])]


@converter("TILE")
def _tile(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    reps = tuple(int_list(node.const(1, "multiples")))
    return [b.apply("tile", [b.fold_or_expr(node.input(0), name)], name, reps=reps)]


@converter("BROADCAST_TO")
def _broadcast_to(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    shape = tuple(int_list(node.const(1, "shape")))
    return [b.apply("broadcast_to", [b.fold_or_expr(node.input(0), name)], name, shape=shape)]


@converter("BATCH_MATMUL")
def _batch_matmul(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    opts = read_options(node.options, {"adj_x": (4, "?", False), "adj_y": (6, "?", False)})
    args = []
    for k, adjoint in ((0, opts["adj_x"]), (1, opts["adj_y"])):
        value = node.input(k)
        expr = b.fold_or_expr(value, f"{name}/{k}")
        if adjoint:
            rank = len(value.shape)
            axes = (*range(rank - 2), rank - 1, rank - 2)
            expr = b.fold_or_expr(b.apply("transpose", [expr], f"{name}/adj{k}", axes=axes), name)
        args.append(expr)
    return [b.apply("nn.matmul", args, name)]


@converter("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize(node: TFLiteNode) -> list[Value]:
    name = node.name
    size = tuple(int_list(node.const(1, "size")))
    if node.op == "RESIZE_BILINEAR":
        opts = read_options(node.options, {"align": (8, "?", False), "half": (10, "?", False)})
        attrs = {"method": "linear"}
        mode = "half_pixel" if opts["half"] else "asymmetric"
    else:
        opts = read_options(node.options, {"align": (4, "?", False), "half": (6, "?", False)})
        # TF rounds half away from zero (coordinates are >= 0) or floors
        attrs = {
            "method": "nearest",
            "nearest_mode": "round_prefer_ceil" if opts["align"] else "floor",
        }
        mode = "tf_half_pixel_for_nn" if opts["half"] else "asymmetric"
    attrs["coordinate_transformation_mode"] = "align_corners" if opts["align"] else mode
    return [node.builder.nchw_call("image.resize2d", node.input(0), [], name, size=size, **attrs)]


@converter("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    block = read_options(node.options, {"block": (4, "i", 1)})["block"]
    x = node.input(0)
    n, h, w, ch = x.shape
    expr = b.fold_or_expr(x, name)
    if node.op == "DEPTH_TO_SPACE":  # NHWC, TF order: (block_h, block_w, C') inside C
        first, final = (
            (n, h, w, block, block, ch // block**2),
            (n, h * block, w * block, ch // block**2),
        )
    else:
        first, final = (
            (n, h // block, block, w // block, block, ch),
            (n, h // block, w // block, ch * block**2),
        )
    steps = [("reshape", {"newshape": first}), ("transpose", {"axes": (0, 1, 3, 2, 4, 5)})]
    steps.append(("reshape", {"newshape": final}))
    value = Value(expr=expr)
    for k, (ember_op, attrs) in enumerate(steps):
        value = b.apply(
            ember_op, [b.fold_or_expr(value, name)], name if k == 2 else f"{name}/{k}", **attrs
        )
    return [value]


@converter("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
def _space_batch(node: TFLiteNode) -> list[Value]:
    block = int_list(node.const(1, "block shape"))
    pads = np.asarray(node.const(2, "paddings")).reshape(-1, 2).tolist()
    fn = space_to_batch if node.op == "SPACE_TO_BATCH_ND" else batch_to_space
    return [fn(node.builder, node.input(0), block, pads, node.name)]


@converter("SELECT", "SELECT_V2")
def _select(node: TFLiteNode) -> list[Value]:
    b, name = node.builder, node.name
    args = [b.fold_or_expr(node.input(k), f"{name}/{k}") for k in range(3)]
    return [b.apply("where", args, name)]
