"""Scalar rules of elementwise and broadcast ops: one loop-IR expression per element.

Each rule takes the operands' element expressions and the op's attributes and
returns the result element; :mod:`ember.topi.elementwise` wraps a rule into a
``te.compute`` over the (broadcast) output shape, and fused kernels compose the
rules of a whole chain into one expression. The rules name ops by their graph
op name (``"nn.relu"``) and know nothing of the graph IR.

    relu = SCALAR_RULES["nn.relu"]
    relu([x], attrs, "float32")      # Max(x, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ember.errors import LoweringError
from ember.tir.expr import (
    BitAnd,
    BitNot,
    BitOr,
    BitXor,
    Cast,
    PrimExpr,
    ShiftLeft,
    ShiftRight,
    call_intrin,
    const,
    dtype_element,
    is_float,
    is_int,
    is_unsigned,
    max_,
    min_,
    select,
)

ScalarRule = Callable[[list[PrimExpr], Any, str], PrimExpr]
SCALAR_RULES: dict[str, ScalarRule] = {}


def _rule(*names: str) -> Callable[[ScalarRule], ScalarRule]:
    def register(fn: ScalarRule) -> ScalarRule:
        for name in names:
            SCALAR_RULES[name] = fn
        return fn

    return register


def _c(value: float, dtype: str) -> PrimExpr:
    return const(value, dtype_element(dtype))


def _intrin(name: str) -> ScalarRule:
    return lambda args, attrs, dtype: call_intrin(args[0].dtype, name, args[0])


_INTRINSIC_OPS = (
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "tanh",
    "sigmoid",
    "erf",
    "floor",
    "ceil",
    "sin",
    "cos",
    "asin",
    "acos",
    "atan",
    "asinh",
    "acosh",
    "atanh",
)
for _name in _INTRINSIC_OPS:
    SCALAR_RULES[_name] = _intrin(_name)


@_rule("round")
def _round(args, attrs, dtype):
    return call_intrin(args[0].dtype, "nearbyint", args[0])  # half to even, like ONNX


@_rule("abs")
def _abs(args, attrs, dtype):
    (x,) = args
    if is_unsigned(x.dtype):
        return x
    return select(x < _c(0, x.dtype), _c(0, x.dtype) - x, x)


@_rule("negative")
def _negative(args, attrs, dtype):
    return _c(0, args[0].dtype) - args[0]


@_rule("sign")
def _sign(args, attrs, dtype):
    (x,) = args
    zero, one = _c(0, x.dtype), _c(1, x.dtype)
    if is_unsigned(x.dtype):
        return select(x > zero, one, zero)
    return select(x > zero, one, select(x < zero, _c(-1, x.dtype), zero))


@_rule("reciprocal")
def _reciprocal(args, attrs, dtype):
    return _c(1, args[0].dtype) / args[0]


@_rule("bitwise_not")
def _bitwise_not(args, attrs, dtype):
    return BitNot(args[0])


@_rule("logical_not")
def _logical_not(args, attrs, dtype):
    return ~args[0]


@_rule("identity", "nn.dropout")
def _identity(args, attrs, dtype):
    return args[0]


@_rule("cast")
def _cast(args, attrs, dtype):
    (x,) = args
    if dtype == "bool":
        return x.not_equal(_c(0, x.dtype))
    if is_int(dtype) and is_float(x.dtype):
        # C truncates float -> int too; the explicit trunc keeps vector code right.
        return Cast(dtype, call_intrin(x.dtype, "trunc", x))
    return x.astype(dtype)


@_rule("nn.relu")
def _relu(args, attrs, dtype):
    return max_(args[0], _c(0, args[0].dtype))


@_rule("nn.leaky_relu")
def _leaky_relu(args, attrs, dtype):
    (x,) = args
    return select(x >= _c(0, x.dtype), x, x * _c(attrs.alpha, x.dtype))


@_rule("nn.elu")
def _elu(args, attrs, dtype):
    (x,) = args
    neg = _c(attrs.alpha, x.dtype) * (call_intrin(x.dtype, "exp", x) - _c(1, x.dtype))
    return select(x >= _c(0, x.dtype), x, neg)


@_rule("nn.selu")
def _selu(args, attrs, dtype):
    (x,) = args
    neg = _c(attrs.alpha, x.dtype) * (call_intrin(x.dtype, "exp", x) - _c(1, x.dtype))
    return _c(attrs.gamma, x.dtype) * select(x > _c(0, x.dtype), x, neg)


@_rule("nn.softplus")
def _softplus(args, attrs, dtype):
    (x,) = args
    # log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
    abs_x = select(x < _c(0, x.dtype), _c(0, x.dtype) - x, x)
    tail = call_intrin(x.dtype, "log1p", call_intrin(x.dtype, "exp", _c(0, x.dtype) - abs_x))
    return max_(x, _c(0, x.dtype)) + tail


@_rule("nn.silu")
def _silu(args, attrs, dtype):
    (x,) = args
    return x * call_intrin(x.dtype, "sigmoid", x)


@_rule("nn.mish")
def _mish(args, attrs, dtype):
    (x,) = args
    return x * call_intrin(x.dtype, "tanh", _softplus(args, attrs, dtype))


@_rule("nn.gelu")
def _gelu(args, attrs, dtype):
    (x,) = args
    half, one = _c(0.5, x.dtype), _c(1, x.dtype)
    if attrs.approximate == "tanh":
        inner = _c(math.sqrt(2 / math.pi), x.dtype) * (x + _c(0.044715, x.dtype) * x * x * x)
        return half * x * (one + call_intrin(x.dtype, "tanh", inner))
    return half * x * (one + call_intrin(x.dtype, "erf", x * _c(1 / math.sqrt(2), x.dtype)))


@_rule("nn.hard_sigmoid")
def _hard_sigmoid(args, attrs, dtype):
    (x,) = args
    y = _c(attrs.alpha, x.dtype) * x + _c(attrs.beta, x.dtype)
    return min_(max_(y, _c(0, x.dtype)), _c(1, x.dtype))


@_rule("nn.hard_swish")
def _hard_swish(args, attrs, dtype):
    (x,) = args
    relu6 = min_(max_(x + _c(3, x.dtype), _c(0, x.dtype)), _c(6, x.dtype))
    return x * relu6 / _c(6, x.dtype)


def _int_bounds(dtype: str) -> tuple[int, int]:
    bits = int(dtype.lstrip("uint"))
    if is_unsigned(dtype):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@_rule("clip")
def _clip(args, attrs, dtype):
    (x,) = args
    low, high = attrs.a_min, attrs.a_max
    if is_int(x.dtype):
        # Integer bounds: the smallest / largest integer inside the float bound, clamped
        # to the dtype's range (ONNX Clip on int8 with min=-1000).
        lo_t, hi_t = _int_bounds(x.dtype)
        if low is not None:
            low = min(max(math.ceil(low), lo_t), hi_t)
        if high is not None:
            high = max(min(math.floor(high), hi_t), lo_t)
    if low is not None:
        x = max_(x, _c(low, x.dtype))
    if high is not None:
        x = min_(x, _c(high, x.dtype))
    return x


# ----------------------------------------------------------------------------- binary


@_rule("add")
def _add(args, attrs, dtype):
    return args[0] + args[1]


@_rule("subtract")
def _subtract(args, attrs, dtype):
    return args[0] - args[1]


@_rule("multiply")
def _multiply(args, attrs, dtype):
    return args[0] * args[1]


def _nonzero(b: PrimExpr) -> PrimExpr:
    # Integer division by zero traps in C; the reference defines x / 0 = x % 0 = 0.
    return select(b.equal(_c(0, b.dtype)), _c(1, b.dtype), b)


@_rule("divide")
def _divide(args, attrs, dtype):
    a, b = args
    if is_int(a.dtype):
        return select(b.equal(_c(0, b.dtype)), _c(0, a.dtype), a / _nonzero(b))
    return a / b  # Div: C division, truncating on integers like ONNX


@_rule("power")
def _power(args, attrs, dtype):
    a, b = args
    if not is_int(a.dtype):
        return call_intrin(a.dtype, "pow", a, b)
    # C has no integer pow: exact in double below 2**53. A negative exponent truncates to
    # 0 unless |a| == 1 (the reference's rule).
    zero, one = _c(0, a.dtype), _c(1, a.dtype)
    positive = Cast(
        a.dtype,
        call_intrin(
            "float64", "pow", a.astype("float64"), max_(b, _c(0, b.dtype)).astype("float64")
        ),
    )
    if is_unsigned(a.dtype):
        return positive
    odd = (b % _c(2, b.dtype)).not_equal(_c(0, b.dtype))
    negative = select(
        a.equal(one), one, select(a.equal(_c(-1, a.dtype)), select(odd, _c(-1, a.dtype), one), zero)
    )
    return select(b < _c(0, b.dtype), negative, positive)


@_rule("maximum")
def _maximum(args, attrs, dtype):
    return max_(args[0], args[1])


@_rule("minimum")
def _minimum(args, attrs, dtype):
    return min_(args[0], args[1])


@_rule("mod")
def _mod(args, attrs, dtype):
    a, b = args
    if is_float(a.dtype):
        rem = call_intrin(a.dtype, "fmod", a, b)
        if attrs.fmod:
            return rem
        # Python semantics: the result takes the divisor's sign.
        zero = _c(0, a.dtype)
        fix = rem.not_equal(zero) & (rem < zero).not_equal(b < zero)
        return select(fix, rem + b, rem)
    safe = _nonzero(b)
    if attrs.fmod:
        rem = a - (a / safe) * safe  # C's / truncates, so this is C's % (truncated mod)
    else:
        rem = a % safe  # FloorMod
    return select(b.equal(_c(0, b.dtype)), _c(0, a.dtype), rem)


_BITWISE = {"bitwise_and": BitAnd, "bitwise_or": BitOr, "bitwise_xor": BitXor}
for _name, _node in _BITWISE.items():
    SCALAR_RULES[_name] = lambda args, attrs, dtype, _node=_node: _node(args[0], args[1])


def _shift_rule(left: bool) -> ScalarRule:
    """ONNX BitShift (see ember.ops.math): C leaves negative shifts, shifts by the bit
    width or more and left shifts of negative values undefined, so the rule shifts only
    in-range amounts and shifts left in the unsigned type."""

    def rule(args, attrs, dtype):
        a, b = args
        base = dtype_element(a.dtype)
        bits = int(base.lstrip("uint"))
        zero = _c(0, a.dtype)
        in_range = (b >= _c(0, b.dtype)) & (b < _c(bits, b.dtype))
        amount = select(in_range, b, _c(0, b.dtype))
        if left:
            unsigned = base if is_unsigned(base) else "u" + base
            shifted = Cast(base, ShiftLeft(Cast(unsigned, a), Cast(unsigned, amount)))
            return select(in_range, shifted, zero)
        fill = zero if is_unsigned(base) else select(a < zero, _c(-1, a.dtype), zero)
        return select(in_range, ShiftRight(a, amount), fill)

    return rule


SCALAR_RULES["left_shift"] = _shift_rule(left=True)
SCALAR_RULES["right_shift"] = _shift_rule(left=False)


@_rule("nn.prelu")
def _prelu(args, attrs, dtype):
    x, slope = args
    return select(x >= _c(0, x.dtype), x, x * slope)


_COMPARE = {
    "equal": lambda a, b: a.equal(b),
    "not_equal": lambda a, b: a.not_equal(b),
    "less": lambda a, b: a < b,
    "less_equal": lambda a, b: a <= b,
    "greater": lambda a, b: a > b,
    "greater_equal": lambda a, b: a >= b,
    "logical_and": lambda a, b: a & b,
    "logical_or": lambda a, b: a | b,
    "logical_xor": lambda a, b: a.not_equal(b),
}
for _name, _fn in _COMPARE.items():
    SCALAR_RULES[_name] = lambda args, attrs, dtype, _fn=_fn: _fn(args[0], args[1])


@_rule("where")
def _where(args, attrs, dtype):
    return select(args[0], args[1], args[2])


@_rule("nn.batch_norm")
def _batch_norm(args, attrs, dtype):
    # Only reached when batch norm could not be folded into a conv/dense: the
    # per-channel operands arrive already broadcast by the caller.
    x, gamma, beta, mean, var = args
    scale = gamma / call_intrin(x.dtype, "sqrt", var + _c(attrs.epsilon, x.dtype))
    return (x - mean) * scale + beta


def scalar_rule(op_name: str) -> ScalarRule:
    """The rule of ``op_name``; a LoweringError if it is not an elementwise op."""
    try:
        return SCALAR_RULES[op_name]
    except KeyError:
        raise LoweringError(f"op {op_name} has no elementwise rule") from None
