"""ONNX converters: constants, shapes, and data movement (reshape, slice, gather, pad).

Inputs that decide a shape (Reshape's shape, Slice's starts, Pad's pads, ...)
must be known at import time; ``node.const`` computes them, folding any chain of
Shape/Gather/Concat/Cast nodes, and says which model input blocks it otherwise.

    Reshape(x, shape=[0, -1])   ->  reshape(x, newshape=(N, C*H*W))   (0 and -1 resolved here)
    Shape(x)                    ->  Constant([N, C, H, W])
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.common import int_list, top_k_indices
from ember.frontend.onnx.context import (
    OnnxNode,
    converter,
    ember_dtype,
)
from ember.graph.ir import DTYPES, Constant, Expr

# ----------------------------------------------------------------------------- constants


@converter("Constant")
def _constant(node: OnnxNode) -> Expr:
    attrs = node.attrs
    if "value" in attrs:
        value = attrs["value"]
        if not isinstance(value, np.ndarray) or value.dtype.kind in "OSU":
            raise node.unsupported("string constants are not supported")
        ember_dtype_of_array(node, value)
        return Constant(value, node.name)
    if "value_float" in attrs:
        return Constant(np.asarray(attrs["value_float"], dtype=np.float32), node.name)
    if "value_floats" in attrs:
        return Constant(np.asarray(attrs["value_floats"], dtype=np.float32), node.name)
    if "value_int" in attrs:
        return Constant(np.asarray(attrs["value_int"], dtype=np.int64), node.name)
    if "value_ints" in attrs:
        return Constant(np.asarray(attrs["value_ints"], dtype=np.int64), node.name)
    kinds = ", ".join(sorted(attrs)) or "no value"
    raise node.unsupported(f"a Constant holding {kinds} is not supported (only numeric tensors)")


def ember_dtype_of_array(node: OnnxNode, value: np.ndarray) -> str:
    if str(value.dtype) not in DTYPES:
        raise node.unsupported(f"constant of dtype {value.dtype} is not supported")
    return str(value.dtype)


@converter("ConstantOfShape", min_version=9)
def _constant_of_shape(node: OnnxNode) -> Expr:
    shape = int_list(node.const(0, "shape"))
    fill = node.attr("value")
    fill = np.zeros(1, dtype=np.float32) if fill is None else np.asarray(fill)
    ember_dtype_of_array(node, fill)
    return Constant(np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype), node.name)


@converter("Shape")
def _shape(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    rank = len(shape)
    start, end = node.attr("start", 0), node.attr("end", rank)
    # Shape-15 clamps start/end into [0, rank] after adding rank to negative ones.
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return Constant(np.asarray(shape[start:end], dtype=np.int64), node.name)


@converter("Size")
def _size(node: OnnxNode) -> Expr:
    return Constant(np.asarray(math.prod(node.shape(0)), dtype=np.int64), node.name)


@converter("Range", min_version=11)
def _range(node: OnnxNode) -> Expr:
    start, limit, delta = (node.const(i, w) for i, w in enumerate(("start", "limit", "delta")))
    for value, what in ((start, "start"), (limit, "limit"), (delta, "delta")):
        if value.size != 1:
            raise node.error(f"{what} must be a scalar, got shape {value.shape}")
    # one-element tensors count as scalars (AffineGrid's function body passes shape (1,))
    start, limit, delta = (v.reshape(()) for v in (start, limit, delta))
    if float(delta) == 0:
        raise node.error("delta is 0")
    count = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    values = start + np.arange(count, dtype=start.dtype) * delta
    return Constant(np.asarray(values, dtype=start.dtype), node.name)


@converter("EyeLike", min_version=9)
def _eye_like(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    if len(shape) != 2:
        raise node.error(f"input must be 2-D, got shape {shape}")
    dtype = (
        node.dtype(0) if node.attr("dtype") is None else ember_dtype(node.attr("dtype"), "dtype")
    )
    return Constant(np.eye(shape[0], shape[1], k=node.attr("k", 0), dtype=dtype), node.name)


# ----------------------------------------------------------------------------- reshapes


@converter("Reshape", min_version=5)
def _reshape(node: OnnxNode) -> Expr:
    in_shape = node.shape(0)
    wanted = int_list(node.const(1, "shape"))
    allowzero = bool(node.attr("allowzero", 0))
    out: list[int] = []
    for i, d in enumerate(wanted):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise node.error(
                    f"shape {wanted} copies dim {i} (a 0), but the input has rank {len(in_shape)}"
                )
            out.append(in_shape[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise node.error(f"shape {wanted} has more than one -1")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        total = math.prod(in_shape)
        if known == 0 or total % known:
            raise node.error(f"cannot reshape {in_shape} to {wanted}: the -1 cannot be inferred")
        out[out.index(-1)] = total // known
    return node.call("reshape", node.input(0), newshape=tuple(out))


@converter("Flatten")
def _flatten(node: OnnxNode) -> Expr:
    return node.call("flatten", node.input(0), axis=node.attr("axis", 1))


@converter("Transpose")
def _transpose(node: OnnxNode) -> Expr:
    perm = node.attr("perm")
    return node.call("transpose", node.input(0), axes=None if perm is None else tuple(perm))


@converter("Squeeze")
def _squeeze(node: OnnxNode) -> Expr:
    if node.version >= 13:
        axes = int_list(node.const(1, "axes")) if node.has_input(1) else None
    else:
        axes = node.attr("axes")
    return node.call("squeeze", node.input(0), axes=None if axes is None else tuple(axes))


@converter("Unsqueeze")
def _unsqueeze(node: OnnxNode) -> Expr:
    axes = int_list(node.const(1, "axes")) if node.version >= 13 else list(node.attr("axes", ()))
    return node.call("expand_dims", node.input(0), axes=tuple(axes))


@converter("DepthToSpace")
def _depth_to_space(node: OnnxNode) -> Expr:
    n, c, h, w = _nchw(node)
    b = node.attr("blocksize")
    if node.attr("mode", "DCR") == "DCR":
        x = node.call("reshape", node.input(0), newshape=(n, b, b, c // (b * b), h, w))
        x = node.call("transpose", x, axes=(0, 3, 4, 1, 5, 2))
    else:
        x = node.call("reshape", node.input(0), newshape=(n, c // (b * b), b, b, h, w))
        x = node.call("transpose", x, axes=(0, 1, 4, 2, 5, 3))
    return node.call("reshape", x, newshape=(n, c // (b * b), h * b, w * b))


@converter("SpaceToDepth")
def _space_to_depth(node: OnnxNode) -> Expr:
    n, c, h, w = _nchw(node)
    b = node.attr("blocksize")
    x = node.call("reshape", node.input(0), newshape=(n, c, h // b, b, w // b, b))
    # DCR (the default) puts the block offsets before the channels, CRD after them.
    crd = node.attr("mode", "DCR") == "CRD"
    x = node.call("transpose", x, axes=(0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4))
    return node.call("reshape", x, newshape=(n, c * b * b, h // b, w // b))


def _nchw(node: OnnxNode) -> tuple[int, int, int, int]:
    shape = node.shape(0)
    if len(shape) != 4:
        raise node.error(f"input must be 4-D (NCHW), got shape {shape}")
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------- combine / split


@converter("Concat", min_version=4)
def _concat(node: OnnxNode) -> Expr:
    return node.call("concatenate", *node.inputs(), axis=node.attr("axis"))


@converter("Split", min_version=2)
def _split(node: OnnxNode) -> list[Expr]:
    shape = node.shape(0)
    axis = node.axis(node.attr("axis", 0), len(shape))
    dim = shape[axis]
    if node.version >= 13:
        sizes = int_list(node.const(1, "split")) if node.has_input(1) else []
    else:
        sizes = list(node.attr("split", ()))
    parts = len(node.proto.output)
    if not sizes:
        parts = node.attr("num_outputs", parts)
        if node.version >= 18:
            # Split-18: equal chunks of ceil(dim / n); the last one may be smaller.
            chunk = -(-dim // parts)
            sizes = [min(chunk, dim - i * chunk) for i in range(parts)]
        else:
            if dim % parts:
                raise node.error(
                    f"axis {axis} of size {dim} does not split into {parts} equal parts"
                )
            sizes = [dim // parts] * parts
    if sum(sizes) != dim:
        raise node.error(f"split sizes {sizes} do not add up to axis {axis}'s size {dim}")
    result = node.call("split", node.input(0), axis=axis, sections=tuple(sizes))
    return [node.item(result, i) for i in range(len(sizes))]


@converter("Slice")
def _slice(node: OnnxNode) -> Expr:
    rank = len(node.shape(0))
    if node.version >= 10:
        starts = int_list(node.const(1, "starts"))
        ends = int_list(node.const(2, "ends"))
        axes = int_list(node.const(3, "axes")) if node.has_input(3) else list(range(len(starts)))
        steps = int_list(node.const(4, "steps")) if node.has_input(4) else [1] * len(starts)
    else:
        starts, ends = list(node.attr("starts", ())), list(node.attr("ends", ()))
        axes = list(node.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    axes = [node.axis(a, rank) for a in axes]
    return node.call(
        "strided_slice",
        node.input(0),
        begin=tuple(starts),
        end=tuple(ends),
        strides=tuple(steps),
        axes=tuple(axes),
    )


@converter("Gather")
def _gather(node: OnnxNode) -> Expr:
    return node.call("take", node.input(0), node.input(1), axis=node.attr("axis", 0))


def _wrap_negative(node: OnnxNode, indices: Expr, size: int) -> Expr:
    """Indices with negative values counted from the end (as int64)."""
    if indices.type.dtype != "int64":  # type: ignore[union-attr]
        indices = node.call("cast", indices, dtype="int64")
    negative = node.call("less", indices, node.constant(0, "int64"))
    return node.call(
        "where", negative, node.call("add", indices, node.constant(size, "int64")), indices
    )


@converter("GatherElements", min_version=11)
def _gather_elements(node: OnnxNode) -> Expr:
    axis = node.axis(node.attr("axis", 0), len(node.shape(0)))
    return gather_elements(node, node.input(0), node.input(1), axis)


def gather_elements(node: OnnxNode, data: Expr, indices: Expr, axis: int) -> Expr:
    """ONNX GatherElements as a take from the flattened data at flat offsets.

    The offset of each index position is its index along ``axis`` times that axis's
    stride, plus its own position along the other axes (a constant).
    """
    shape = data.type.shape  # type: ignore[union-attr]
    index_shape = indices.type.shape  # type: ignore[union-attr]
    rank = len(shape)
    strides = [math.prod(shape[a + 1 :]) for a in range(rank)]
    grid = np.indices(index_shape, dtype=np.int64) if index_shape else np.zeros((0,), np.int64)
    base = sum(grid[a] * strides[a] for a in range(rank) if a != axis)
    indices = _wrap_negative(node, indices, shape[axis])
    flat = node.call("multiply", indices, node.constant(strides[axis], "int64"))
    flat = node.call("add", flat, node.constant(np.asarray(base, dtype=np.int64)))
    return node.call("take", node.call("reshape", data, newshape=(-1,)), flat, axis=0)


@converter("TopK", min_version=10)
def _top_k(node: OnnxNode) -> list[Expr]:
    """k rounds of arg-max (or -min) (:func:`top_k_indices`); values gathered by index.
    Ties resolve to the lower index, as ONNX requires."""
    x = node.input(0)
    shape = node.shape(0)
    rank = len(shape)
    axis = node.axis(node.attr("axis", -1), rank)
    k = int(node.const(1, "K").reshape(-1)[0])
    if not 0 <= k <= shape[axis]:
        raise node.error(f"K={k} is out of range for axis {axis} of size {shape[axis]}")
    if k == 0:
        empty = tuple(0 if a == axis else d for a, d in enumerate(shape))
        return [
            node.constant(np.zeros(empty, node.dtype(0))),
            node.constant(np.zeros(empty, np.int64)),
        ]
    indices = top_k_indices(node, x, axis, k, bool(node.attr("largest", 1)))
    return [gather_elements(node, x, indices, axis), indices]


@converter("GatherND", min_version=11)
def _gather_nd(node: OnnxNode) -> Expr:
    """A take of rows of the data viewed as (batch, indexed..., rest) at computed flat offsets."""
    shape, index_shape = node.shape(0), node.shape(1)
    batch_dims = node.attr("batch_dims", 0)
    depth = index_shape[-1]
    batch = math.prod(shape[:batch_dims])
    indexed = shape[batch_dims : batch_dims + depth]
    rest = shape[batch_dims + depth :]
    strides = [math.prod(indexed[k + 1 :]) for k in range(depth)]
    indices = node.input(1)
    offset: Expr | None = None
    for k in range(depth):
        column = node.call(
            "strided_slice", indices, begin=(k,), end=(k + 1,), strides=(1,), axes=(-1,)
        )
        column = _wrap_negative(node, node.call("squeeze", column, axes=(-1,)), indexed[k])
        term = node.call("multiply", column, node.constant(strides[k], "int64"))
        offset = term if offset is None else node.call("add", offset, term)
    outer = index_shape[:-1]
    if batch_dims:  # each batch entry indexes its own block of rows
        rows_per_batch = math.prod(indexed)
        batch_index = np.arange(batch, dtype=np.int64).reshape(
            (*shape[:batch_dims], *[1] * (len(outer) - batch_dims))
        )
        offset = node.call("add", offset, node.constant(batch_index * rows_per_batch))
    if offset is None:
        raise node.error("indices have an empty last axis")
    data = node.call("reshape", node.input(0), newshape=(batch * math.prod(indexed), *rest))
    return node.call("take", data, offset, axis=0)


@converter("Expand", min_version=8)
def _expand(node: OnnxNode) -> Expr:
    return node.call("broadcast_to", node.input(0), shape=tuple(int_list(node.const(1, "shape"))))


@converter("Tile", min_version=6)
def _tile(node: OnnxNode) -> Expr:
    return node.call("tile", node.input(0), reps=tuple(int_list(node.const(1, "repeats"))))


@converter("Pad", min_version=2)
def _pad(node: OnnxNode) -> Expr:
    x = node.input(0)
    rank = len(node.shape(0))
    mode = node.attr("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise node.unsupported(f"mode={mode!r} is not supported")
    if node.version >= 11:
        pads = int_list(node.const(1, "pads"))
        value = node.maybe_const(2, "constant_value")
        pad_value = 0.0 if value is None or value.size == 0 else value.reshape(-1)[0].item()
        axes = int_list(node.const(3, "axes")) if node.has_input(3) else list(range(rank))
    else:
        pads = list(node.attr("pads", ()))
        pad_value = node.attr("value", 0.0)
        axes = list(range(rank))
    if len(pads) != 2 * len(axes):
        raise node.error(f"pads has {len(pads)} values, expected {2 * len(axes)}")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        axis = node.axis(a, rank)
        before[axis], after[axis] = pads[i], pads[i + len(axes)]
    pad_width = tuple((max(b, 0), max(e, 0)) for b, e in zip(before, after))
    if mode == "wrap":
        x = _wrap_pad(node, x, pad_width)
    elif any(p != (0, 0) for p in pad_width):
        x = node.call("nn.pad", x, pad_width=pad_width, pad_value=float(pad_value), mode=mode)
    # Negative pads crop.
    crop = [(i, -b, e) for i, (b, e) in enumerate(zip(before, after)) if b < 0 or e < 0]
    if crop:
        shape = x.type.shape  # type: ignore[union-attr]
        x = node.call(
            "strided_slice",
            x,
            begin=tuple(max(b, 0) for _, b, _ in crop),
            end=tuple(shape[i] + min(e, 0) for i, _, e in crop),
            strides=(1,) * len(crop),
            axes=tuple(i for i, _, _ in crop),
        )
    return x


def _wrap_pad(node: OnnxNode, x: Expr, pad_width: tuple[tuple[int, int], ...]) -> Expr:
    """Pad-19 ``wrap`` mode: each axis gets its own tail before it and its head after it."""
    for axis, (before, after) in enumerate(pad_width):
        if not before and not after:
            continue
        dim = x.type.shape[axis]  # type: ignore[union-attr]
        if before > dim or after > dim:
            raise node.unsupported(
                f"wrap padding {before, after} is wider than axis {axis} ({dim})"
            )
        parts = []
        if before:
            parts.append(_axis_slice(node, x, axis, dim - before, dim))
        parts.append(x)
        if after:
            parts.append(_axis_slice(node, x, axis, 0, after))
        x = node.call("concatenate", *parts, axis=axis)
    return x


def _axis_slice(node: OnnxNode, x: Expr, axis: int, begin: int, end: int) -> Expr:
    return node.call("strided_slice", x, begin=(begin,), end=(end,), strides=(1,), axes=(axis,))


@converter("Trilu", min_version=14)
def _trilu(node: OnnxNode) -> Expr:
    x = node.input(0)
    shape = node.shape(0)
    k = int(node.const(1, "k").reshape(-1)[0]) if node.has_input(1) else 0
    rows, cols = shape[-2], shape[-1]
    ones = np.ones((rows, cols), dtype=bool)
    mask = np.triu(ones, k) if node.attr("upper", 1) else np.tril(ones, k)
    zero = node.constant(0, node.dtype(0))
    return node.call("where", node.constant(mask), x, zero)


@converter("OneHot", min_version=9)
def _one_hot(node: OnnxNode) -> Expr:
    indices = node.input(0)
    depth = int(node.const(1, "depth").reshape(-1)[0])
    values = node.input(2)
    rank = len(node.shape(0)) + 1
    axis = node.axis(node.attr("axis", -1), rank)
    if node.dtype(0) != "int64":
        indices = node.call("cast", indices, dtype="int64")
    # Negative indices count from the end; out-of-range ones give an all-"off" row.
    negative = node.call("less", indices, node.constant(0, "int64"))
    wrapped = node.call("add", indices, node.constant(depth, "int64"))
    indices = node.call("where", negative, wrapped, indices)
    positions = np.arange(depth, dtype=np.int64).reshape(
        [depth if i == axis else 1 for i in range(rank)]
    )
    hot = node.call(
        "equal", node.call("expand_dims", indices, axes=(axis,)), node.constant(positions)
    )
    off_value = node.call("strided_slice", values, begin=(0,), end=(1,), strides=(1,), axes=(0,))
    on_value = node.call("strided_slice", values, begin=(1,), end=(2,), strides=(1,), axes=(0,))
    return node.call("where", hot, on_value, off_value)
