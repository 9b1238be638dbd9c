"""Tensor intrinsics: replace a loop nest by a hand-written micro-kernel call.

>>> intrin = decl_tensor_intrin(Cm.op, impl, name="gemm_6x16", c_prelude=C_SOURCE)
>>> s[C].tensorize(ii, intrin)

``Cm`` is a small te.compute over placeholders describing what the kernel does.
At lowering, the loops from the tensorized axis inward must compute the same
expression over the same extents; then ``impl(ins, outs)`` is called with one
:class:`RegionView` per input and output (the part of the real buffer the nest
touches) and returns the call, or ``(body, reset, update)`` for a reduction whose
outer reduction loops stay outside (``reset`` zeroes, ``update`` accumulates).

This module declares intrinsics (schedules refer to them); matching a loop nest
against one happens when the stage is lowered (:mod:`ember.te.lower_compute`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.errors import ScheduleError
from ember.te.tensor import REDUCE, ComputeOp, Operation, PlaceholderOp, Tensor
from ember.tir import expr as E
from ember.tir.buffer import Buffer
from ember.tir.simplify import simplify


@dataclass(frozen=True, eq=False)
class TensorIntrin:
    """A micro-kernel: what it computes (``op``) and how to call it (``impl``)."""

    name: str
    op: ComputeOp
    impl: Callable[[list[RegionView], list[RegionView]], Any]
    c_prelude: str | None = None


def decl_tensor_intrin(
    op: Operation | Tensor,
    impl: Callable[[list[RegionView], list[RegionView]], Any],
    name: str = "tensor_intrin",
    c_prelude: str | None = None,
) -> TensorIntrin:
    """Declare a tensor intrinsic computing ``op`` (a te.compute over placeholders)."""
    op = op.op if isinstance(op, Tensor) else op
    if not isinstance(op, ComputeOp) or op.num_outputs != 1:
        raise ScheduleError(
            f"decl_tensor_intrin {name!r}: expected a single-output te.compute, got {op!r}"
        )
    for t in op.input_tensors:
        if not isinstance(t.op, PlaceholderOp):
            raise ScheduleError(
                f"decl_tensor_intrin {name!r}: input {t.name!r} must be a te.placeholder"
            )
    return TensorIntrin(name, op, impl, c_prelude)


@dataclass(frozen=True)
class RegionView:
    """The part of a real buffer an intrinsic reads or writes.

    ``shape`` is the intrinsic's; ``strides`` are the real buffer's (in elements) for
    those dimensions; ``access_ptr()`` points at the region's first element.
    """

    buffer: Buffer
    start: tuple[E.PrimExpr, ...]
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str
    name: str

    def access_ptr(self, offset: Any = None) -> E.PrimExpr:
        idx = self.start
        if offset is not None:
            extra = offset if isinstance(offset, tuple | list) else (offset,)
            pad = (0,) * (len(idx) - len(extra))
            idx = tuple(simplify(a + b) for a, b in zip(idx, (*pad, *extra), strict=True))
        return E.Call("handle", "tir.address_of", (E.BufferLoad(self.buffer, idx),))


__all__ = ["RegionView", "TensorIntrin", "decl_tensor_intrin", "REDUCE"]
