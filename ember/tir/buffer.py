"""Buffers: typed multi-dimensional views of memory, the arguments and scratch of loop IR."""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.tir.expr import PrimExpr, Var, convert


@dataclass(frozen=True, eq=False, slots=True)
class Buffer:
    """A buffer named ``name`` of ``shape`` and ``dtype``; compared by identity.

    ``data`` is the pointer variable the code generator names; ``strides`` is empty
    for a dense row-major buffer; ``scope`` is ``"global"`` for arguments and
    ``"local"``/``"shared"`` for scratch; ``offset_factor``/``data_alignment`` are in
    elements/bytes and let the code generator emit aligned vector loads.
    """

    name: str
    shape: tuple[PrimExpr, ...]
    dtype: str = "float32"
    data: Var = field(default=None)  # type: ignore[assignment]
    strides: tuple[PrimExpr, ...] = ()
    elem_offset: PrimExpr | None = None
    scope: str = "global"
    data_alignment: int = 64
    offset_factor: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(convert(s) for s in self.shape))
        object.__setattr__(self, "strides", tuple(convert(s) for s in self.strides))
        if self.data is None:
            object.__setattr__(self, "data", Var(self.name, "handle"))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {list(self.shape)}, {self.dtype})"


def decl_buffer(shape, dtype: str = "float32", name: str = "buf", scope: str = "global") -> Buffer:
    """Declare a dense buffer (TVM's ``tvm.tir.decl_buffer``)."""
    if isinstance(shape, int | PrimExpr):
        shape = (shape,)
    return Buffer(name, tuple(shape), dtype, scope=scope)
