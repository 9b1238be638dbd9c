"""A slow, obviously-correct interpreter of loop IR over numpy arrays: the test oracle.

It runs N-D loop IR (straight from lowering) and flattened loop IR (after
:func:`ember.tir.passes.flatten_storage`), scalar and vector code alike, so a
pass can be checked by evaluating its input and its output on the same arrays::

    out = np.zeros((4,), "float32")
    evaluate(func, a, out)      # writes ``out`` in place, like the compiled kernel

Every value is a numpy array: shape ``()`` for a scalar, ``(lanes,)`` for a
vector, in the expression's dtype (so integer arithmetic wraps like C's).
Buffers are looked up by their ``data`` variable, the one thing an N-D buffer
and its flattened twin share. Scratch buffers start filled with NaN (floats) or
a garbage pattern (integers) so a read before a write shows up in the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from ember.errors import EmberRuntimeError, LoweringError
from ember.tir import expr as E
from ember.tir import stmt as S
from ember.tir.buffer import Buffer

_BOOL = np.dtype(bool)


def np_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of a loop IR element dtype (``"float32x8"`` -> float32)."""
    base = E.dtype_element(dtype)
    if base == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    return _BOOL if base == "bool" else np.dtype(base)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def _popcount(x: np.ndarray) -> np.ndarray:
    bits = np.dtype(x.dtype).itemsize * 8
    u = x.astype(np.dtype(f"uint{bits}"))
    return np.asarray(np.vectorize(lambda v: bin(int(v)).count("1"), otypes=[np.int64])(u)).astype(
        x.dtype
    )


def _float_fn(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def wrapped(*args: np.ndarray) -> np.ndarray:
        return np.asarray(fn(*args)).astype(args[0].dtype)

    return wrapped


INTRINSICS: dict[str, Callable[..., np.ndarray]] = {
    "exp": _float_fn(np.exp),
    "exp2": _float_fn(np.exp2),
    "log": _float_fn(np.log),
    "log2": _float_fn(np.log2),
    "log10": _float_fn(np.log10),
    "log1p": _float_fn(np.log1p),
    "sqrt": _float_fn(np.sqrt),
    "rsqrt": _float_fn(lambda x: 1 / np.sqrt(x)),
    "tanh": _float_fn(np.tanh),
    "sigmoid": _float_fn(lambda x: 1 / (1 + np.exp(-x))),
    "erf": _erf,
    "pow": _float_fn(np.power),
    "fabs": _float_fn(np.abs),
    "abs": _float_fn(np.abs),
    "floor": _float_fn(np.floor),
    "ceil": _float_fn(np.ceil),
    "round": _float_fn(np.rint),  # round half to even, as C's nearbyint
    "trunc": _float_fn(np.trunc),
    "sin": _float_fn(np.sin),
    "cos": _float_fn(np.cos),
    "tan": _float_fn(np.tan),
    "atan": _float_fn(np.arctan),
    "asin": _float_fn(np.arcsin),
    "acos": _float_fn(np.arccos),
    "asinh": _float_fn(np.arcsinh),
    "acosh": _float_fn(np.arccosh),
    "atanh": _float_fn(np.arctanh),
    "fmod": _float_fn(np.fmod),
    "popcount": _popcount,
    "fma": _float_fn(lambda a, b, c: a * b + c),
    "isnan": lambda x: np.isnan(x),
    "isinf": lambda x: np.isinf(x),
}
"""Intrinsic name -> numpy implementation (the semantics the C code generator must match)."""


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return (q + fix.astype(q.dtype)).astype(a.dtype)


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype == ml_dtypes.bfloat16  # bfloat16's kind is "V"


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if _is_float(x.dtype) and dtype.kind in "iu":
        x = np.trunc(x)  # C truncates toward zero
    return x.astype(dtype)


_BINARY: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    E.Add: np.add,
    E.Sub: np.subtract,
    E.Mul: np.multiply,
    E.FloorDiv: np.floor_divide,
    E.FloorMod: np.remainder,
    E.Min: np.minimum,
    E.Max: np.maximum,
    E.BitAnd: np.bitwise_and,
    E.BitOr: np.bitwise_or,
    E.BitXor: np.bitwise_xor,
    E.ShiftLeft: np.left_shift,
    E.ShiftRight: np.right_shift,
    E.EQ: np.equal,
    E.NE: np.not_equal,
    E.LT: np.less,
    E.LE: np.less_equal,
    E.GT: np.greater,
    E.GE: np.greater_equal,
    E.And: np.logical_and,
    E.Or: np.logical_or,
}


class _Pointer:
    """What ``tir.address_of(buf[i])`` evaluates to: a flat array and an element offset."""

    def __init__(self, array: np.ndarray, offset: int) -> None:
        self.array = array
        self.offset = offset


class Evaluator:
    """Interpreter state: variable values and the flat numpy array behind each buffer."""

    def __init__(self, externs: dict[str, Callable[..., Any]] | None = None) -> None:
        self.env: dict[E.Var, Any] = {}
        self.memory: dict[E.Var, np.ndarray] = {}
        self.externs = externs or {}

    # ------------------------------------------------------------------ buffers
    def flat_index(self, buf: Buffer, indices: tuple[E.PrimExpr, ...]) -> np.ndarray:
        """Element offset of ``buf[indices]`` into its flat memory (row-major or strided)."""
        idx = [self.eval(i).astype(np.int64) for i in indices]
        if buf.strides:
            strides = [int(self.eval(s)) for s in buf.strides]
        else:
            shape = [int(self.eval(s)) for s in buf.shape]
            strides = [int(np.prod(shape[k + 1 :], dtype=np.int64)) for k in range(len(shape))]
        if len(idx) != len(strides):
            raise LoweringError(
                f"buffer {buf.name!r} has {len(strides)} dimension(s) "
                f"but is indexed with {len(idx)}"
            )
        off = (
            np.int64(0) if buf.elem_offset is None else self.eval(buf.elem_offset).astype(np.int64)
        )
        for i, s in zip(idx, strides, strict=True):
            off = off + i * s
        return off

    def _memory(self, buf: Buffer) -> np.ndarray:
        try:
            return self.memory[buf.data]
        except KeyError:
            raise LoweringError(
                f"buffer {buf.name!r} is used but neither a parameter nor allocated"
            ) from None

    def _check_bounds(self, buf: Buffer, mem: np.ndarray, off: np.ndarray) -> None:
        if np.any(off < 0) or np.any(off >= mem.size):
            raise EmberRuntimeError(
                f"out-of-bounds access of buffer {buf.name!r}: element offset(s) "
                f"{np.atleast_1d(off).tolist()} outside [0, {mem.size})"
            )

    # ------------------------------------------------------------------ expressions
    def eval(self, e: E.PrimExpr) -> Any:
        t = type(e)
        if t is E.IntImm or t is E.FloatImm:
            return np.array(e.value, dtype=np_dtype(e.dtype))
        if isinstance(e, E.Var):
            try:
                return self.env[e]
            except KeyError:
                raise LoweringError(f"variable {e.name!r} is used outside its scope") from None
        if t in _BINARY:
            a, b = self.eval(e.a), self.eval(e.b)
            with np.errstate(all="ignore"):
                if t is E.ShiftLeft or t is E.ShiftRight:
                    b = b.astype(a.dtype)
                out = _BINARY[t](a, b)
            return out if isinstance(e, E.CmpOp) else np.asarray(out).astype(a.dtype)
        if t is E.Div:
            a, b = self.eval(e.a), self.eval(e.b)
            with np.errstate(all="ignore"):
                if a.dtype.kind in "iu":
                    return _trunc_div(a, b)
                return np.asarray(np.true_divide(a, b)).astype(a.dtype)
        if t is E.Not:
            return np.logical_not(self.eval(e.a))
        if t is E.BitNot:
            return np.invert(self.eval(e.a))
        if t is E.Cast:
            with np.errstate(all="ignore"):
                return _cast(self.eval(e.value), np_dtype(e.dtype))
        if t is E.Select:
            c = self.eval(e.condition)
            return np.where(c, self.eval(e.true_value), self.eval(e.false_value)).astype(
                np_dtype(e.dtype)
            )
        if t is E.Ramp:
            base, stride = self.eval(e.base), self.eval(e.stride)
            return (base + stride * np.arange(e.lanes, dtype=base.dtype)).astype(base.dtype)
        if t is E.Broadcast:
            return np.full((e.lanes,), self.eval(e.value), dtype=np_dtype(e.dtype))
        if t is E.Let:
            self.env[e.var] = self.eval(e.value)
            try:
                return self.eval(e.body)
            finally:
                del self.env[e.var]
        if t is E.BufferLoad:
            mem = self._memory(e.buffer)
            off = self.flat_index(e.buffer, e.indices)
            self._check_bounds(e.buffer, mem, off)
            return np.asarray(mem[off]).astype(np_dtype(e.dtype))
        if t is E.Call:
            return self._call(e)
        raise LoweringError(f"the evaluator cannot run a {t.__name__} node: {e!r}")

    def _call(self, e: E.Call) -> Any:
        if e.name == "tir.address_of":
            (load,) = e.args
            mem = self._memory(load.buffer)
            return _Pointer(mem, int(self.flat_index(load.buffer, load.indices)))
        args = [self.eval(a) for a in e.args]
        if e.name in self.externs:
            return self.externs[e.name](*args)
        fn = INTRINSICS.get(e.name)
        if fn is None:
            raise LoweringError(
                f"the evaluator does not know the extern function {e.name!r}",
                hint="pass a Python implementation: evaluate(func, ..., externs={name: fn})",
            )
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args)).astype(np_dtype(e.dtype))

    # ------------------------------------------------------------------ statements
    def run(self, s: S.Stmt) -> None:
        t = type(s)
        if t is S.SeqStmt:
            for c in s.seq:
                self.run(c)
        elif t is S.For:
            lo, n = int(self.eval(s.min)), int(self.eval(s.extent))
            dtype = np_dtype(s.loop_var.dtype)
            for v in range(lo, lo + n):
                self.env[s.loop_var] = np.array(v, dtype=dtype)
                self.run(s.body)
            self.env.pop(s.loop_var, None)
        elif t is S.BufferStore:
            mem = self._memory(s.buffer)
            off = self.flat_index(s.buffer, s.indices)
            self._check_bounds(s.buffer, mem, off)
            value = self.eval(s.value)
            if np.ndim(off) == 0 and np.ndim(value) != 0:
                raise LoweringError(
                    f"store of a {s.value.dtype} vector into one element of {s.buffer.name!r}"
                )
            mem[off] = value  # lanes in order: a repeated offset keeps the last lane, as C
        elif t is S.IfThenElse:
            if bool(self.eval(s.condition)):
                self.run(s.then_case)
            elif s.else_case is not None:
                self.run(s.else_case)
        elif t is S.Allocate:
            self._allocate(s)
        elif t is S.LetStmt:
            self.env[s.var] = self.eval(s.value)
            self.run(s.body)
            del self.env[s.var]
        elif t is S.AttrStmt:
            self.run(s.body)
        elif t is S.Evaluate:
            self.eval(s.value)
        elif t is S.AssertStmt:
            if not bool(self.eval(s.condition)):
                raise EmberRuntimeError(f"assertion failed: {s.message}")
            self.run(s.body)
        else:
            raise LoweringError(f"the evaluator cannot run a {t.__name__} statement")

    def _allocate(self, s: S.Allocate) -> None:
        buf = s.buffer
        shape = [int(self.eval(d)) for d in buf.shape]
        if buf.strides:
            strides = [int(self.eval(d)) for d in buf.strides]
            size = 1 + sum((d - 1) * st for d, st in zip(shape, strides, strict=True))
        else:
            size = int(np.prod(shape, dtype=np.int64))
        if buf.elem_offset is not None:
            size += int(self.eval(buf.elem_offset))
        dtype = np_dtype(buf.dtype)
        if _is_float(dtype):
            mem = np.full(size, np.nan, dtype=dtype)
        elif dtype.kind == "b":
            mem = np.zeros(size, dtype=dtype)
        else:
            mem = np.full(size, 0x5A, dtype=dtype)
        outer = self.memory.get(buf.data)
        self.memory[buf.data] = mem
        try:
            self.run(s.body)
        finally:
            if outer is None:
                del self.memory[buf.data]
            else:
                self.memory[buf.data] = outer


def evaluate(
    func: S.PrimFunc, *arrays: np.ndarray, externs: dict[str, Callable[..., Any]] | None = None
) -> None:
    """Run ``func`` on numpy ``arrays`` (one per parameter), writing outputs in place.

    >>> evaluate(func, a, b, c)   # c now holds the result
    """
    if len(arrays) != len(func.params):
        raise EmberRuntimeError(
            f"{func.name}: expected {len(func.params)} array(s), got {len(arrays)}"
        )
    ev = Evaluator(externs)
    for buf, arr in zip(func.params, arrays, strict=True):
        if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous:
            raise EmberRuntimeError(
                f"{func.name}: argument {buf.name!r} must be a C-contiguous array"
            )
        if arr.dtype != np_dtype(buf.dtype):
            raise EmberRuntimeError(
                f"{func.name}: argument {buf.name!r} expected dtype {buf.dtype}, got {arr.dtype}"
            )
        ev.memory[buf.data] = arr.reshape(-1)
        # Symbolic shape dimensions take their values from the arrays.
        for dim, n in zip(buf.shape, arr.shape, strict=False):
            if isinstance(dim, E.Var):
                ev.env[dim] = np.array(n, dtype=np_dtype(dim.dtype))
    for buf, arr in zip(func.params, arrays, strict=True):
        shape = tuple(int(ev.eval(d)) for d in buf.shape)
        if shape != arr.shape:
            raise EmberRuntimeError(
                f"{func.name}: argument {buf.name!r} expected shape {shape}, got {arr.shape}"
            )
    ev.run(func.body)
