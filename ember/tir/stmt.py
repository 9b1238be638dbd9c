"""Loop IR statements and the PrimFunc that holds them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ember.tir.buffer import Buffer
from ember.tir.expr import PrimExpr, Var
from ember.tir.printer import print_func


class Stmt:
    """Base of loop IR statements (structural equality, like expressions)."""

    __slots__ = ()


class ForKind(enum.Enum):
    SERIAL = "serial"
    PARALLEL = "parallel"  # outer loop shared among threads
    VECTORIZED = "vectorized"  # turned into vector lanes by the vectorize pass
    UNROLLED = "unrolled"  # fully unrolled by the unroll pass
    THREAD_BINDING = "thread_binding"  # bound to a GPU thread/block axis (``thread_tag``)


@dataclass(frozen=True, slots=True)
class For(Stmt):
    loop_var: Var
    min: PrimExpr
    extent: PrimExpr
    kind: ForKind
    body: Stmt
    thread_tag: str = ""  # "blockIdx.x", "threadIdx.x", ... for THREAD_BINDING
    annotations: tuple[tuple[str, Any], ...] = ()  # e.g. (("pragma_unroll", 4),)


@dataclass(frozen=True, slots=True)
class BufferStore(Stmt):
    """``buffer[indices] = value``."""

    buffer: Buffer
    value: PrimExpr
    indices: tuple[PrimExpr, ...]


@dataclass(frozen=True, slots=True)
class IfThenElse(Stmt):
    condition: PrimExpr
    then_case: Stmt
    else_case: Stmt | None = None


@dataclass(frozen=True, slots=True)
class SeqStmt(Stmt):
    seq: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class Allocate(Stmt):
    """Scratch memory for ``buffer`` (its scope says where), live over ``body``."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, slots=True)
class LetStmt(Stmt):
    var: Var
    value: PrimExpr
    body: Stmt


@dataclass(frozen=True, slots=True)
class AttrStmt(Stmt):
    """An annotation over ``body`` (``key`` like ``"pragma_xxx"``, ``"storage_alignment"``)."""

    node: Any
    key: str
    value: Any
    body: Stmt


@dataclass(frozen=True, slots=True)
class Evaluate(Stmt):
    """Evaluate an expression for its effect (an extern call)."""

    value: PrimExpr


@dataclass(frozen=True, slots=True)
class AssertStmt(Stmt):
    condition: PrimExpr
    message: str
    body: Stmt


@dataclass(frozen=True, eq=False, slots=True)
class PrimFunc:
    """A loop-IR function: ``params`` are the argument buffers in call order."""

    name: str
    params: tuple[Buffer, ...]
    body: Stmt
    attrs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return print_func(self)


def seq(*stmts: Stmt | None) -> Stmt:
    """A SeqStmt of the non-None statements, flattened; one statement stays itself."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, SeqStmt):
            flat.extend(s.seq)
        else:
            flat.append(s)
    if len(flat) == 1:
        return flat[0]
    return SeqStmt(tuple(flat))
