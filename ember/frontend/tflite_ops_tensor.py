"""TFLite converters of shape and data-movement ops (reshape, concat, slices, reductions).

Registered into :data:`ember.frontend.tflite_ops.CONVERTERS`. Ops that depend on
the axis order work on the NHWC (framework) form of their input, except
concatenation, padding and reductions, which remap their axes and stay NCHW.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.tensorflow_common import Value, batch_to_space, space_to_batch, strided_slice
from ember.frontend.tflite_ops import activation, converter
from ember.frontend.tflite_schema import read_options, read_options_vector
from ember.graph.ir import TupleGetItem


def _ints(array: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(array).reshape(-1)]


@converter("RESHAPE")
def _reshape(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    if c.optional(op, 1) is not None:
        newshape = _ints(c.const(op, 1, "shape"))
    else:
        newshape = list(read_options_vector(op.options, 4))
    if newshape and newshape[0] == -1 and -1 in newshape[1:]:
        raise FrontendError(f"TFLite RESHAPE {name!r}: shape {newshape} has two -1 entries")
    return [b.call("reshape", [b.fold_or_expr(x, name)], name, newshape=tuple(newshape))]


@converter("SQUEEZE")
def _squeeze(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    axes = read_options_vector(op.options, 4)
    if not axes:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    return [b.call("squeeze", [b.fold_or_expr(x, name)], name, axes=tuple(axes))]


@converter("EXPAND_DIMS")
def _expand_dims(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    axis = _ints(c.const(op, 1, "axis"))[0]
    axis = axis + len(x.shape) + 1 if axis < 0 else axis
    return [b.call("expand_dims", [b.fold_or_expr(x, name)], name, axes=(axis,))]


@converter("TRANSPOSE")
def _transpose(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    perm = tuple(_ints(c.const(op, 1, "permutation")))
    return [b.call("transpose", [b.fold_or_expr(c.input(op, 0), name)], name, axes=perm)]


@converter("CONCATENATION")
def _concatenation(c: Any, op: Any) -> list[Value]:
    name = c.out_name(op)
    opts = read_options(op.options, {"axis": (4, "i", 0), "act": (6, "b", 0)})
    values = [c.input(op, k) for k in range(len(op.inputs))]
    out = c.builder.concat(values, opts["axis"], name)
    return [activation(c, out, opts["act"], name)]


@converter("PACK")
def _pack(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    axis = read_options(op.options, {"axis": (6, "i", 0)})["axis"]
    values = [c.input(op, k) for k in range(len(op.inputs))]
    axis = axis + len(values[0].shape) + 1 if axis < 0 else axis
    expanded = [
        b.call("expand_dims", [b.fold_or_expr(v, name)], f"{name}/expand_{k}", axes=(axis,))
        for k, v in enumerate(values)
    ]
    return [b.call("concatenate", [b.fold_or_expr(v, name) for v in expanded], name, axis=axis)]


@converter("UNPACK")
def _unpack(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    opts = read_options(op.options, {"num": (4, "i", 0), "axis": (6, "i", 0)})
    axis = opts["axis"] + len(x.shape) if opts["axis"] < 0 else opts["axis"]
    parts = _split(c, x, [1] * x.shape[axis], axis, name)
    return [
        b.call("squeeze", [b.fold_or_expr(p, name)], f"{c.out_name(op, k)}", axes=(axis,))
        for k, p in enumerate(parts)
    ]


def _split(c: Any, x: Value, sections: list[int], axis: int, name: str) -> list[Value]:
    b = c.builder
    if len(sections) == 1:
        return [x]
    whole = b.call("split", [b.fold_or_expr(x, name)], name, axis=axis, sections=tuple(sections))
    if whole.array is not None:
        raise FrontendError(f"TFLite SPLIT {name!r} of a constant is not supported")
    return [Value(expr=TupleGetItem(whole.expr, k)) for k in range(len(sections))]


@converter("SPLIT")
def _split_op(c: Any, op: Any) -> list[Value]:
    axis = _ints(c.const(op, 0, "axis"))[0]
    x = c.input(op, 1)
    axis = axis + len(x.shape) if axis < 0 else axis
    count = len(op.outputs)
    if x.shape[axis] % count:
        raise FrontendError(
            f"TFLite SPLIT {c.out_name(op)!r}: axis {axis} of size {x.shape[axis]} does not "
            f"split into {count} equal parts"
        )
    return _split(c, x, [x.shape[axis] // count] * count, axis, c.out_name(op))


@converter("SPLIT_V")
def _split_v(c: Any, op: Any) -> list[Value]:
    x = c.input(op, 0)
    sizes = _ints(c.const(op, 1, "size_splits"))
    axis = _ints(c.const(op, 2, "axis"))[0]
    axis = axis + len(x.shape) if axis < 0 else axis
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    return _split(c, x, sizes, axis, c.out_name(op))


REDUCTIONS = {
    "MEAN": "reduce_mean",
    "SUM": "reduce_sum",
    "REDUCE_MAX": "reduce_max",
    "REDUCE_MIN": "reduce_min",
    "REDUCE_PROD": "reduce_prod",
}


@converter(*REDUCTIONS)
def _reduce(c: Any, op: Any) -> list[Value]:
    axes = _ints(c.const(op, 1, "axes"))
    keepdims = read_options(op.options, {"keep_dims": (4, "?", False)})["keep_dims"]
    return [c.builder.reduce(REDUCTIONS[op.opcode], c.input(op, 0), axes, keepdims, c.out_name(op))]


@converter("ARG_MAX", "ARG_MIN")
def _arg(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    axis = _ints(c.const(op, 1, "axis"))[0]
    ember_op = "argmax" if op.opcode == "ARG_MAX" else "argmin"
    out = b.call(ember_op, [b.fold_or_expr(c.input(op, 0), name)], name, axis=axis, keepdims=False)
    if c.out_dtype(op) != out.dtype:
        out = b.unary("cast", out, f"{name}/cast", dtype=c.out_dtype(op))
    return [out]


@converter("PAD", "PADV2", "MIRROR_PAD")
def _pad(c: Any, op: Any) -> list[Value]:
    name = c.out_name(op)
    pads = np.asarray(c.const(op, 1, "paddings")).reshape(-1, 2)
    width = [(int(p[0]), int(p[1])) for p in pads]
    attrs: dict[str, Any] = {}
    if op.opcode == "PADV2" and c.optional(op, 2) is not None:
        attrs["pad_value"] = float(np.asarray(c.const(op, 2, "constant value")).reshape(-1)[0])
    if op.opcode == "MIRROR_PAD":
        if read_options(op.options, {"mode": (4, "b", 0)})["mode"] != 0:
            raise FrontendError(
                f"TFLite MIRROR_PAD {name!r}: SYMMETRIC mode is not supported (REFLECT is)"
            )
        attrs["mode"] = "reflect"
    return [c.builder.pad(c.input(op, 0), width, name, **attrs)]


STRIDED_SLICE_OPTIONS = {
    "begin_mask": (4, "i", 0),
    "end_mask": (6, "i", 0),
    "ellipsis_mask": (8, "i", 0),
    "new_axis_mask": (10, "i", 0),
    "shrink_axis_mask": (12, "i", 0),
    "offset": (14, "?", False),
}


@converter("STRIDED_SLICE")
def _strided_slice(c: Any, op: Any) -> list[Value]:
    opts = read_options(op.options, STRIDED_SLICE_OPTIONS)
    begin = _ints(c.const(op, 1, "begin"))
    end = _ints(c.const(op, 2, "end"))
    strides = (
        _ints(c.const(op, 3, "strides")) if c.optional(op, 3) is not None else [1] * len(begin)
    )
    if opts.pop("offset"):
        end = [b_ + e for b_, e in zip(begin, end)]
    return [strided_slice(c.builder, c.input(op, 0), begin, end, strides, opts, c.out_name(op))]


@converter("SLICE")
def _slice(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    x = c.input(op, 0)
    begin = _ints(c.const(op, 1, "begin"))
    size = _ints(c.const(op, 2, "size"))
    end = [x.shape[i] if s == -1 else begin[i] + s for i, s in enumerate(size)]
    return [
        b.call(
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
def _shape(c: Any, op: Any) -> list[Value]:
    return [Value(array=np.asarray(c.input(op, 0).shape, dtype=c.out_dtype(op)))]


@converter("GATHER")
def _gather(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    opts = read_options(op.options, {"axis": (4, "i", 0), "batch_dims": (6, "i", 0)})
    if opts["batch_dims"]:
        raise FrontendError(f"TFLite GATHER {name!r}: batch_dims is not supported")
    x, indices = c.input(op, 0), c.input(op, 1)
    args = [b.fold_or_expr(x, name), b.fold_or_expr(indices, f"{name}/indices")]
    return [b.call("take", args, name, axis=opts["axis"])]


@converter("TILE")
def _tile(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    reps = tuple(_ints(c.const(op, 1, "multiples")))
    return [b.call("tile", [b.fold_or_expr(c.input(op, 0), name)], name, reps=reps)]


@converter("BROADCAST_TO")
def _broadcast_to(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    shape = tuple(_ints(c.const(op, 1, "shape")))
    return [b.call("broadcast_to", [b.fold_or_expr(c.input(op, 0), name)], name, shape=shape)]


@converter("BATCH_MATMUL")
def _batch_matmul(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    opts = read_options(op.options, {"adj_x": (4, "?", False), "adj_y": (6, "?", False)})
    args = []
    for k, adjoint in ((0, opts["adj_x"]), (1, opts["adj_y"])):
        value = c.input(op, k)
        expr = b.fold_or_expr(value, f"{name}/{k}")
        if adjoint:
            rank = len(value.shape)
            axes = (*range(rank - 2), rank - 1, rank - 2)
            expr = b.fold_or_expr(b.call("transpose", [expr], f"{name}/adj{k}", axes=axes), name)
        args.append(expr)
    return [b.call("nn.matmul", args, name)]


@converter("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize(c: Any, op: Any) -> list[Value]:
    name = c.out_name(op)
    size = tuple(_ints(c.const(op, 1, "size")))
    if op.opcode == "RESIZE_BILINEAR":
        opts = read_options(op.options, {"align": (8, "?", False), "half": (10, "?", False)})
        attrs = {"method": "linear"}
        mode = "half_pixel" if opts["half"] else "asymmetric"
    else:
        opts = read_options(op.options, {"align": (4, "?", False), "half": (6, "?", False)})
        # TF rounds half away from zero (coordinates are >= 0) or floors
        attrs = {
            "method": "nearest",
            "nearest_mode": "round_prefer_ceil" if opts["align"] else "floor",
        }
        mode = "tf_half_pixel_for_nn" if opts["half"] else "asymmetric"
    attrs["coordinate_transformation_mode"] = "align_corners" if opts["align"] else mode
    return [c.builder.nchw_call("image.resize2d", c.input(op, 0), [], name, size=size, **attrs)]


@converter("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    block = read_options(op.options, {"block": (4, "i", 1)})["block"]
    x = c.input(op, 0)
    n, h, w, ch = x.shape
    expr = b.fold_or_expr(x, name)
    if op.opcode == "DEPTH_TO_SPACE":  # NHWC, TF order: (block_h, block_w, C') inside C
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
        value = b.call(
            ember_op, [b.fold_or_expr(value, name)], name if k == 2 else f"{name}/{k}", **attrs
        )
    return [value]


@converter("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
def _space_batch(c: Any, op: Any) -> list[Value]:
    block = _ints(c.const(op, 1, "block shape"))
    pads = np.asarray(c.const(op, 2, "paddings")).reshape(-1, 2).tolist()
    fn = space_to_batch if op.opcode == "SPACE_TO_BATCH_ND" else batch_to_space
    return [fn(c.builder, c.input(op, 0), block, pads, c.out_name(op))]


@converter("SELECT", "SELECT_V2")
def _select(c: Any, op: Any) -> list[Value]:
    b, name = c.builder, c.out_name(op)
    args = [b.fold_or_expr(c.input(op, k), f"{name}/{k}") for k in range(3)]
    return [b.call("where", args, name)]
