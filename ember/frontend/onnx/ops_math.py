"""ONNX converters: elementwise math, activations, comparisons, casts and reductions.

@converter("Relu", min_version=6)  ->  nn.relu(x)
Gelu(approximate="tanh")           ->  nn.gelu(x, approximate="tanh")
ReduceSum(x, axes=[1], keepdims=0) ->  reduce_sum(x, axes=(1,), keepdims=False)
"""

from __future__ import annotations

import numpy as np

from ember.frontend.common import int_list, matmul_along, scalar
from ember.frontend.onnx.context import (
    OnnxNode,
    converter,
    ember_dtype,
)
from ember.graph.ir import Constant, Expr

# ----------------------------------------------------------------------------- unary

_UNARY = {
    "Abs": "abs",
    "Neg": "negative",
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round",
    "Sign": "sign",
    "Sin": "sin",
    "Cos": "cos",
    "Asin": "asin",
    "Acos": "acos",
    "Atan": "atan",
    "Asinh": "asinh",
    "Acosh": "acosh",
    "Atanh": "atanh",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Relu": "nn.relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Erf": "erf",
    "Softplus": "nn.softplus",
    "Not": "logical_not",
    "HardSwish": "nn.hard_swish",
}


@converter(*_UNARY)
def _unary(node: OnnxNode) -> Expr:
    return node.call(_UNARY[node.op_type], node.input(0))


_BITWISE = {
    "BitwiseAnd": "bitwise_and",
    "BitwiseOr": "bitwise_or",
    "BitwiseXor": "bitwise_xor",
}


@converter(*_BITWISE, min_version=18)
def _bitwise(node: OnnxNode) -> Expr:
    return node.call(_BITWISE[node.op_type], node.input(0), node.input(1))


@converter("BitwiseNot", min_version=18)
def _bitwise_not(node: OnnxNode) -> Expr:
    return node.call("bitwise_not", node.input(0))


@converter("BitShift", min_version=11)
def _bit_shift(node: OnnxNode) -> Expr:
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise node.error(f"direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    op = "left_shift" if direction == "LEFT" else "right_shift"
    return node.call(op, node.input(0), node.input(1))


@converter("LeakyRelu", min_version=6)
def _leaky_relu(node: OnnxNode) -> Expr:
    return node.call("nn.leaky_relu", node.input(0), alpha=node.attr("alpha", 0.01))


@converter("Elu", min_version=6)
def _elu(node: OnnxNode) -> Expr:
    return node.call("nn.elu", node.input(0), alpha=node.attr("alpha", 1.0))


@converter("Selu", min_version=6)
def _selu(node: OnnxNode) -> Expr:
    return node.call(
        "nn.selu",
        node.input(0),
        alpha=node.attr("alpha", 1.67326319217681884765625),
        gamma=node.attr("gamma", 1.05070102214813232421875),
    )


@converter("HardSigmoid", min_version=6)
def _hard_sigmoid(node: OnnxNode) -> Expr:
    return node.call(
        "nn.hard_sigmoid", node.input(0), alpha=node.attr("alpha", 0.2), beta=node.attr("beta", 0.5)
    )


@converter("Gelu")
def _gelu(node: OnnxNode) -> Expr:
    return node.call("nn.gelu", node.input(0), approximate=node.attr("approximate", "none"))


@converter("PRelu", min_version=7)
def _prelu(node: OnnxNode) -> Expr:
    return node.call("nn.prelu", node.input(0), node.input(1))


@converter("Softsign")
def _softsign(node: OnnxNode) -> Expr:
    x = node.input(0)
    one = scalar(1.0, x)
    return node.call("divide", x, node.call("add", one, node.call("abs", x)))


@converter("Mish", min_version=18)
def _mish(node: OnnxNode) -> Expr:
    return node.call("nn.mish", node.input(0))


@converter("Swish", min_version=24)
def _swish(node: OnnxNode) -> Expr:
    x = node.input(0)
    alpha = node.attr("alpha", 1.0)
    if alpha == 1.0:
        return node.call("nn.silu", x)
    scaled = node.call("multiply", x, scalar(alpha, x))
    return node.call("multiply", x, node.call("sigmoid", scaled))


@converter("Celu", min_version=12)
def _celu(node: OnnxNode) -> Expr:
    # max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    x = node.input(0)
    alpha = scalar(node.attr("alpha", 1.0), x)
    zero, one = scalar(0.0, x), scalar(1.0, x)
    expm1 = node.call("subtract", node.call("exp", node.call("divide", x, alpha)), one)
    negative_part = node.call("minimum", zero, node.call("multiply", alpha, expm1))
    return node.call("add", node.call("maximum", zero, x), negative_part)


@converter("Sinh", "Cosh", min_version=9)
def _sinh_cosh(node: OnnxNode) -> Expr:
    x = node.input(0)
    grow, decay = node.call("exp", x), node.call("exp", node.call("negative", x))
    combined = node.call("subtract" if node.op_type == "Sinh" else "add", grow, decay)
    return node.call("multiply", combined, scalar(0.5, x))


@converter("Tan", min_version=7)
def _tan(node: OnnxNode) -> Expr:
    x = node.input(0)
    return node.call("divide", node.call("sin", x), node.call("cos", x))


@converter("ThresholdedRelu", min_version=10)
def _thresholded_relu(node: OnnxNode) -> Expr:
    x = node.input(0)
    above = node.call("greater", x, scalar(node.attr("alpha", 1.0), x))
    return node.call("where", above, x, scalar(0.0, x))


@converter("Shrink", min_version=9)
def _shrink(node: OnnxNode) -> Expr:
    x = node.input(0)
    lambd, bias = node.attr("lambd", 0.5), node.attr("bias", 0.0)
    zero = scalar(0, x)
    low = node.call("less", x, scalar(-lambd, x))
    high = node.call("greater", x, scalar(lambd, x))
    shifted_up = node.call("add", x, scalar(bias, x))
    shifted_down = node.call("subtract", x, scalar(bias, x))
    return node.call("where", low, shifted_up, node.call("where", high, shifted_down, zero))


@converter("IsNaN", min_version=9)
def _isnan(node: OnnxNode) -> Expr:
    x = node.input(0)
    return node.call("not_equal", x, x)


@converter("IsInf", min_version=10)
def _isinf(node: OnnxNode) -> Expr:
    x = node.input(0)
    inf = scalar(np.inf, x)
    positive = node.call("equal", x, inf)
    negative = node.call("equal", x, node.call("negative", inf))
    detect_pos, detect_neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    if detect_pos and detect_neg:
        return node.call("logical_or", positive, negative)
    if detect_pos:
        return positive
    if detect_neg:
        return negative
    return node.call("logical_and", positive, negative)  # all False, with x's shape


@converter("Clip", min_version=6)
def _clip(node: OnnxNode) -> Expr:
    x = node.input(0)
    if node.version < 11:
        low, high = node.attr("min"), node.attr("max")
        return node.call("clip", x, a_min=low, a_max=high)
    bounds = []
    for index in (1, 2):
        bounds.append(node.input(index) if node.has_input(index) else None)
    if x.type.dtype.startswith("float") and all(  # type: ignore[union-attr]
        b is None or isinstance(b, Constant) for b in bounds
    ):
        low, high = (None if b is None else float(b.value) for b in bounds)  # type: ignore[union-attr]
        return node.call("clip", x, a_min=low, a_max=high)
    # Integer inputs or bounds computed in the graph: max/min keep x's dtype exactly.
    if bounds[0] is not None:
        x = node.call("maximum", x, bounds[0])
    if bounds[1] is not None:
        x = node.call("minimum", x, bounds[1])
    return x


@converter("Cast", min_version=6)
def _cast(node: OnnxNode) -> Expr:
    x = node.input(0)
    dtype = ember_dtype(node.attr("to"), f"{node} target type")
    ember_dtype_source = x.type.dtype  # type: ignore[union-attr]
    if ember_dtype_source == dtype:
        return x
    return node.call("cast", x, dtype=dtype)


@converter("CastLike", min_version=15)
def _cast_like(node: OnnxNode) -> Expr:
    x, like = node.input(0), node.input(1)
    if x.type.dtype == like.type.dtype:  # type: ignore[union-attr]
        return x
    return node.call("cast", x, dtype=like.type.dtype)  # type: ignore[union-attr]


@converter("Identity")
def _identity(node: OnnxNode) -> Expr:
    return node.input(0)


@converter("Dropout", min_version=7)
def _dropout(node: OnnxNode) -> list[Expr | None]:
    if node.version >= 12 and node.has_input(2):
        training = node.const(2, "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise node.unsupported("training_mode=True (random dropout) is not supported")
    x = node.input(0)
    outputs: list[Expr | None] = [x]
    if node.num_outputs > 1:
        # Inference: nothing is dropped, so the mask is all True.
        outputs.append(node.constant(np.ones(x.type.shape, dtype=bool)))  # type: ignore[union-attr]
    return outputs


# ----------------------------------------------------------------------------- binary

_BINARY = {
    "Add": "add",
    "Sub": "subtract",
    "Mul": "multiply",
    "Div": "divide",
    "And": "logical_and",
    "Or": "logical_or",
    "Xor": "logical_xor",
    "Equal": "equal",
    "Less": "less",
    "LessOrEqual": "less_equal",
    "Greater": "greater",
    "GreaterOrEqual": "greater_equal",
}


@converter(*_BINARY, min_version=7)
def _binary(node: OnnxNode) -> Expr:
    return node.call(_BINARY[node.op_type], node.input(0), node.input(1))


@converter("Pow", min_version=7)
def _pow(node: OnnxNode) -> Expr:
    base, exponent = node.input(0), node.input(1)
    if exponent.type.dtype != base.type.dtype:  # type: ignore[union-attr]
        # ONNX allows a different exponent type; the result has the base's type.
        exponent = node.call("cast", exponent, dtype=base.type.dtype)  # type: ignore[union-attr]
    return node.call("power", base, exponent)


@converter("Mod", min_version=10)
def _mod(node: OnnxNode) -> Expr:
    return node.call("mod", node.input(0), node.input(1), fmod=bool(node.attr("fmod", 0)))


@converter("Where", min_version=9)
def _where(node: OnnxNode) -> Expr:
    return node.call("where", node.input(0), node.input(1), node.input(2))


_VARIADIC = {"Sum": "add", "Max": "maximum", "Min": "minimum", "Mean": "add"}


@converter(*_VARIADIC, min_version=6)
def _variadic(node: OnnxNode) -> Expr:
    inputs = node.inputs()
    result = inputs[0]
    for other in inputs[1:]:
        result = node.call(_VARIADIC[node.op_type], result, other)
    if node.op_type == "Mean":
        result = node.call("divide", result, scalar(len(inputs), result))
    elif len(inputs) == 1:
        result = node.call("identity", result)
    return result


def _cumulative_mask(node: OnnxNode, n: int) -> np.ndarray:
    """mask[i, j] of CumSum / CumProd: input i contributes to output j."""
    i, j = np.indices((n, n))
    exclusive, reverse = node.attr("exclusive", 0), node.attr("reverse", 0)
    if reverse:
        return i > j if exclusive else i >= j
    return i < j if exclusive else i <= j


@converter("CumProd", min_version=26)
def _cumprod(node: OnnxNode) -> Expr:
    """Each output j is the product over the inputs its mask row selects: ``x`` repeated
    along a new axis, 1 where the mask is off, reduce_prod (exact for integers)."""
    x = node.input(0)
    shape = node.shape(0)
    rank = len(shape)
    axis = node.axis(int(node.const(1, "axis").reshape(-1)[0]), rank)
    mask = _cumulative_mask(node, shape[axis])
    # x[..., i, (1), ...] against mask (i, j): the new axis after ``axis`` is j
    expanded = node.call("expand_dims", x, axes=(axis + 1,))
    mask_shape = tuple(shape[axis] if a in (axis, axis + 1) else 1 for a in range(rank + 1))
    cond = node.constant(mask.reshape(mask_shape))
    one = node.constant(np.ones((), node.dtype(0)))
    factors = node.call("where", cond, expanded, one)
    return node.call("reduce_prod", factors, axes=(axis,))


@converter("CumSum", min_version=11)
def _cumsum(node: OnnxNode) -> Expr:
    """A matmul with a triangular 0/1 matrix along ``axis`` (exact for integers)."""
    shape = node.shape(0)
    axis = node.axis(int(node.const(1, "axis").reshape(-1)[0]), len(shape))
    mask = _cumulative_mask(node, shape[axis])
    return matmul_along(node, node.input(0), axis, mask.astype(node.dtype(0)))


# ----------------------------------------------------------------------------- reductions


def _reduce_axes(node: OnnxNode, axes_input_since: int) -> tuple[int, ...] | None | str:
    """The axes of a ReduceX node: a tuple, None (all axes) or "noop" (return the input)."""
    if node.version >= axes_input_since:
        axes = int_list(node.maybe_const(1, "axes")) if node.has_input(1) else []
    else:
        axes = list(node.attr("axes", ()))
    if not axes:
        return "noop" if node.attr("noop_with_empty_axes", 0) else None
    return tuple(axes)


# What a reduction over an empty set gives (ONNX: the identity of the reduction).
_EMPTY_REDUCTION = {
    "reduce_sum": 0,
    "reduce_prod": 1,
    "reduce_max": -np.inf,
    "reduce_min": np.inf,
    "reduce_mean": np.nan,
}


def _reduce(node: OnnxNode, op: str, x: Expr, axes_input_since: int) -> Expr:
    axes = _reduce_axes(node, axes_input_since)
    if axes == "noop":
        return x
    keepdims = bool(node.attr("keepdims", 1))
    shape, dtype = x.type.shape, x.type.dtype  # type: ignore[union-attr]
    rank = len(shape)
    reduced = range(rank) if axes is None else [a % rank for a in axes]  # type: ignore[union-attr]
    if any(shape[a] == 0 for a in reduced):
        # Nothing to reduce: the result is the reduction's identity, whatever the data.
        out_shape = [1 if a in reduced else d for a, d in enumerate(shape)]
        if not keepdims:
            out_shape = [d for a, d in enumerate(shape) if a not in reduced]
        fill = _EMPTY_REDUCTION[op]
        if dtype == "bool":
            fill = op == "reduce_min" or op == "reduce_prod"
        elif not dtype.startswith("float") and not np.isfinite(fill):
            info = np.iinfo(dtype)
            fill = info.min if fill < 0 else info.max
        return node.constant(np.full(out_shape, fill, dtype=dtype))
    if dtype == "bool" and op in ("reduce_max", "reduce_min"):
        # max/min over bools are any/all; reduce them as 0/1 integers.
        as_int = node.call("cast", x, dtype="uint8")
        result = node.call(op, as_int, axes=axes, keepdims=keepdims)
        return node.call("cast", result, dtype="bool")
    return node.call(op, x, axes=axes, keepdims=keepdims)


_REDUCE = {
    "ReduceSum": ("reduce_sum", 13),
    "ReduceMean": ("reduce_mean", 18),
    "ReduceMax": ("reduce_max", 18),
    "ReduceMin": ("reduce_min", 18),
    "ReduceProd": ("reduce_prod", 18),
}


@converter(*_REDUCE)
def _reduce_simple(node: OnnxNode) -> Expr:
    op, since = _REDUCE[node.op_type]
    return _reduce(node, op, node.input(0), since)


@converter("ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")
def _reduce_composite(node: OnnxNode) -> Expr:
    x = node.input(0)
    if _reduce_axes(node, 18) == "noop":
        return x
    kind = node.op_type
    if kind == "ReduceL1":
        return _reduce(node, "reduce_sum", node.call("abs", x), 18)
    if kind in ("ReduceL2", "ReduceSumSquare"):
        squares = _reduce(node, "reduce_sum", node.call("multiply", x, x), 18)
        return node.call("sqrt", squares) if kind == "ReduceL2" else squares
    if kind == "ReduceLogSum":
        return node.call("log", _reduce(node, "reduce_sum", x, 18))
    # ReduceLogSumExp, stabilized by the max: log(sum(exp(x - m))) + m.
    axes = _reduce_axes(node, 18)
    if x.type.size == 0:  # type: ignore[union-attr]
        return node.call("log", _reduce(node, "reduce_sum", x, 18))
    peak = node.call("reduce_max", x, axes=axes, keepdims=True)
    total = _reduce(node, "reduce_sum", node.call("exp", node.call("subtract", x, peak)), 18)
    if not node.attr("keepdims", 1):
        peak = node.call("squeeze", peak, axes=axes)
    return node.call("add", node.call("log", total), peak)


@converter("ArgMax", "ArgMin")
def _arg_reduce(node: OnnxNode) -> Expr:
    return node.call(
        node.op_type.lower(),
        node.input(0),
        axis=node.attr("axis", 0),
        keepdims=bool(node.attr("keepdims", 1)),
        select_last_index=bool(node.attr("select_last_index", 0)),
    )
