"""Neural-network ops: activations, batch_norm, softmax, pad, prelu.

Convolutions and matrix products live in :mod:`ember.ops.nn_conv`, pooling
and LRN in :mod:`ember.ops.nn_pool`; they are re-exported here so every
``nn.*`` op is an attribute of this module::

    >>> from ember.ops import nn
    >>> nn.relu.evaluate([np.array([-1.0, 2.0], "float32")], nn.relu.attrs_type())
    array([0., 2.], dtype=float32)
"""

from __future__ import annotations

import math as _pymath
from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    FLOAT_DTYPES,
    NUMBER_DTYPES,
    SIGNED_INT_DTYPES,
    broadcast_shapes,
    check_dtype,
    choice,
    normalize_axis,
    number,
    same_dtype,
    set_attr,
    tensor,
)
from ember.ops.math import dropout, erf_float64, unary_op
from ember.ops.nn_conv import batch_matmul, conv2d, conv2d_transpose, dense, matmul
from ember.ops.nn_pool import (
    avg_pool2d,
    global_avg_pool2d,
    global_max_pool2d,
    lrn,
    max_pool2d,
)
from ember.ops.registry import NoAttrs, OpPattern, register_op

__all__ = [
    "avg_pool2d",
    "batch_matmul",
    "batch_norm",
    "conv2d",
    "conv2d_transpose",
    "dense",
    "dropout",
    "elu",
    "gelu",
    "global_avg_pool2d",
    "global_max_pool2d",
    "hard_sigmoid",
    "hard_swish",
    "leaky_relu",
    "log_softmax",
    "lrn",
    "matmul",
    "max_pool2d",
    "mish",
    "pad",
    "prelu",
    "relu",
    "selu",
    "silu",
    "softmax",
    "softplus",
]

# ----------------------------------------------------------------------------- activations

# Unsigned relu is the identity, but quantized graphs still carry it: accept every number dtype.
relu = unary_op("nn.relu", lambda x, a: np.maximum(x, np.zeros((), x.dtype)), NUMBER_DTYPES)


@dataclass(frozen=True)
class GeluAttrs:
    """``approximate="none"`` uses erf; ``"tanh"`` the tanh formula (ONNX Gelu)."""

    approximate: str = "none"

    def __post_init__(self) -> None:
        choice("approximate", self.approximate, ("none", "tanh"))


def _gelu(x: np.ndarray, attrs: GeluAttrs) -> np.ndarray:
    x64 = x.astype(np.float64)
    if attrs.approximate == "tanh":
        inner = _pymath.sqrt(2 / _pymath.pi) * (x64 + 0.044715 * x64**3)
        return 0.5 * x64 * (1 + np.tanh(inner))
    return 0.5 * x64 * (1 + erf_float64(x64 / _pymath.sqrt(2)))


gelu = unary_op("nn.gelu", _gelu, FLOAT_DTYPES, GeluAttrs)


@dataclass(frozen=True)
class LeakyReluAttrs:
    """Slope ``alpha`` for negative inputs."""

    alpha: float = 0.01

    def __post_init__(self) -> None:
        set_attr(self, "alpha", number("alpha", self.alpha))


leaky_relu = unary_op(
    "nn.leaky_relu", lambda x, a: np.where(x >= 0, x, x * a.alpha), FLOAT_DTYPES, LeakyReluAttrs
)


@dataclass(frozen=True)
class EluAttrs:
    """``alpha * (exp(x) - 1)`` for negative inputs."""

    alpha: float = 1.0

    def __post_init__(self) -> None:
        set_attr(self, "alpha", number("alpha", self.alpha))


elu = unary_op(
    "nn.elu", lambda x, a: np.where(x > 0, x, a.alpha * np.expm1(x)), FLOAT_DTYPES, EluAttrs
)

SELU_ALPHA = 1.67326319217681884765625  # ONNX defaults (float32-exact)
SELU_GAMMA = 1.05070102214813232421875


@dataclass(frozen=True)
class SeluAttrs:
    """``gamma * (x if x > 0 else alpha * (exp(x) - 1))``."""

    alpha: float = SELU_ALPHA
    gamma: float = SELU_GAMMA

    def __post_init__(self) -> None:
        set_attr(self, "alpha", number("alpha", self.alpha))
        set_attr(self, "gamma", number("gamma", self.gamma))


selu = unary_op(
    "nn.selu",
    lambda x, a: a.gamma * np.where(x > 0, x, a.alpha * np.expm1(x)),
    FLOAT_DTYPES,
    SeluAttrs,
)
softplus = unary_op("nn.softplus", lambda x, a: np.logaddexp(0, x), FLOAT_DTYPES)


def _silu(x: np.ndarray, attrs: NoAttrs) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 * np.exp(-np.logaddexp(0, -x64))  # the sigmoid that never overflows


def _mish(x: np.ndarray, attrs: NoAttrs) -> np.ndarray:
    x64 = x.astype(np.float64)
    return x64 * np.tanh(np.logaddexp(0, x64))


silu = unary_op("nn.silu", _silu, FLOAT_DTYPES, doc="``x * sigmoid(x)`` (SiLU, swish with beta 1).")
mish = unary_op("nn.mish", _mish, FLOAT_DTYPES, doc="``x * tanh(softplus(x))``.")


# FLOPs as the primitive ops they replace count them (sigmoid + multiply; softplus + tanh
# + multiply), so a profile reads the same before and after rewrite_activations.
@silu.flop_rule
def _silu_flops(call: Call) -> int:
    return 2 * call.type.size  # type: ignore[union-attr]


@mish.flop_rule
def _mish_flops(call: Call) -> int:
    return 3 * call.type.size  # type: ignore[union-attr]


@dataclass(frozen=True)
class HardSigmoidAttrs:
    """``clip(alpha * x + beta, 0, 1)`` (ONNX defaults)."""

    alpha: float = 0.2
    beta: float = 0.5

    def __post_init__(self) -> None:
        set_attr(self, "alpha", number("alpha", self.alpha))
        set_attr(self, "beta", number("beta", self.beta))


hard_sigmoid = unary_op(
    "nn.hard_sigmoid",
    lambda x, a: np.clip(a.alpha * x.astype(np.float64) + a.beta, 0, 1),
    FLOAT_DTYPES,
    HardSigmoidAttrs,
)
hard_swish = unary_op(
    "nn.hard_swish",
    lambda x, a: x * np.clip(x.astype(np.float64) / 6 + 0.5, 0, 1),
    FLOAT_DTYPES,
)

# ----------------------------------------------------------------------------- prelu

prelu = register_op("nn.prelu", NoAttrs, OpPattern.BROADCAST, num_inputs=2)


@prelu.type_rule
def _prelu_type(types: list, attrs: NoAttrs) -> TensorType:
    x, slope = tensor(types, 0, "data"), tensor(types, 1, "slope")
    same_dtype([x, slope], ["data", "slope"])
    check_dtype(x, "data", FLOAT_DTYPES + SIGNED_INT_DTYPES)
    try:
        fits = broadcast_shapes(x.shape, slope.shape) == x.shape
    except ShapeError:
        fits = False
    if not fits:
        raise ShapeError(
            f"prelu: slope of shape {slope.shape} does not broadcast to data {x.shape}",
            hint="for NCHW data with one slope per channel use shape (C, 1, 1)",
        )
    return x


@prelu.reference
def _prelu_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    x, slope = np.asarray(inputs[0]), np.asarray(inputs[1])
    return np.where(x < 0, x * slope, x).astype(x.dtype)


# ----------------------------------------------------------------------------- batch_norm


@dataclass(frozen=True)
class BatchNormAttrs:
    """Inference batch norm over channel ``axis``: ``(x - mean) / sqrt(var + eps) * g + b``."""

    epsilon: float = 1e-5
    axis: int = 1

    def __post_init__(self) -> None:
        set_attr(self, "epsilon", number("epsilon", self.epsilon, nonneg=True))
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise AttrError(f"attribute axis must be an int, got {self.axis!r}")
        set_attr(self, "axis", int(self.axis))


batch_norm = register_op("nn.batch_norm", BatchNormAttrs, OpPattern.BROADCAST, num_inputs=5)


@batch_norm.flop_rule
def _batch_norm_flops(call: Call) -> int:
    return 2 * call.type.size  # one scale, one shift


_BN_INPUTS = ("data", "gamma", "beta", "moving_mean", "moving_var")


@batch_norm.type_rule
def _batch_norm_type(types: list, attrs: BatchNormAttrs) -> TensorType:
    ts = [tensor(types, i, n) for i, n in enumerate(_BN_INPUTS)]
    same_dtype(ts, _BN_INPUTS)
    check_dtype(ts[0], "data", FLOAT_DTYPES)
    axis = normalize_axis(attrs.axis, ts[0].ndim)
    channels = ts[0].shape[axis]
    for t, n in zip(ts[1:], _BN_INPUTS[1:]):
        if t.shape != (channels,):
            raise ShapeError(
                f"batch_norm: {n} has shape {t.shape}, expected ({channels},) "
                f"(data has {channels} channels on axis {axis})"
            )
    return ts[0]


@batch_norm.reference
def _batch_norm_ref(inputs: list[np.ndarray], attrs: BatchNormAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    axis = normalize_axis(attrs.axis, x.ndim)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64).reshape(shape) for v in inputs[1:])
    scale = gamma / np.sqrt(var + attrs.epsilon)
    return (x * scale + (beta - mean * scale)).astype(x.dtype)


# ----------------------------------------------------------------------------- softmax


@dataclass(frozen=True)
class SoftmaxAttrs:
    """Normalize over one ``axis`` (negative counts from the end)."""

    axis: int = -1

    def __post_init__(self) -> None:
        if isinstance(self.axis, bool) or not isinstance(self.axis, int | np.integer):
            raise AttrError(f"attribute axis must be an int, got {self.axis!r}")
        set_attr(self, "axis", int(self.axis))


def _softmax_type(types: list, attrs: SoftmaxAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_dtype(data, "data", FLOAT_DTYPES)
    normalize_axis(attrs.axis, data.ndim)
    return data


softmax = register_op("nn.softmax", SoftmaxAttrs, OpPattern.OPAQUE, num_inputs=1)
softmax.type_rule(_softmax_type)
log_softmax = register_op("nn.log_softmax", SoftmaxAttrs, OpPattern.OPAQUE, num_inputs=1)


@softmax.flop_rule
@log_softmax.flop_rule
def _softmax_flops(call: Call) -> int:
    return 4 * call.type.size  # max, exp, sum, divide


log_softmax.type_rule(_softmax_type)


@softmax.reference
def _softmax_ref(inputs: list[np.ndarray], attrs: SoftmaxAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    if x.size == 0:  # numpy's max has no identity to reduce an empty axis with
        return x.copy()
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=attrs.axis, keepdims=True))
    return (e / e.sum(axis=attrs.axis, keepdims=True)).astype(x.dtype)


@log_softmax.reference
def _log_softmax_ref(inputs: list[np.ndarray], attrs: SoftmaxAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    if x.size == 0:
        return x.copy()
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=attrs.axis, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=attrs.axis, keepdims=True))).astype(x.dtype)


# ----------------------------------------------------------------------------- pad


@dataclass(frozen=True)
class PadAttrs:
    """``pad_width``: one (before, after) pair of non-negative ints per axis."""

    pad_width: tuple[tuple[int, int], ...]
    pad_value: float = 0.0
    mode: str = "constant"

    def __post_init__(self) -> None:
        try:
            pairs = tuple(tuple(p) for p in self.pad_width)
        except TypeError:
            raise AttrError(
                "attribute pad_width must be a tuple of (before, after) pairs, "
                f"got {self.pad_width!r}"
            ) from None
        for p in pairs:
            if len(p) != 2 or not all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 0 for v in p
            ):
                raise AttrError(
                    f"attribute pad_width must hold (before, after) pairs of ints >= 0, got {p!r}",
                    hint="crop with strided_slice instead of negative padding",
                )
        set_attr(self, "pad_width", tuple((int(a), int(b)) for a, b in pairs))
        set_attr(self, "pad_value", number("pad_value", self.pad_value))
        choice("mode", self.mode, ("constant", "edge", "reflect"))


pad = register_op("nn.pad", PadAttrs, OpPattern.INJECTIVE, num_inputs=1)


@pad.type_rule
def _pad_type(types: list, attrs: PadAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_dtype(data, "data", (*NUMBER_DTYPES, "bool"))
    if len(attrs.pad_width) != data.ndim:
        raise ShapeError(
            f"pad: pad_width has {len(attrs.pad_width)} pairs but data has rank {data.ndim}"
        )
    for axis, ((before, after), size) in enumerate(zip(attrs.pad_width, data.shape)):
        if attrs.mode == "reflect" and max(before, after) > size - 1:
            raise ShapeError(
                f"pad: reflect padding ({before}, {after}) on axis {axis} must be smaller than "
                f"its size {size}"
            )
        if attrs.mode == "edge" and size == 0 and before + after > 0:
            raise ShapeError(f"pad: edge padding of the empty axis {axis}")
    shape = tuple(s + b + a for s, (b, a) in zip(data.shape, attrs.pad_width))
    return TensorType(shape, data.dtype)


@pad.reference
def _pad_ref(inputs: list[np.ndarray], attrs: PadAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    if attrs.mode == "constant":
        value = np.asarray(attrs.pad_value).astype(x.dtype)
        return np.pad(x, attrs.pad_width, mode="constant", constant_values=value)
    return np.pad(x, attrs.pad_width, mode=attrs.mode)
