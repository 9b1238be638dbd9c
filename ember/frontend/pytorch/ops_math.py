"""PyTorch converters for the less common elementwise math, each a few ember ops.

    log2(x), log10(x)          -> log(x) / log(2), log(x) / log(10)
    expm1(x), logsigmoid(x)    -> exp(x) - 1, -softplus(-x)
    celu(x, a)                 -> relu(x) + min(0, a * (exp(x / a) - 1))
    remainder(x, y)            -> mod(x, y)            (the sign of y, as Python's %)
    floor_divide(x, y)         -> floor(x / y); integers (x - x mod y) / y, exact
    tril(x, k), triu(x, k)     -> where(constant triangle, x, 0)
    nan_to_num(x)              -> where(x != x, 0, where(x == inf, max, ...))

SwinV2's continuous position bias (``sign(x) * log2(|x| + 1)``), window
partition arithmetic (``//``, ``%``) and masks built from tensors use these.
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.pytorch.context import AtenNode, converter, promoted_dtype
from ember.graph.ir import Expr, const


def operands(node: AtenNode) -> tuple[Expr, Expr]:
    """Both operands as tensors of one dtype (a Python number takes the tensor's)."""
    lhs, rhs = node.args[0], node.args[1]
    if isinstance(lhs, int | float) and not isinstance(lhs, bool):
        right = node.tensor(1)
        return scalar(lhs, right), right
    left = node.tensor(0)
    right = scalar(rhs, left) if isinstance(rhs, int | float) else node.tensor(1)
    if left.type.dtype != right.type.dtype:
        target = promoted_dtype(left.type.dtype, right.type.dtype)
        left, right = (
            e if e.type.dtype == target else node.call("cast", e, suffix="/cast", dtype=target)
            for e in (left, right)
        )
    return left, right


def _log_base(base: float):
    def convert(node: AtenNode) -> Expr:
        x = node.tensor(0)
        log = node.call("log", x, suffix="/ln")
        return node.call("divide", log, scalar(math.log(base), x))

    return convert


converter("log2")(_log_base(2.0))
converter("log10")(_log_base(10.0))


@converter("expm1")
def _expm1(node: AtenNode) -> Expr:
    x = node.tensor(0)
    return node.call("subtract", node.call("exp", x, suffix="/exp"), scalar(1, x))


@converter("log_sigmoid", "log_sigmoid_forward")
def _log_sigmoid(node: AtenNode) -> Expr | tuple:
    x = node.tensor(0)
    softplus = node.call("nn.softplus", node.call("negative", x, suffix="/neg"), suffix="/sp")
    out = node.call("negative", softplus)
    return (out, None) if node.op == "log_sigmoid_forward" else out  # (output, buffer)


@converter("celu")
def _celu(node: AtenNode) -> Expr:
    x = node.tensor(0)
    alpha = float(node.arg(1, 1.0))
    scaled = node.call("divide", x, scalar(alpha, x), suffix="/scaled")
    elu = node.call("subtract", node.call("exp", scaled, suffix="/exp"), scalar(1, x))
    negative = node.call("minimum", node.call("multiply", elu, scalar(alpha, x)), scalar(0, x))
    return node.call("add", node.call("nn.relu", x, suffix="/relu"), negative, suffix="/sum")


@converter("hardshrink", "softshrink")
def _shrink(node: AtenNode) -> Expr:
    x = node.tensor(0)
    lambd = float(node.arg(1, 0.5))
    outside = node.call(
        "greater", node.call("abs", x, suffix="/abs"), scalar(lambd, x), suffix="/outside"
    )
    kept = x
    if node.op == "softshrink":  # x - lambda * sign(x) outside [-lambda, lambda]
        shift = node.call("multiply", node.call("sign", x, suffix="/sign"), scalar(lambd, x))
        kept = node.call("subtract", x, shift, suffix="/shrunk")
    return node.call("where", outside, kept, scalar(0, x))


@converter("addcmul", "addcdiv")
def _addc(node: AtenNode) -> Expr:
    """self + value * t1 * t2 (addcmul) or self + value * t1 / t2 (addcdiv)."""
    x, t1, t2 = node.tensor(0), node.tensor(1), node.tensor(2)
    value = node.kwargs.get("value", node.arg(3, 1))
    op = "multiply" if node.op == "addcmul" else "divide"
    product = node.call(op, t1, t2, suffix="/product")
    if value != 1:
        product = node.call("multiply", product, scalar(value, product), suffix="/value")
    return node.call("add", x, product)


@converter("remainder")
def _remainder(node: AtenNode) -> Expr:
    left, right = operands(node)
    return node.call("mod", left, right, fmod=False)


@converter("fmod")
def _fmod(node: AtenNode) -> Expr:
    left, right = operands(node)
    return node.call("mod", left, right, fmod=True)


@converter("floor_divide")
def _floor_divide(node: AtenNode) -> Expr:
    left, right = operands(node)
    return floor_divide(node, left, right)


def floor_divide(node: AtenNode, left: Expr, right: Expr) -> Expr:
    """floor(left / right); for integers (left - left mod right) / right, which divides exactly."""
    if left.type.dtype.startswith("float"):
        quotient = node.call("divide", left, right, suffix="/quotient")
        return node.call("floor", quotient)
    remainder = node.call("mod", left, right, suffix="/remainder", fmod=False)
    exact = node.call("subtract", left, remainder, suffix="/exact")
    return node.call("divide", exact, right)


@converter("tril", "triu")
def _triangle(node: AtenNode) -> Expr:
    """Entries below (tril) or above (triu) diagonal k of the last two axes kept, others 0."""
    x = node.tensor(0)
    shape = shape_of(x)
    if len(shape) < 2:
        raise node.error(f"{node.op} needs a matrix (rank >= 2), got shape {shape}")
    ones = np.ones(shape[-2:], dtype=bool)
    diagonal = int(node.arg(1, 0))
    keep = np.tril(ones, diagonal) if node.op == "tril" else np.triu(ones, diagonal)
    mask = const(keep, name=f"{node.name}/mask")
    zero = scalar(False, x) if x.type.dtype == "bool" else scalar(0, x)
    return node.call("where", mask, x, zero)


@converter("nan_to_num")
def _nan_to_num(node: AtenNode) -> Expr:
    """nan_to_num(self, nan=0.0, posinf=None, neginf=None): None means the dtype's max/min."""
    x = node.tensor(0)
    if not x.type.dtype.startswith("float"):
        return x
    info = np.finfo(x.type.dtype)
    nan, posinf, neginf = node.arg(1, 0.0), node.arg(2, info.max), node.arg(3, info.min)
    out = node.call("where", node.call("not_equal", x, x, suffix="/isnan"), scalar(nan, x), x)
    for value, fill, tag in ((np.inf, posinf, "posinf"), (-np.inf, neginf, "neginf")):
        hit = node.call("equal", x, scalar(value, x), suffix=f"/is{tag}")
        out = node.call("where", hit, scalar(fill, x), out, suffix=f"/{tag}")
    return out
