"""Tensor expressions: what to compute (placeholder, compute, reductions) and how (schedules).

from ember import te
A = te.placeholder((n, k), "float32", name="A")
B = te.placeholder((k, m), "float32", name="B")
r = te.reduce_axis((0, k), name="r")
C = te.compute((n, m), lambda i, j: te.sum(A[i, r] * B[r, j], axis=r), name="C")
s = te.create_schedule(C.op)
io, ii = s[C].split(C.op.axis[0], factor=32)
f = ember.build(s, [A, B, C])
"""

from ember.te.intrin import (
    abs,
    all,
    any,
    ceil,
    const,
    erf,
    exp,
    floor,
    if_then_else,
    log,
    max_value,
    min_value,
    popcount,
    pow,
    round,
    rsqrt,
    sigmoid,
    sqrt,
    tanh,
    trunc,
)
from ember.te.reduction import CommReducer, Reduce, comm_reducer, max, min, reduce_axis, sum
from ember.te.schedule import Schedule, Stage, create_schedule
from ember.te.tensor import (
    ComputeOp,
    ExternOp,
    IterVar,
    Operation,
    PlaceholderOp,
    Range,
    Tensor,
    access_ptr,
    call_extern,
    compute,
    extern,
    placeholder,
    thread_axis,
)
from ember.te.tensorize import TensorIntrin, decl_tensor_intrin

__all__ = [
    "CommReducer",
    "ComputeOp",
    "ExternOp",
    "IterVar",
    "Operation",
    "PlaceholderOp",
    "Range",
    "Reduce",
    "Schedule",
    "Stage",
    "Tensor",
    "TensorIntrin",
    "abs",
    "access_ptr",
    "all",
    "any",
    "call_extern",
    "ceil",
    "comm_reducer",
    "compute",
    "const",
    "create_schedule",
    "decl_tensor_intrin",
    "erf",
    "exp",
    "extern",
    "floor",
    "if_then_else",
    "log",
    "max",
    "max_value",
    "min",
    "min_value",
    "placeholder",
    "popcount",
    "pow",
    "reduce_axis",
    "round",
    "rsqrt",
    "sigmoid",
    "sqrt",
    "sum",
    "tanh",
    "thread_axis",
    "trunc",
]
