"""Layout and indexing ops (pattern INJECTIVE): reshape, transpose, concat, slice, gather, ...

Semantics follow ONNX (Reshape with one -1, Flatten to 2-D, Unsqueeze axes in
the output, Slice clamping, Gather with negative indices, bidirectional Expand)::

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((2, 3, 4)))
    >>> call("strided_slice", x, begin=(-1,), end=(-100,), strides=(-2,), axes=(2,)).type.shape
    (2, 3, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError, EmberRuntimeError, ShapeError
from ember.graph.ir import TensorType, TupleType
from ember.ops._shape import (
    INDEX_DTYPES,
    broadcast_shapes,
    check_dtype,
    int_tuple,
    normalize_axis,
    optional_axes,
    same_dtype,
    set_attr,
    tensor,
)
from ember.ops.registry import OpPattern, register_op


def _int_attr(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise AttrError(f"attribute {name} must be an int, got {value!r}")
    set_attr(obj, name, int(value))


# ----------------------------------------------------------------------------- reshape


@dataclass(frozen=True)
class ReshapeAttrs:
    """Target shape; at most one ``-1`` (inferred from the element count)."""

    newshape: tuple[int, ...]

    def __post_init__(self) -> None:
        shape = int_tuple("newshape", self.newshape, 1 if isinstance(self.newshape, int) else None)
        if any(d < -1 for d in shape) or shape.count(-1) > 1:
            raise AttrError(
                f"attribute newshape must hold sizes >= 0 and at most one -1, got {shape}",
                hint="resolve ONNX's 0 (copy this dim) before building the node",
            )
        set_attr(self, "newshape", shape)


reshape = register_op("reshape", ReshapeAttrs, OpPattern.INJECTIVE, num_inputs=1)


@reshape.type_rule
def _reshape_type(types: list, attrs: ReshapeAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    shape = list(attrs.newshape)
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or data.size % known:
            raise ShapeError(
                f"reshape: cannot infer the -1 in {attrs.newshape} for {data.size} elements "
                f"of shape {data.shape}"
            )
        shape[shape.index(-1)] = data.size // known
    elif known != data.size:
        raise ShapeError(
            f"reshape: newshape {attrs.newshape} has {known} elements but data {data.shape} "
            f"has {data.size}"
        )
    return TensorType(tuple(shape), data.dtype)


@reshape.reference
def _reshape_ref(inputs: list[np.ndarray], attrs: ReshapeAttrs) -> np.ndarray:
    return np.asarray(inputs[0]).reshape(attrs.newshape).copy()


# ----------------------------------------------------------------------------- flatten


@dataclass(frozen=True)
class FlattenAttrs:
    """ONNX Flatten: ``(prod(shape[:axis]), prod(shape[axis:]))``; axis in [-rank, rank]."""

    axis: int = 1

    def __post_init__(self) -> None:
        _int_attr(self, "axis")


flatten = register_op("flatten", FlattenAttrs, OpPattern.INJECTIVE, num_inputs=1)


@flatten.type_rule
def _flatten_type(types: list, attrs: FlattenAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    if not -data.ndim <= attrs.axis <= data.ndim:
        raise ShapeError(
            f"flatten: axis {attrs.axis} is out of range for rank {data.ndim} "
            f"(allowed {-data.ndim}..{data.ndim})"
        )
    axis = attrs.axis + data.ndim if attrs.axis < 0 else attrs.axis
    outer = int(np.prod(data.shape[:axis], dtype=np.int64))
    return TensorType((outer, int(np.prod(data.shape[axis:], dtype=np.int64))), data.dtype)


@flatten.reference
def _flatten_ref(inputs: list[np.ndarray], attrs: FlattenAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1).copy()


# ----------------------------------------------------------------------------- transpose


@dataclass(frozen=True)
class TransposeAttrs:
    """A permutation of the axes; ``None`` reverses them."""

    axes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        set_attr(self, "axes", optional_axes("axes", self.axes))


transpose = register_op("transpose", TransposeAttrs, OpPattern.INJECTIVE, num_inputs=1)


def _perm(axes: tuple[int, ...] | None, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank - 1, -1, -1))
    if len(axes) != rank:
        raise ShapeError(f"transpose: axes {axes} has {len(axes)} entries but data has rank {rank}")
    perm = tuple(normalize_axis(a, rank, "transpose axis") for a in axes)
    if sorted(perm) != list(range(rank)):
        raise ShapeError(f"transpose: axes {axes} is not a permutation of 0..{rank - 1}")
    return perm


@transpose.type_rule
def _transpose_type(types: list, attrs: TransposeAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    perm = _perm(attrs.axes, data.ndim)
    return TensorType(tuple(data.shape[p] for p in perm), data.dtype)


@transpose.reference
def _transpose_ref(inputs: list[np.ndarray], attrs: TransposeAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    return np.ascontiguousarray(x.transpose(_perm(attrs.axes, x.ndim)))


# ----------------------------------------------------------------------------- squeeze / expand


@dataclass(frozen=True)
class SqueezeAttrs:
    """Axes of size 1 to drop; ``None`` drops every axis of size 1."""

    axes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        set_attr(self, "axes", optional_axes("axes", self.axes))


squeeze = register_op("squeeze", SqueezeAttrs, OpPattern.INJECTIVE, num_inputs=1)


def _squeeze_axes(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(i for i, d in enumerate(shape) if d == 1)
    out = tuple(sorted({normalize_axis(a, len(shape), "squeeze axis") for a in axes}))
    for a in out:
        if shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} has size {shape[a]}, not 1")
    return out


@squeeze.type_rule
def _squeeze_type(types: list, attrs: SqueezeAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    drop = _squeeze_axes(data.shape, attrs.axes)
    return TensorType(tuple(d for i, d in enumerate(data.shape) if i not in drop), data.dtype)


@squeeze.reference
def _squeeze_ref(inputs: list[np.ndarray], attrs: SqueezeAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    return np.squeeze(x, axis=_squeeze_axes(x.shape, attrs.axes)).copy()


@dataclass(frozen=True)
class ExpandDimsAttrs:
    """Positions of the new size-1 axes in the *output* (ONNX Unsqueeze)."""

    axes: tuple[int, ...]

    def __post_init__(self) -> None:
        axes = optional_axes("axes", self.axes)
        if not axes:
            raise AttrError("attribute axes of expand_dims must name at least one axis")
        set_attr(self, "axes", axes)


expand_dims = register_op("expand_dims", ExpandDimsAttrs, OpPattern.INJECTIVE, num_inputs=1)


def _expand_axes(rank: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    out_rank = rank + len(axes)
    out = tuple(normalize_axis(a, out_rank, "expand_dims axis") for a in axes)
    if len(set(out)) != len(out):
        raise ShapeError(f"expand_dims: axes {axes} name the same output axis twice")
    return tuple(sorted(out))


@expand_dims.type_rule
def _expand_dims_type(types: list, attrs: ExpandDimsAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    new = _expand_axes(data.ndim, attrs.axes)
    dims = iter(data.shape)
    shape = tuple(1 if i in new else next(dims) for i in range(data.ndim + len(new)))
    return TensorType(shape, data.dtype)


@expand_dims.reference
def _expand_dims_ref(inputs: list[np.ndarray], attrs: ExpandDimsAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    return np.expand_dims(x, _expand_axes(x.ndim, attrs.axes)).copy()


# ----------------------------------------------------------------------------- concatenate / split


@dataclass(frozen=True)
class ConcatenateAttrs:
    """Join the inputs along ``axis``."""

    axis: int = 0

    def __post_init__(self) -> None:
        _int_attr(self, "axis")


concatenate = register_op("concatenate", ConcatenateAttrs, OpPattern.INJECTIVE, num_inputs=None)


@concatenate.type_rule
def _concatenate_type(types: list, attrs: ConcatenateAttrs) -> TensorType:
    if not types:
        raise ShapeError("concatenate needs at least one input")
    ts = [tensor(types, i, f"#{i}") for i in range(len(types))]
    dtype = same_dtype(ts, [f"#{i}" for i in range(len(ts))])
    first = ts[0]
    axis = normalize_axis(attrs.axis, first.ndim)
    for i, t in enumerate(ts[1:], 1):
        if t.ndim != first.ndim or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != axis
        ):
            raise ShapeError(
                f"concatenate: input #{i} has shape {t.shape} but input #0 has {first.shape}; "
                f"they may differ only on axis {axis}"
            )
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in ts)
    return TensorType(tuple(shape), dtype)


@concatenate.reference
def _concatenate_ref(inputs: list[np.ndarray], attrs: ConcatenateAttrs) -> np.ndarray:
    return np.concatenate([np.asarray(x) for x in inputs], axis=attrs.axis)


@dataclass(frozen=True)
class SplitAttrs:
    """Split along ``axis`` into parts of the given ``sections`` sizes."""

    sections: tuple[int, ...]
    axis: int = 0

    def __post_init__(self) -> None:
        sections = int_tuple("sections", self.sections, None, min_value=0)
        if not sections:
            raise AttrError("attribute sections must list at least one part size")
        set_attr(self, "sections", sections)
        _int_attr(self, "axis")


split = register_op("split", SplitAttrs, OpPattern.TUPLE, num_inputs=1)


@split.type_rule
def _split_type(types: list, attrs: SplitAttrs) -> TupleType:
    data = tensor(types, 0, "data")
    axis = normalize_axis(attrs.axis, data.ndim)
    if sum(attrs.sections) != data.shape[axis]:
        raise ShapeError(
            f"split: sections {attrs.sections} sum to {sum(attrs.sections)} but axis {axis} "
            f"has size {data.shape[axis]}"
        )
    fields = []
    for size in attrs.sections:
        shape = list(data.shape)
        shape[axis] = size
        fields.append(TensorType(tuple(shape), data.dtype))
    return TupleType(tuple(fields))


@split.reference
def _split_ref(inputs: list[np.ndarray], attrs: SplitAttrs) -> tuple[np.ndarray, ...]:
    x = np.asarray(inputs[0])
    bounds = np.cumsum(attrs.sections)[:-1]
    return tuple(p.copy() for p in np.split(x, bounds, axis=attrs.axis))


# ----------------------------------------------------------------------------- strided_slice


@dataclass(frozen=True)
class StridedSliceAttrs:
    """ONNX Slice: ``begin``/``end`` clamp to the axis; negative values count from the end.

    ``strides`` defaults to ones and ``axes`` to ``0..len(begin)-1``.
    """

    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...] | None = None
    axes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        begin = int_tuple("begin", self.begin, 1 if isinstance(self.begin, int) else None)
        end = int_tuple("end", self.end, 1 if isinstance(self.end, int) else None)
        n = len(begin)
        strides = (1,) * n if self.strides is None else int_tuple("strides", self.strides, n)
        axes = tuple(range(n)) if self.axes is None else optional_axes("axes", self.axes)
        if len(end) != n or len(axes) != n:
            raise AttrError(
                f"attributes begin, end, strides and axes must have one value each per sliced "
                f"axis; got lengths {n}, {len(end)}, {len(strides)}, {len(axes)}"
            )
        if 0 in strides:
            raise AttrError(f"attribute strides must not contain 0, got {strides}")
        for name, value in (("begin", begin), ("end", end), ("strides", strides), ("axes", axes)):
            set_attr(self, name, value)


def slice_ranges(shape: tuple[int, ...], attrs: StridedSliceAttrs) -> list[tuple[int, int, int]]:
    """(start, length, step) per axis of ``shape`` after ONNX clamping."""
    ranges = [(0, d, 1) for d in shape]
    seen = set()
    for b, e, s, a in zip(attrs.begin, attrs.end, attrs.strides, attrs.axes):
        axis = normalize_axis(a, len(shape), "strided_slice axis")
        if axis in seen:
            raise ShapeError(f"strided_slice: axes {attrs.axes} name axis {axis} twice")
        seen.add(axis)
        dim = shape[axis]
        b = b + dim if b < 0 else b
        e = e + dim if e < 0 else e
        if s > 0:
            b, e = min(max(b, 0), dim), min(max(e, 0), dim)
            length = max(0, -(-(e - b) // s))
        else:
            b, e = min(max(b, 0), dim - 1), min(max(e, -1), dim - 1)
            length = max(0, -(-(b - e) // -s))
        ranges[axis] = (b, length, s)
    return ranges


strided_slice = register_op("strided_slice", StridedSliceAttrs, OpPattern.INJECTIVE, num_inputs=1)


@strided_slice.type_rule
def _strided_slice_type(types: list, attrs: StridedSliceAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    ranges = slice_ranges(data.shape, attrs)
    return TensorType(tuple(length for _, length, _ in ranges), data.dtype)


@strided_slice.reference
def _strided_slice_ref(inputs: list[np.ndarray], attrs: StridedSliceAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    index = []
    for start, length, step in slice_ranges(x.shape, attrs):
        stop = start + step * length
        index.append(slice(start, stop if stop >= 0 else None, step) if length else slice(0, 0))
    return x[tuple(index)].copy()


# ----------------------------------------------------------------------------- take


@dataclass(frozen=True)
class TakeAttrs:
    """Gather slices of ``data`` along ``axis`` (ONNX Gather: negative indices wrap)."""

    axis: int = 0

    def __post_init__(self) -> None:
        _int_attr(self, "axis")


take = register_op("take", TakeAttrs, OpPattern.INJECTIVE, num_inputs=2)


@take.type_rule
def _take_type(types: list, attrs: TakeAttrs) -> TensorType:
    data, indices = tensor(types, 0, "data"), tensor(types, 1, "indices")
    check_dtype(indices, "indices", INDEX_DTYPES)
    axis = normalize_axis(attrs.axis, data.ndim)
    return TensorType(data.shape[:axis] + indices.shape + data.shape[axis + 1 :], data.dtype)


@take.reference
def _take_ref(inputs: list[np.ndarray], attrs: TakeAttrs) -> np.ndarray:
    x, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.int64)
    axis = normalize_axis(attrs.axis, x.ndim)
    dim = x.shape[axis]
    bad = (idx < -dim) | (idx >= dim)
    if bad.any():
        raise EmberRuntimeError(
            f"take: index {int(idx[bad].flat[0])} is out of range for axis {axis} of size {dim}"
        )
    return np.take(x, np.where(idx < 0, idx + dim, idx), axis=axis)


# ----------------------------------------------------------------------------- broadcast_to / tile


@dataclass(frozen=True)
class BroadcastToAttrs:
    """ONNX Expand: the output shape is the broadcast of ``data.shape`` and ``shape``."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        set_attr(self, "shape", int_tuple("shape", self.shape, None, min_value=0))


broadcast_to = register_op("broadcast_to", BroadcastToAttrs, OpPattern.INJECTIVE, num_inputs=1)


@broadcast_to.type_rule
def _broadcast_to_type(types: list, attrs: BroadcastToAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    return TensorType(broadcast_shapes(data.shape, attrs.shape), data.dtype)


@broadcast_to.reference
def _broadcast_to_ref(inputs: list[np.ndarray], attrs: BroadcastToAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    return np.broadcast_to(x, broadcast_shapes(x.shape, attrs.shape)).copy()


@dataclass(frozen=True)
class TileAttrs:
    """Repeat counts, one per axis (ONNX Tile)."""

    reps: tuple[int, ...]

    def __post_init__(self) -> None:
        set_attr(self, "reps", int_tuple("reps", self.reps, None, min_value=0))


tile = register_op("tile", TileAttrs, OpPattern.INJECTIVE, num_inputs=1)


@tile.type_rule
def _tile_type(types: list, attrs: TileAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    if len(attrs.reps) != data.ndim:
        raise ShapeError(f"tile: reps {attrs.reps} must have one entry per axis (rank {data.ndim})")
    return TensorType(tuple(d * r for d, r in zip(data.shape, attrs.reps)), data.dtype)


@tile.reference
def _tile_ref(inputs: list[np.ndarray], attrs: TileAttrs) -> np.ndarray:
    return np.tile(np.asarray(inputs[0]), attrs.reps)
