"""flatten_storage: N-D buffer accesses become 1-D accesses of flat buffers.

Needs: loop IR whose loads/stores index each buffer with one index per dimension.
Guarantees: every BufferLoad/BufferStore/Allocate in the body uses a 1-D buffer
with no strides and no element offset; the flat buffer shares the N-D buffer's
``data`` variable (so the code generator and the evaluator find the same memory),
its name, dtype and scope. ``func.params`` keep their N-D shapes: they are the
caller's view (the compiled module checks argument shapes against them).

    A[i, j]  (A: float32[64, 32])            ->  A[i*32 + j]
    B[i, j]  (strides=[40, 1], offset=8)     ->  B[i*40 + j + 8]
"""

from __future__ import annotations

import dataclasses

from ember.errors import LoweringError
from ember.tir import expr as E
from ember.tir.buffer import Buffer
from ember.tir.functor import Mutator
from ember.tir.stmt import BufferStore, PrimFunc, Stmt


def _fold_mul(a: E.PrimExpr, b: E.PrimExpr) -> E.PrimExpr:
    if isinstance(a, E.IntImm) and isinstance(b, E.IntImm):
        return E.IntImm(a.value * b.value, a.dtype)
    if isinstance(a, E.IntImm) and a.value == 1:
        return b
    if isinstance(b, E.IntImm) and b.value == 1:
        return a
    return a * b


def _fold_add(a: E.PrimExpr, b: E.PrimExpr) -> E.PrimExpr:
    if isinstance(a, E.IntImm) and isinstance(b, E.IntImm):
        return E.IntImm(a.value + b.value, a.dtype)
    if isinstance(a, E.IntImm) and a.value == 0:
        return b
    if isinstance(b, E.IntImm) and b.value == 0:
        return a
    return a + b


def _match_lanes(a: E.PrimExpr, b: E.PrimExpr) -> tuple[E.PrimExpr, E.PrimExpr]:
    la, lb = E.dtype_lanes(a.dtype), E.dtype_lanes(b.dtype)
    if la == lb:
        return a, b
    if la == 1:
        return E.Broadcast(a, lb), b
    return a, E.Broadcast(b, la)


def _index_dtype(e: E.PrimExpr) -> str:
    return E.dtype_element(e.dtype)


def buffer_strides(buf: Buffer) -> tuple[E.PrimExpr, ...]:
    """Element strides of ``buf``: its own, or row-major from its shape."""
    if buf.strides:
        return buf.strides
    strides: list[E.PrimExpr] = []
    acc: E.PrimExpr = E.IntImm(1, "int32")
    for dim in reversed(buf.shape):
        strides.append(acc)
        acc = _fold_mul(acc, dim)
    return tuple(reversed(strides))


def buffer_flat_size(buf: Buffer) -> E.PrimExpr:
    """Number of elements the memory behind ``buf`` spans (offset included)."""
    if buf.strides:
        size: E.PrimExpr = E.IntImm(1, "int32")
        for dim, stride in zip(buf.shape, buf.strides, strict=True):
            size = _fold_add(size, _fold_mul(_fold_add(dim, E.IntImm(-1, "int32")), stride))
    else:
        size = E.IntImm(1, "int32")
        for dim in buf.shape:
            size = _fold_mul(size, dim)
    if buf.elem_offset is not None:
        size = _fold_add(size, buf.elem_offset)
    return size


def flat_index(buf: Buffer, indices: tuple[E.PrimExpr, ...]) -> E.PrimExpr:
    """The 1-D element index of ``buf[indices]`` (vector indices give a vector index)."""
    if len(indices) != buf.ndim:
        raise LoweringError(
            f"buffer {buf.name!r} has {buf.ndim} dimension(s) "
            f"but an access uses {len(indices)} index(es)"
        )
    total: E.PrimExpr | None = None
    for idx, stride in zip(indices, buffer_strides(buf), strict=True):
        stride = E.convert(stride)
        if stride.dtype != _index_dtype(idx):
            stride = stride.astype(_index_dtype(idx))
        term = idx if isinstance(stride, E.IntImm) and stride.value == 1 else None
        if term is None:
            a, b = _match_lanes(idx, stride)
            term = _fold_mul(a, b)
        if total is None:
            total = term
        else:
            a, b = _match_lanes(total, term)
            total = _fold_add(a, b)
    if total is None:
        total = E.IntImm(0, "int32")
    if buf.elem_offset is not None:
        a, b = _match_lanes(total, buf.elem_offset.astype(_index_dtype(total)))
        total = _fold_add(a, b)
    return total


def is_flat(buf: Buffer) -> bool:
    return buf.ndim == 1 and not buf.strides and buf.elem_offset is None


class _Flatten(Mutator):
    def __init__(self) -> None:
        self.flat: dict[Buffer, Buffer] = {}

    def buffer(self, b: Buffer) -> Buffer:
        if is_flat(b):
            return b
        if b not in self.flat:
            self.flat[b] = Buffer(
                b.name,
                (buffer_flat_size(b),),
                b.dtype,
                data=b.data,
                scope=b.scope,
                data_alignment=b.data_alignment,
                offset_factor=b.offset_factor,
            )
        return self.flat[b]

    def visit_BufferLoad(self, e: E.BufferLoad) -> E.PrimExpr:
        indices = tuple(self.expr(i) for i in e.indices)
        if is_flat(e.buffer):
            return e if indices == e.indices else E.BufferLoad(e.buffer, indices)
        return E.BufferLoad(self.buffer(e.buffer), (flat_index(e.buffer, indices),))

    def visit_BufferStore(self, s: BufferStore) -> Stmt:
        indices = tuple(self.expr(i) for i in s.indices)
        value = self.expr(s.value)
        if is_flat(s.buffer):
            if indices == s.indices and value is s.value:
                return s
            return BufferStore(s.buffer, value, indices)
        return BufferStore(self.buffer(s.buffer), value, (flat_index(s.buffer, indices),))


def flatten_storage(func: PrimFunc) -> PrimFunc:
    """Rewrite every buffer access of ``func`` to a 1-D access (see the module docstring).

    >>> print(flatten_storage(f))    # C[i, j] -> C[i*64 + j]
    """
    body = _Flatten().stmt(func.body)
    if body is func.body:
        return func
    return dataclasses.replace(func, body=body)
