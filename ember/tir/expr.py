"""Loop IR expressions, shared by tensor expressions (ember.te) and loop IR (ember.tir).

Nodes are frozen dataclasses compared *structurally* (``a.same_as(b)`` is identity),
except :class:`Var`, which compares by identity: two loop variables named ``i``
are different variables. Python operators build nodes::

    i = Var("i")
    e = i * 4 + 1          # Add(Mul(i, 4), 1)
    c = (i < 10) & (i >= 0)

``==`` is structural equality (usable in dicts and sets); build an equality test
with :func:`equal` (or ``a.equal(b)``). Dtypes are strings like ``"int32"`` or
``"float32"``; vectors carry lanes: ``"float32x8"``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" dtype for constant folding)

from ember.errors import LoweringError

# ----------------------------------------------------------------------------- dtypes

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")
"""bfloat16 is a float in expressions; the ``legalize_bfloat16`` pass turns its arithmetic
into float32 arithmetic between conversions, so code generators only load, store,
select and convert it."""
SCALAR_DTYPES = INT_DTYPES + FLOAT_DTYPES + ("bool",)


@functools.cache  # a handful of dtype strings, asked millions of times
def dtype_lanes(dtype: str) -> int:
    """``"float32x8"`` -> 8, ``"float32"`` -> 1."""
    if "x" in dtype:
        return int(dtype.split("x", 1)[1])
    return 1


@functools.cache
def dtype_element(dtype: str) -> str:
    """``"float32x8"`` -> ``"float32"``."""
    return dtype.split("x", 1)[0]


@functools.cache
def with_lanes(dtype: str, lanes: int) -> str:
    base = dtype_element(dtype)
    return base if lanes == 1 else f"{base}x{lanes}"


@functools.cache
def is_float(dtype: str) -> bool:
    return dtype_element(dtype) in FLOAT_DTYPES


@functools.cache
def is_int(dtype: str) -> bool:
    return dtype_element(dtype) in INT_DTYPES


@functools.cache
def is_unsigned(dtype: str) -> bool:
    return dtype_element(dtype).startswith("uint")


@functools.cache
def is_bool(dtype: str) -> bool:
    return dtype_element(dtype) == "bool"


def check_dtype(dtype: str) -> str:
    if dtype_element(dtype) not in SCALAR_DTYPES:
        raise LoweringError(
            f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(SCALAR_DTYPES)}"
        )
    return dtype


# ----------------------------------------------------------------------------- base


class PrimExpr:
    """Base of scalar/vector expressions. Every expression has a ``dtype``."""

    __slots__ = ()
    dtype: str

    def same_as(self, other: object) -> bool:
        return self is other

    # arithmetic
    def __add__(self, o: Any) -> PrimExpr:
        return _binary(Add, self, o)

    def __radd__(self, o: Any) -> PrimExpr:
        return _binary(Add, o, self)

    def __sub__(self, o: Any) -> PrimExpr:
        return _binary(Sub, self, o)

    def __rsub__(self, o: Any) -> PrimExpr:
        return _binary(Sub, o, self)

    def __mul__(self, o: Any) -> PrimExpr:
        return _binary(Mul, self, o)

    def __rmul__(self, o: Any) -> PrimExpr:
        return _binary(Mul, o, self)

    def __truediv__(self, o: Any) -> PrimExpr:
        return _binary(Div, self, o)

    def __rtruediv__(self, o: Any) -> PrimExpr:
        return _binary(Div, o, self)

    def __floordiv__(self, o: Any) -> PrimExpr:
        return _binary(FloorDiv, self, o)

    def __rfloordiv__(self, o: Any) -> PrimExpr:
        return _binary(FloorDiv, o, self)

    def __mod__(self, o: Any) -> PrimExpr:
        return _binary(FloorMod, self, o)

    def __rmod__(self, o: Any) -> PrimExpr:
        return _binary(FloorMod, o, self)

    def __neg__(self) -> PrimExpr:
        return _binary(Sub, const(0, self.dtype), self)

    # comparisons (== and != stay structural; use .equal / .not_equal)
    def __lt__(self, o: Any) -> PrimExpr:
        return _binary(LT, self, o)

    def __le__(self, o: Any) -> PrimExpr:
        return _binary(LE, self, o)

    def __gt__(self, o: Any) -> PrimExpr:
        return _binary(GT, self, o)

    def __ge__(self, o: Any) -> PrimExpr:
        return _binary(GE, self, o)

    def equal(self, o: Any) -> PrimExpr:
        return _binary(EQ, self, o)

    def not_equal(self, o: Any) -> PrimExpr:
        return _binary(NE, self, o)

    # logical on bool, bitwise on integers
    def __and__(self, o: Any) -> PrimExpr:
        return _binary(And if is_bool(self.dtype) else BitAnd, self, o)

    def __rand__(self, o: Any) -> PrimExpr:
        return _binary(And if is_bool(self.dtype) else BitAnd, o, self)

    def __or__(self, o: Any) -> PrimExpr:
        return _binary(Or if is_bool(self.dtype) else BitOr, self, o)

    def __ror__(self, o: Any) -> PrimExpr:
        return _binary(Or if is_bool(self.dtype) else BitOr, o, self)

    def __xor__(self, o: Any) -> PrimExpr:
        return _binary(BitXor, self, o)

    def __invert__(self) -> PrimExpr:
        if is_bool(self.dtype):
            return Not(self)
        return BitNot(self)

    def __lshift__(self, o: Any) -> PrimExpr:
        return _binary(ShiftLeft, self, o)

    def __rshift__(self, o: Any) -> PrimExpr:
        return _binary(ShiftRight, self, o)

    def __bool__(self) -> bool:
        raise LoweringError(
            "a symbolic expression has no truth value",
            hint="use te.if_then_else / te.all / te.any instead of Python `if`/`and`/`or`",
        )

    def astype(self, dtype: str) -> PrimExpr:
        """Cast to ``dtype`` (a no-op when it already has it)."""
        if dtype == self.dtype:
            return self
        return Cast(check_dtype(dtype), self)


def const(value: int | float | bool, dtype: str | None = None) -> PrimExpr:
    """A constant; the dtype defaults to int32 / float32 / bool by the Python type."""
    if dtype is None:
        dtype = (
            "bool" if isinstance(value, bool) else "int32" if isinstance(value, int) else "float32"
        )
    check_dtype(dtype)
    if is_float(dtype):
        return FloatImm(float(value), dtype)
    return IntImm(int(value), dtype)


def convert(value: Any, like: PrimExpr | None = None) -> PrimExpr:
    """Turn a Python number into a constant of ``like``'s element dtype."""
    if isinstance(value, PrimExpr):
        return value
    as_expr = getattr(value, "__prim_expr__", None)  # te.IterVar stands for its variable
    if as_expr is not None:
        return as_expr()
    if isinstance(value, bool | int | float):
        if like is not None:
            dtype = dtype_element(like.dtype)
            if isinstance(value, float) and not is_float(dtype):
                dtype = "float32"
            return const(value, dtype)
        return const(value)
    raise LoweringError(f"cannot use a {type(value).__name__} ({value!r}) as an expression")


def _binary(cls: type, a: Any, b: Any) -> PrimExpr:
    a = convert(a, b if isinstance(b, PrimExpr) else None)
    b = convert(b, a)
    if a.dtype != b.dtype:
        # Constants adopt the other side's dtype; other mismatches are the user's to cast.
        if isinstance(b, IntImm | FloatImm):
            b = const(b.value, a.dtype)
        elif isinstance(a, IntImm | FloatImm):
            a = const(a.value, b.dtype)
        else:
            raise LoweringError(
                f"{cls.__name__}: operand dtypes differ ({a.dtype} vs {b.dtype})",
                hint="cast one side with .astype(dtype)",
            )
    return cls(a, b)


# ----------------------------------------------------------------------------- leaves


@dataclass(frozen=True, slots=True)
class IntImm(PrimExpr):
    value: int
    dtype: str = "int32"

    def __repr__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class FloatImm(PrimExpr):
    value: float
    dtype: str = "float32"

    def __repr__(self) -> str:
        return repr(self.value) if math.isfinite(self.value) else f"float({self.value})"


@dataclass(frozen=True, eq=False, slots=True)
class Var(PrimExpr):
    """A scalar variable (loop index, size, or pointer). Compared by identity."""

    name: str
    dtype: str = "int32"

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False, slots=True)
class SizeVar(Var):
    """A variable known to be >= 0 (a symbolic shape dimension)."""


# ----------------------------------------------------------------------------- operators


@dataclass(frozen=True, slots=True)
class BinaryOp(PrimExpr):
    a: PrimExpr
    b: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


class Add(BinaryOp):
    __slots__ = ()


class Sub(BinaryOp):
    __slots__ = ()


class Mul(BinaryOp):
    __slots__ = ()


class Div(BinaryOp):
    """Float division; on integers C division (truncates toward zero)."""

    __slots__ = ()


class FloorDiv(BinaryOp):
    __slots__ = ()


class FloorMod(BinaryOp):
    __slots__ = ()


class Min(BinaryOp):
    __slots__ = ()


class Max(BinaryOp):
    __slots__ = ()


class BitAnd(BinaryOp):
    __slots__ = ()


class BitOr(BinaryOp):
    __slots__ = ()


class BitXor(BinaryOp):
    __slots__ = ()


class ShiftLeft(BinaryOp):
    __slots__ = ()


class ShiftRight(BinaryOp):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class CmpOp(PrimExpr):
    a: PrimExpr
    b: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return with_lanes("bool", dtype_lanes(self.a.dtype))


class EQ(CmpOp):
    __slots__ = ()


class NE(CmpOp):
    __slots__ = ()


class LT(CmpOp):
    __slots__ = ()


class LE(CmpOp):
    __slots__ = ()


class GT(CmpOp):
    __slots__ = ()


class GE(CmpOp):
    __slots__ = ()


class And(CmpOp):
    __slots__ = ()


class Or(CmpOp):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Not(PrimExpr):
    a: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True, slots=True)
class BitNot(PrimExpr):
    a: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True, slots=True)
class Cast(PrimExpr):
    dtype: str
    value: PrimExpr


@dataclass(frozen=True, slots=True)
class Select(PrimExpr):
    """``condition ? true_value : false_value`` (both sides may be evaluated)."""

    condition: PrimExpr
    true_value: PrimExpr
    false_value: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.true_value.dtype


@dataclass(frozen=True, slots=True)
class Call(PrimExpr):
    """A call of an intrinsic (``exp``, ``sqrt``, ``popcount``, ``fma``, ...) or extern C function.

    ``name`` is the intrinsic's name; the C code generator maps it to C per dtype.
    """

    dtype: str
    name: str
    args: tuple[PrimExpr, ...]


@dataclass(frozen=True, slots=True)
class Ramp(PrimExpr):
    """The vector ``base, base + stride, ..., base + (lanes-1)*stride``."""

    base: PrimExpr
    stride: PrimExpr
    lanes: int

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return with_lanes(self.base.dtype, self.lanes)


@dataclass(frozen=True, slots=True)
class Broadcast(PrimExpr):
    """A scalar ``value`` repeated in ``lanes`` vector lanes."""

    value: PrimExpr
    lanes: int

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return with_lanes(self.value.dtype, self.lanes)


@dataclass(frozen=True, slots=True)
class Let(PrimExpr):
    var: Var
    value: PrimExpr
    body: PrimExpr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.body.dtype


@dataclass(frozen=True, slots=True)
class BufferLoad(PrimExpr):
    """Read ``buffer[indices]`` (one index per buffer dimension; a Ramp index loads a vector)."""

    buffer: Any  # ember.tir.buffer.Buffer
    indices: tuple[PrimExpr, ...]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        lanes = max((dtype_lanes(i.dtype) for i in self.indices), default=1)
        return with_lanes(self.buffer.dtype, lanes)


@dataclass(frozen=True, slots=True)
class ProducerLoad(PrimExpr):
    """Read an element of a tensor-expression tensor (``A[i, j]`` in a te.compute body)."""

    producer: Any  # ember.te.Tensor
    indices: tuple[PrimExpr, ...]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.producer.dtype


# ----------------------------------------------------------------------------- builders


def equal(a: Any, b: Any) -> PrimExpr:
    return _binary(EQ, a, b)


def min_(a: Any, b: Any) -> PrimExpr:
    return _binary(Min, a, b)


def max_(a: Any, b: Any) -> PrimExpr:
    return _binary(Max, a, b)


def select(condition: PrimExpr, true_value: Any, false_value: Any) -> PrimExpr:
    t = convert(true_value, false_value if isinstance(false_value, PrimExpr) else None)
    f = convert(false_value, t)
    if t.dtype != f.dtype:
        raise LoweringError(f"select: branch dtypes differ ({t.dtype} vs {f.dtype})")
    return Select(condition, t, f)


def call_intrin(dtype: str, name: str, *args: Any) -> PrimExpr:
    return Call(dtype, name, tuple(convert(a) for a in args))
