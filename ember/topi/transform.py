"""Layout and indexing ops as TE computes (all injective: one read per output element).

y = reshape_compute(x, (6, 4))   # y[i, j] = x[unravel(i * 4 + j, x.shape)]
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.ops.nn import PadAttrs
from ember.ops.transform import slice_ranges
from ember.te.tensor import Tensor
from ember.tir import expr as E
from ember.topi.common import (
    TAG_INJECTIVE,
    int_shape,
    normalize_axis,
    ravel,
    register_compute,
    shape_of,
    unravel,
)


def reshape_compute(x: Tensor, shape: tuple[int, ...], name: str = "reshape") -> Tensor:
    """Row-major reshape of ``x`` to ``shape`` (same element count)."""
    in_shape = int_shape(x)
    shape = tuple(shape)
    if in_shape == shape:
        return te.compute(shape, lambda *i: x[i], name=name, tag=TAG_INJECTIVE)
    # Trailing axes the reshape keeps pass through unchanged, so only the leading ones are
    # raveled: (1, 56, 56, 96) -> (3136, 96) reads x[0, i // 56, i % 56, j], whose last
    # index stays the vector loop's (the full ravel hid it in (i * 96 + j) % 96).
    kept = 0
    while kept < min(len(shape), len(in_shape)) - 1 and shape[-1 - kept] == in_shape[-1 - kept]:
        kept += 1
    out_lead, in_lead = shape[: len(shape) - kept], in_shape[: len(in_shape) - kept]

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        lead, tail = i[: len(out_lead)], i[len(out_lead) :]
        return x[(*unravel(ravel(lead, out_lead), in_lead), *tail)]

    return te.compute(shape, fcompute, name=name, tag=TAG_INJECTIVE)


@register_compute("reshape", "flatten", "squeeze", "expand_dims")
def _reshape(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return reshape_compute(inputs[0], shape_of(out_type))


@register_compute("transpose")
def _transpose(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    (x,) = inputs
    ndim = x.ndim
    perm = (
        tuple(range(ndim - 1, -1, -1))
        if attrs.axes is None
        else tuple(normalize_axis(a, ndim) for a in attrs.axes)
    )

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        index: list[E.PrimExpr] = [E.const(0)] * ndim
        for out_axis, in_axis in enumerate(perm):
            index[in_axis] = i[out_axis]
        return x[tuple(index)]

    return te.compute(shape_of(out_type), fcompute, name="transpose", tag=TAG_INJECTIVE)


@register_compute("concatenate")
def _concatenate(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    axis = normalize_axis(attrs.axis, inputs[0].ndim)
    sizes = [int_shape(t)[axis] for t in inputs]

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        # Select from the last part backwards: value = part_k where offset_k <= i[axis].
        offsets = [sum(sizes[:k]) for k in range(len(inputs))]
        value: E.PrimExpr | None = None
        for t, off in zip(inputs, offsets, strict=True):
            idx = list(i)
            idx[axis] = i[axis] - off if off else i[axis]
            read = t[tuple(idx)]
            value = read if value is None else E.select(i[axis] < off, value, read)
        assert value is not None
        return value

    return te.compute(shape_of(out_type), fcompute, name="concatenate", tag=TAG_INJECTIVE)


@register_compute("split")
def _split(inputs: list[Tensor], attrs: Any, out_type: Any) -> tuple[Tensor, ...]:
    (x,) = inputs
    axis = normalize_axis(attrs.axis, x.ndim)
    outs = []
    start = 0
    for k, field in enumerate(out_type.fields):

        def fcompute(*i: E.PrimExpr, start: int = start) -> E.PrimExpr:
            idx = list(i)
            idx[axis] = i[axis] + start if start else i[axis]
            return x[tuple(idx)]

        outs.append(te.compute(shape_of(field), fcompute, name=f"split{k}", tag=TAG_INJECTIVE))
        start += attrs.sections[k]
    return tuple(outs)


@register_compute("strided_slice")
def _strided_slice(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    (x,) = inputs
    ranges = slice_ranges(int_shape(x), attrs)

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        return x[tuple(i[k] * step + start for k, (start, _, step) in enumerate(ranges))]

    return te.compute(shape_of(out_type), fcompute, name="strided_slice", tag=TAG_INJECTIVE)


@register_compute("take")
def _take(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    x, indices = inputs
    axis = normalize_axis(attrs.axis, x.ndim)
    dim = int_shape(x)[axis]
    nidx = indices.ndim

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        raw = indices[tuple(i[axis : axis + nidx])].astype("int64")
        # Negative indices wrap (ONNX Gather); out-of-range ones are clamped so the kernel
        # never reads outside the tensor (the reference raises on them).
        wrapped = E.select(raw < E.const(0, "int64"), raw + E.const(dim, "int64"), raw)
        safe = E.max_(E.min_(wrapped, E.const(dim - 1, "int64")), E.const(0, "int64"))
        return x[(*i[:axis], safe.astype("int32"), *i[axis + nidx :])]

    return te.compute(shape_of(out_type), fcompute, name="take", tag=TAG_INJECTIVE)


@register_compute("broadcast_to")
def _broadcast_to(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    (x,) = inputs
    shape = shape_of(out_type)
    in_shape = int_shape(x)
    offset = len(shape) - len(in_shape)

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        return x[tuple(E.const(0) if d == 1 else i[offset + k] for k, d in enumerate(in_shape))]

    return te.compute(shape, fcompute, name="broadcast_to", tag=TAG_INJECTIVE)


@register_compute("tile")
def _tile(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    (x,) = inputs
    in_shape = int_shape(x)

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        return x[tuple(E.const(0) if d == 1 else i[k] % d for k, d in enumerate(in_shape))]

    return te.compute(shape_of(out_type), fcompute, name="tile", tag=TAG_INJECTIVE)


def pad_compute(x: Tensor, attrs: PadAttrs, name: str = "pad", tag: str = TAG_INJECTIVE) -> Tensor:
    """``nn.pad`` (constant, edge or reflect) of ``x``."""
    in_shape = int_shape(x)
    out_shape = tuple(d + b + a for d, (b, a) in zip(in_shape, attrs.pad_width, strict=True))
    padded_axes = [k for k, (b, a) in enumerate(attrs.pad_width) if b or a]

    def fcompute(*i: E.PrimExpr) -> E.PrimExpr:
        idx = list(i)
        conds = []
        for k in padded_axes:
            before, _ = attrs.pad_width[k]
            src = i[k] - before if before else i[k]
            d = in_shape[k]
            if attrs.mode == "constant":
                if before:
                    conds.append(i[k] >= before)
                conds.append(src < d)
                idx[k] = src
            elif attrs.mode == "edge":
                idx[k] = E.max_(E.min_(src, E.const(d - 1)), E.const(0))
            else:  # reflect: -1 -> 1, d -> d - 2 (pads are smaller than the axis)
                idx[k] = E.select(
                    src < 0, E.const(0) - src, E.select(src >= d, E.const(2 * d - 2) - src, src)
                )
        value = x[tuple(idx)]
        if not conds:
            return value
        return te.if_then_else(te.all(*conds), value, E.const(attrs.pad_value, x.dtype))

    return te.compute(out_shape, fcompute, name=name, tag=tag)


@register_compute("nn.pad")
def _pad(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return pad_compute(inputs[0], attrs)
