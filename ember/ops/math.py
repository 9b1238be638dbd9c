"""Elementwise ops: unary math, binary ops with numpy broadcasting, where, cast, clip.

Every op here keeps its input dtype except comparisons (bool) and ``cast``::

    >>> from ember.ops import math as m
    >>> a, b = np.ones((2, 1), "float32"), np.arange(3, dtype="float32")
    >>> m.add.evaluate([a, b], m.add.attrs_type())
    array([[1., 2., 3.],
           [1., 2., 3.]], dtype=float32)
"""

from __future__ import annotations

import math as _pymath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    FLOAT_DTYPES,
    INT_DTYPES,
    NUMBER_DTYPES,
    SIGNED_INT_DTYPES,
    broadcast_shapes,
    check_dtype,
    dtype_name,
    number,
    same_dtype,
    set_attr,
    tensor,
)
from ember.ops.registry import NoAttrs, Op, OpPattern, register_op

SIGNED_DTYPES = FLOAT_DTYPES + SIGNED_INT_DTYPES

# ----------------------------------------------------------------------------- unary helper


def unary_op(
    name: str,
    fn: Callable[[np.ndarray, object], np.ndarray],
    dtypes: Sequence[str],
    attrs_type: type = NoAttrs,
    doc: str = "",
) -> Op:
    """Register a one-input elementwise op whose result keeps shape and dtype.

    ``fn(x, attrs)`` computes the value; the result is cast back to ``x.dtype``
    (numpy promotes float16 or returns float64 for some ufuncs).
    """
    op = register_op(name, attrs_type, OpPattern.ELEMWISE, num_inputs=1, doc=doc)

    @op.type_rule
    def _type(types: list, attrs: object) -> TensorType:
        x = tensor(types, 0, "data")
        check_dtype(x, "data", dtypes)
        return x

    @op.reference
    def _ref(inputs: list[np.ndarray], attrs: object) -> np.ndarray:
        x = np.asarray(inputs[0])
        with np.errstate(all="ignore"):  # log(0), sqrt(-1) follow IEEE like ONNX
            return np.asarray(fn(x, attrs)).astype(x.dtype, copy=False)

    return op


def _sigmoid(x: np.ndarray, _: object) -> np.ndarray:
    # exp(-log(1 + exp(-x))) never overflows, unlike 1 / (1 + exp(-x)) for large -x.
    return np.exp(-np.logaddexp(0, -x))


_erf_scalar = np.frompyfunc(_pymath.erf, 1, 1)


def erf_float64(x: np.ndarray) -> np.ndarray:
    """Exact erf (math.erf per element in float64; numpy has no erf and scipy is not required)."""
    x64 = np.asarray(x, dtype=np.float64)
    return np.asarray(_erf_scalar(x64), dtype=np.float64).reshape(x64.shape)


def _round_half_even(x: np.ndarray, _: object) -> np.ndarray:
    return np.round(x)  # numpy rounds half to even, like ONNX Round


sigmoid = unary_op("sigmoid", _sigmoid, FLOAT_DTYPES)
tanh = unary_op("tanh", lambda x, a: np.tanh(x), FLOAT_DTYPES)
erf = unary_op("erf", lambda x, a: erf_float64(x), FLOAT_DTYPES)
exp = unary_op("exp", lambda x, a: np.exp(x), FLOAT_DTYPES)
log = unary_op("log", lambda x, a: np.log(x), FLOAT_DTYPES)
sqrt = unary_op("sqrt", lambda x, a: np.sqrt(x), FLOAT_DTYPES)
rsqrt = unary_op("rsqrt", lambda x, a: 1 / np.sqrt(x), FLOAT_DTYPES)
abs = unary_op("abs", lambda x, a: np.abs(x), NUMBER_DTYPES)
negative = unary_op("negative", lambda x, a: np.negative(x), SIGNED_DTYPES)
floor = unary_op("floor", lambda x, a: np.floor(x), FLOAT_DTYPES)
ceil = unary_op("ceil", lambda x, a: np.ceil(x), FLOAT_DTYPES)
round = unary_op("round", _round_half_even, FLOAT_DTYPES)
sign = unary_op("sign", lambda x, a: np.sign(x), NUMBER_DTYPES)
reciprocal = unary_op("reciprocal", lambda x, a: 1 / x, FLOAT_DTYPES)
sin = unary_op("sin", lambda x, a: np.sin(x), FLOAT_DTYPES)
cos = unary_op("cos", lambda x, a: np.cos(x), FLOAT_DTYPES)
asin = unary_op("asin", lambda x, a: np.arcsin(x), FLOAT_DTYPES)
acos = unary_op("acos", lambda x, a: np.arccos(x), FLOAT_DTYPES)
atan = unary_op("atan", lambda x, a: np.arctan(x), FLOAT_DTYPES)
asinh = unary_op("asinh", lambda x, a: np.arcsinh(x), FLOAT_DTYPES)
acosh = unary_op("acosh", lambda x, a: np.arccosh(x), FLOAT_DTYPES)
atanh = unary_op("atanh", lambda x, a: np.arctanh(x), FLOAT_DTYPES)
bitwise_not = unary_op("bitwise_not", lambda x, a: np.invert(x), INT_DTYPES)
logical_not = unary_op("logical_not", lambda x, a: np.logical_not(x), ("bool",))
identity = unary_op("identity", lambda x, a: x.copy(), (*NUMBER_DTYPES, "bool"))


@dataclass(frozen=True)
class DropoutAttrs:
    """``rate`` in [0, 1): the training-time drop probability; inference is identity."""

    rate: float = 0.5

    def __post_init__(self) -> None:
        set_attr(self, "rate", number("rate", self.rate))
        if not 0 <= self.rate < 1:
            raise AttrError(f"attribute rate must be in [0, 1), got {self.rate}")


dropout = unary_op("nn.dropout", lambda x, a: x.copy(), FLOAT_DTYPES, DropoutAttrs)


@identity.flop_rule
@dropout.flop_rule
def _copy_flops(call: Call) -> int:
    return 0  # a copy (inference-time dropout is one too): data movement


@dataclass(frozen=True)
class ClipAttrs:
    """Bounds of ``clip``; ``None`` means unbounded. Like ONNX, ``min(max(x, a_min), a_max)``."""

    a_min: float | None = None
    a_max: float | None = None

    def __post_init__(self) -> None:
        for field in ("a_min", "a_max"):
            value = getattr(self, field)
            if value is not None:
                set_attr(self, field, number(field, value))


def _clip(x: np.ndarray, attrs: ClipAttrs) -> np.ndarray:
    out = x
    if attrs.a_min is not None:
        low = attrs.a_min
        if np.issubdtype(x.dtype, np.integer):
            # Bounds outside the int range clamp to it (ONNX Clip on int8 with min=-1000).
            low = max(_pymath.ceil(low), np.iinfo(x.dtype).min)
        out = np.maximum(out, np.asarray(low).astype(x.dtype))
    if attrs.a_max is not None:
        high = attrs.a_max
        if np.issubdtype(x.dtype, np.integer):
            high = min(_pymath.floor(high), np.iinfo(x.dtype).max)
        out = np.minimum(out, np.asarray(high).astype(x.dtype))
    return out if out is not x else x.copy()


clip = unary_op("clip", _clip, NUMBER_DTYPES, ClipAttrs)


@dataclass(frozen=True)
class CastAttrs:
    """Target dtype of ``cast`` (a numpy dtype name such as ``"float32"``)."""

    dtype: str

    def __post_init__(self) -> None:
        set_attr(self, "dtype", dtype_name("dtype", self.dtype))


cast = register_op("cast", CastAttrs, OpPattern.ELEMWISE, num_inputs=1)
cast.flop_rule(_copy_flops)  # a conversion, not arithmetic


@cast.type_rule
def _cast_type(types: list, attrs: CastAttrs) -> TensorType:
    return TensorType(tensor(types, 0, "data").shape, attrs.dtype)


@cast.reference
def _cast_ref(inputs: list[np.ndarray], attrs: CastAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(attrs.dtype)


# ----------------------------------------------------------------------------- binary ops


def _int_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C / ONNX); x / 0 gives 0 instead of a crash."""
    safe_b = np.where(b == 0, 1, b)
    q = a // safe_b
    # floor division rounds toward -inf; step back toward zero when the signs differ.
    fix = (q * safe_b != a) & ((a < 0) != (safe_b < 0))
    return np.where(b == 0, 0, q + fix)


def _divide(a: np.ndarray, b: np.ndarray, attrs: object) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        return _int_divide(a, b)
    return a / b


def _power(a: np.ndarray, b: np.ndarray, attrs: object) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        # numpy refuses negative integer exponents; x ** -k truncates to 0 unless |x| == 1.
        pos = np.power(a, np.maximum(b, 0))
        neg = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
        return np.where(b < 0, neg, pos)
    return np.power(a, b)


@dataclass(frozen=True)
class ModAttrs:
    """``fmod=False``: result takes the divisor's sign (Python); True: the dividend's (C fmod)."""

    fmod: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fmod, bool | np.bool_):
            raise AttrError(f"attribute fmod must be a bool, got {self.fmod!r}")
        set_attr(self, "fmod", bool(self.fmod))


def _mod(a: np.ndarray, b: np.ndarray, attrs: ModAttrs) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        safe_b = np.where(b == 0, 1, b)
        out = np.fmod(a, safe_b) if attrs.fmod else np.mod(a, safe_b)
        return np.where(b == 0, 0, out)
    return np.fmod(a, b) if attrs.fmod else np.mod(a, b)


def _shift(a: np.ndarray, b: np.ndarray, *, left: bool) -> np.ndarray:
    """ONNX BitShift: left shifts drop the bits past the top (signed ones too: two's
    complement), right shifts of signed values extend the sign. A negative shift or one
    by the bit width or more leaves only the sign extension: -1 for a right shift of a
    negative value, else 0 (C leaves both undefined)."""
    bits = a.dtype.itemsize * 8
    in_range = (b >= 0) & (b < bits)
    amount = np.where(in_range, b, 0).astype(a.dtype)
    if left:
        unsigned = np.dtype(f"uint{bits}")
        shifted = np.left_shift(a.view(unsigned), amount.view(unsigned)).view(a.dtype)
        fill = np.zeros((), a.dtype)
    else:
        shifted = np.right_shift(a, amount)
        fill = np.where(a < 0, -1, 0).astype(a.dtype) if a.dtype.kind == "i" else 0
    return np.where(in_range, shifted, fill).astype(a.dtype)


def binary_op(
    name: str,
    fn: Callable[[np.ndarray, np.ndarray, object], np.ndarray],
    dtypes: Sequence[str],
    *,
    out_dtype: str | None = None,
    attrs_type: type = NoAttrs,
    pattern: OpPattern = OpPattern.BROADCAST,
) -> Op:
    """Register a two-input op with numpy broadcasting; both inputs share one dtype."""
    op = register_op(name, attrs_type, pattern, num_inputs=2)

    @op.type_rule
    def _type(types: list, attrs: object) -> TensorType:
        a, b = tensor(types, 0, "lhs"), tensor(types, 1, "rhs")
        dtype = same_dtype([a, b], ["lhs", "rhs"])
        check_dtype(a, "lhs", dtypes)
        return TensorType(broadcast_shapes(a.shape, b.shape), out_dtype or dtype)

    @op.reference
    def _ref(inputs: list[np.ndarray], attrs: object) -> np.ndarray:
        a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
        with np.errstate(all="ignore"):
            out = np.asarray(fn(a, b, attrs))
        return out.astype(out_dtype or a.dtype, copy=False)

    return op


add = binary_op("add", lambda a, b, _: a + b, NUMBER_DTYPES)
subtract = binary_op("subtract", lambda a, b, _: a - b, NUMBER_DTYPES)
multiply = binary_op("multiply", lambda a, b, _: a * b, NUMBER_DTYPES)
divide = binary_op("divide", _divide, NUMBER_DTYPES)
power = binary_op("power", _power, NUMBER_DTYPES)
maximum = binary_op("maximum", lambda a, b, _: np.maximum(a, b), NUMBER_DTYPES)
minimum = binary_op("minimum", lambda a, b, _: np.minimum(a, b), NUMBER_DTYPES)
mod = binary_op("mod", _mod, NUMBER_DTYPES, attrs_type=ModAttrs)
bitwise_and = binary_op("bitwise_and", lambda a, b, _: a & b, INT_DTYPES)
bitwise_or = binary_op("bitwise_or", lambda a, b, _: a | b, INT_DTYPES)
bitwise_xor = binary_op("bitwise_xor", lambda a, b, _: a ^ b, INT_DTYPES)
left_shift = binary_op("left_shift", lambda a, b, _: _shift(a, b, left=True), INT_DTYPES)
right_shift = binary_op("right_shift", lambda a, b, _: _shift(a, b, left=False), INT_DTYPES)
logical_and = binary_op("logical_and", lambda a, b, _: a & b, ("bool",))
logical_or = binary_op("logical_or", lambda a, b, _: a | b, ("bool",))
logical_xor = binary_op("logical_xor", lambda a, b, _: a ^ b, ("bool",))
_ALL = (*NUMBER_DTYPES, "bool")
equal = binary_op("equal", lambda a, b, _: a == b, _ALL, out_dtype="bool")
not_equal = binary_op("not_equal", lambda a, b, _: a != b, _ALL, out_dtype="bool")
less = binary_op("less", lambda a, b, _: a < b, NUMBER_DTYPES, out_dtype="bool")
less_equal = binary_op("less_equal", lambda a, b, _: a <= b, NUMBER_DTYPES, out_dtype="bool")
greater = binary_op("greater", lambda a, b, _: a > b, NUMBER_DTYPES, out_dtype="bool")
greater_equal = binary_op("greater_equal", lambda a, b, _: a >= b, NUMBER_DTYPES, out_dtype="bool")


# ----------------------------------------------------------------------------- where

where = register_op("where", NoAttrs, OpPattern.BROADCAST, num_inputs=3)


@where.type_rule
def _where_type(types: list, attrs: NoAttrs) -> TensorType:
    cond, x, y = (tensor(types, i, n) for i, n in enumerate(("condition", "x", "y")))
    check_dtype(cond, "condition", ("bool",))
    dtype = same_dtype([x, y], ["x", "y"])
    return TensorType(broadcast_shapes(cond.shape, x.shape, y.shape), dtype)


@where.reference
def _where_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    cond, x, y = (np.asarray(v) for v in inputs)
    return np.where(cond, x, y).astype(x.dtype, copy=False)
