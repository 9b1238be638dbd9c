"""Loop IR: expressions, buffers, statements, PrimFunc; passes and the simplifier live beside."""

from ember.tir.buffer import Buffer, decl_buffer
from ember.tir.expr import *  # noqa: F403
from ember.tir.stmt import (
    Allocate,
    AssertStmt,
    AttrStmt,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    PrimFunc,
    SeqStmt,
    Stmt,
    seq,
)

__all__ = [
    "Allocate",
    "AssertStmt",
    "AttrStmt",
    "Buffer",
    "BufferStore",
    "Evaluate",
    "For",
    "ForKind",
    "IfThenElse",
    "LetStmt",
    "PrimFunc",
    "SeqStmt",
    "Stmt",
    "decl_buffer",
    "seq",
]
