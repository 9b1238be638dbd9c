"""Tensors and the operations that produce them: placeholder, compute, extern.

A :class:`Tensor` is one output of an :class:`Operation`. Indexing a tensor in a
compute body reads it (a :class:`~ember.tir.expr.ProducerLoad`)::

    A = placeholder((n, k), "float32", name="A")
    B = compute((n,), lambda i: A[i, 0] * 2, name="B")
    B.op.axis          # (IterVar(i, [0, n)),)

Operations only say *what* is computed; :mod:`ember.te.schedule` says how.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.errors import LoweringError
from ember.te.iter_var import DATA_PAR, REDUCE, THREAD, IterVar, Range, thread_axis, to_expr
from ember.te.reduction import Reduce, check_reduce_placement
from ember.tir import expr as E
from ember.tir.buffer import Buffer
from ember.tir.functor import Visitor
from ember.tir.stmt import Evaluate, Stmt

# ----------------------------------------------------------------------------- tensors


@dataclass(frozen=True, eq=False, slots=True)
class Tensor:
    """Output ``value_index`` of ``op``; compared by identity."""

    op: Operation
    value_index: int
    shape: tuple[E.PrimExpr, ...]
    dtype: str

    @property
    def name(self) -> str:
        return self.op.name if self.op.num_outputs == 1 else f"{self.op.name}.v{self.value_index}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices: Any) -> E.PrimExpr:
        if not isinstance(indices, tuple):
            indices = (indices,)
        if len(indices) != self.ndim:
            raise LoweringError(
                f"tensor {self.name!r} has {self.ndim} dimension(s) but is indexed with "
                f"{len(indices)}",
                hint=f"write {self.name}[{', '.join(f'i{k}' for k in range(self.ndim))}]",
            )
        idx = tuple(to_expr(i) for i in indices)
        for k, i in enumerate(idx):
            if not E.is_int(i.dtype):
                raise LoweringError(
                    f"index {k} of tensor {self.name!r} has dtype {i.dtype}, expected an integer",
                    hint="cast the index with .astype('int32')",
                )
        return E.ProducerLoad(self, idx)

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {[int_or_expr(s) for s in self.shape]}, {self.dtype})"


def int_or_expr(e: E.PrimExpr) -> Any:
    return e.value if isinstance(e, E.IntImm) else e


class Operation:
    """Base of operations; ``name`` names the stage in schedules and errors."""

    name: str

    @property
    def num_outputs(self) -> int:
        return 1

    def output(self, index: int) -> Tensor:
        return self.outputs[index]  # type: ignore[attr-defined]

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


@dataclass(eq=False)
class PlaceholderOp(Operation):
    name: str
    shape: tuple[E.PrimExpr, ...]
    dtype: str
    outputs: tuple[Tensor, ...] = field(default=(), repr=False)
    tag: str = ""


@dataclass(eq=False)
class ComputeOp(Operation):
    """``out[axis] = body`` over the axes' domains (``body`` may be a top-level Reduce)."""

    name: str
    tag: str
    axis: tuple[IterVar, ...]
    reduce_axis: tuple[IterVar, ...]
    body: tuple[E.PrimExpr, ...]
    outputs: tuple[Tensor, ...] = field(default=(), repr=False)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        return len(self.body)

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        # Kept with the body it was read from: schedules and templates ask often (every
        # create_schedule walks the graph), and a reassigned body reads afresh.
        cached = self.__dict__.get("_inputs")
        if cached is None or cached[0] is not self.body:
            cached = (self.body, tuple(read_tensors(self.body)))
            self.__dict__["_inputs"] = cached
        return cached[1]


@dataclass(eq=False)
class ExternOp(Operation):
    """An opaque statement (usually a C call) that reads ``inputs`` and writes its outputs.

    ``input_buffers``/``output_buffers`` are the placeholder buffers the body refers to;
    lowering swaps them for the real ones.
    """

    name: str
    tag: str
    inputs: tuple[Tensor, ...]
    input_buffers: tuple[Buffer, ...]
    output_buffers: tuple[Buffer, ...]
    body: Stmt
    outputs: tuple[Tensor, ...] = field(default=(), repr=False)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        return len(self.output_buffers)

    @property
    def input_tensors(self) -> tuple[Tensor, ...]:
        return self.inputs


def read_tensors(exprs: Any) -> list[Tensor]:
    """Tensors read (through ProducerLoad) anywhere in ``exprs``, in first-read order."""
    found: dict[Tensor, None] = {}

    class _Reads(Visitor):
        def visit_ProducerLoad(self, e: E.ProducerLoad) -> None:
            found.setdefault(e.producer, None)
            self.generic(e)

    v = _Reads()
    for e in exprs if isinstance(exprs, tuple | list) else (exprs,):
        if isinstance(e, Stmt):
            v.stmt(e)
        else:
            v.expr(e)
    return list(found)


# ----------------------------------------------------------------------------- builders


def _shape(shape: Any, what: str) -> tuple[E.PrimExpr, ...]:
    if isinstance(shape, int | E.PrimExpr):
        shape = (shape,)
    out = []
    for d in shape:
        d = E.convert(int(d) if hasattr(d, "__index__") and not isinstance(d, E.PrimExpr) else d)
        if isinstance(d, E.IntImm) and d.value < 0:
            raise LoweringError(
                f"{what}: shape {tuple(int_or_expr(s) for s in out + [d])} has a dimension "
                f"of {d.value}",
                hint="dimensions are sizes: 0 or more (a 0 makes an empty tensor)",
            )
        out.append(d)
    return tuple(out)


def placeholder(shape: Any, dtype: str = "float32", name: str = "placeholder") -> Tensor:
    """An input tensor: ``A = placeholder((n, m), "float32", name="A")``."""
    E.check_dtype(dtype)
    op = PlaceholderOp(name, _shape(shape, f"placeholder {name!r}"), dtype)
    op.outputs = (Tensor(op, 0, op.shape, dtype),)
    return op.outputs[0]


def _axis_names(fcompute: Callable[..., Any], ndim: int) -> list[str]:
    try:
        params = list(inspect.signature(fcompute).parameters.values())
    except (TypeError, ValueError):
        params = []
    if len(params) == ndim and all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params):
        return [p.name for p in params]
    return [f"i{k}" for k in range(ndim)]


def compute(
    shape: Any,
    fcompute: Callable[..., Any],
    name: str = "compute",
    tag: str = "",
    attrs: dict[str, Any] | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """``out[i, j, ...] = fcompute(i, j, ...)`` over ``shape``.

    >>> B = compute((4, 8), lambda i, j: A[i, j] + 1, name="B")

    ``fcompute`` may return a tuple of expressions (one per output, sharing the loops);
    a reduction (``te.sum(...)``) must be the whole body.
    """
    shp = _shape(shape, f"compute {name!r}")
    return make_compute(shp, _axis_names(fcompute, len(shp)), fcompute, name, tag, attrs)


def make_compute(
    shp: tuple[E.PrimExpr, ...],
    names: Sequence[str],
    fcompute: Callable[..., Any],
    name: str,
    tag: str = "",
    attrs: dict[str, Any] | None = None,
) -> Any:
    """:func:`compute` with the axis names given (schedules use it for cache stages)."""
    axis = tuple(IterVar(E.Var(n), Range(E.const(0), d), DATA_PAR) for n, d in zip(names, shp))
    result = fcompute(*[iv.var for iv in axis])
    results = tuple(result) if isinstance(result, tuple | list) else (result,)
    body = tuple(to_expr(r) for r in results)
    check_reduce_placement(name, body)
    reduce_axis: tuple[IterVar, ...] = ()
    if isinstance(body[0], Reduce):
        reduce_axis = body[0].axis
    op = ComputeOp(name, tag, axis, reduce_axis, body, attrs=dict(attrs or {}))
    op.outputs = tuple(Tensor(op, k, shp, b.dtype) for k, b in enumerate(body))
    return op.outputs[0] if len(body) == 1 else op.outputs


def extern(
    shape: Any,
    inputs: Sequence[Tensor],
    fcompute: Callable[[list[Buffer], list[Buffer]], Any],
    name: str = "extern",
    dtype: str | Sequence[str] = "float32",
    tag: str = "",
    c_prelude: str | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """A tensor computed by opaque code, usually a C function call.

    ``fcompute(ins, outs)`` gets the input and output buffers and returns a Call (or
    a Stmt). Pointers come from :func:`ember.te.access_ptr`; C source the call needs
    goes in ``c_prelude``::

        C = extern((n, m), [A, B], lambda ins, outs: call_extern("int32", "my_gemm",
                   access_ptr(ins[0]), access_ptr(ins[1]), access_ptr(outs[0]), n, m, k))
    """
    shapes = [shape] if shape and not isinstance(shape[0], tuple | list) else list(shape)
    dtypes = [dtype] * len(shapes) if isinstance(dtype, str) else list(dtype)
    in_bufs = tuple(Buffer(t.name, t.shape, t.dtype) for t in inputs)
    out_bufs = tuple(
        Buffer(name if len(shapes) == 1 else f"{name}.v{k}", _shape(s, f"extern {name!r}"), d)
        for k, (s, d) in enumerate(zip(shapes, dtypes, strict=True))
    )
    body = fcompute(list(in_bufs), list(out_bufs))
    if isinstance(body, E.PrimExpr):
        body = Evaluate(body)
    if not isinstance(body, Stmt):
        raise LoweringError(
            f"extern {name!r}: fcompute returned a {type(body).__name__}, expected a Call or Stmt",
            hint="return te.call_extern(dtype, 'c_function', ...)",
        )
    attrs = {"c_prelude": [c_prelude]} if c_prelude else {}
    op = ExternOp(name, tag, tuple(inputs), in_bufs, out_bufs, body, attrs=attrs)
    op.outputs = tuple(Tensor(op, k, b.shape, b.dtype) for k, b in enumerate(out_bufs))
    return op.outputs[0] if len(out_bufs) == 1 else op.outputs


def access_ptr(buf: Buffer, offset: Sequence[Any] | None = None) -> E.PrimExpr:
    """A pointer to ``buf[offset]`` (the first element by default), for extern calls."""
    idx = tuple(E.convert(o) for o in offset) if offset is not None else (E.const(0),) * buf.ndim
    return E.Call("handle", "tir.address_of", (E.BufferLoad(buf, idx),))


def call_extern(dtype: str, name: str, *args: Any) -> E.PrimExpr:
    """A call of the C function ``name`` (declared in a ``c_prelude`` or a system header)."""
    return E.Call(dtype, name, tuple(to_expr(a) for a in args))


__all__ = [
    "DATA_PAR",
    "REDUCE",
    "THREAD",
    "ComputeOp",
    "ExternOp",
    "IterVar",
    "Operation",
    "PlaceholderOp",
    "Range",
    "Tensor",
    "access_ptr",
    "call_extern",
    "compute",
    "extern",
    "int_or_expr",
    "make_compute",
    "placeholder",
    "read_tensors",
    "thread_axis",
    "to_expr",
]
