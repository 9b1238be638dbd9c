"""PyTorch converters for statistics models compute by hand: norms, variance, instance norm.

    F.normalize(x, dim=-1)        -> x / max(sqrt(sum(x * x, -1)), eps)     (SwinV2, CLIP heads)
    torch.norm(x, 2, (1, 2))      -> sqrt(sum(x * x, (1, 2)))                (ConvNeXtV2's GRN)
    x.var(-1, unbiased=False)     -> mean((x - mean(x)) ** 2)
    nn.InstanceNorm2d(C)          -> per (sample, channel) normalization over H, W
    mask.cumsum(1)                -> matmul(mask (.., n), upper-triangular ones (n, n))

Each is a composition of reductions and elementwise ops (as group_norm is): no
op of its own, so the compiler fuses it like any other reduction chain.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember.frontend.common import matmul_along, scalar, shape_of
from ember.frontend.pytorch.context import AtenNode, converter, torch_dtype_name
from ember.frontend.pytorch.ops_tensor import channel_affine
from ember.graph.ir import Expr


def _axes(node: AtenNode, dims: Any, rank: int) -> tuple[int, ...]:
    """Reduction axes from a dim argument (None or [] means every axis)."""
    if dims is None:
        return tuple(range(rank))
    dims = [dims] if isinstance(dims, int) else list(dims)
    return tuple(range(rank)) if not dims else tuple(node.axis(d, rank, "dim") for d in dims)


def _float_input(node: AtenNode, what: str) -> Expr:
    x = node.tensor(0)
    if not x.type.dtype.startswith("float"):
        raise node.error(
            f"{what} of a {x.type.dtype} tensor is not supported",
            hint="cast the input to a floating-point dtype first (x.float())",
        )
    return x


# ----------------------------------------------------------------------------- norms


def _vector_norm(node: AtenNode, x: Expr, order: float, axes: tuple[int, ...], keep: bool) -> Expr:
    """The ``order``-norm of ``x`` over ``axes``, as torch.linalg.vector_norm defines it."""
    if order == 2:
        square = node.call("multiply", x, x, suffix="/square")
        total = node.call("reduce_sum", square, suffix="/sum", axes=axes, keepdims=keep)
        return node.call("sqrt", total)
    magnitude = node.call("abs", x, suffix="/abs")
    if order == 1:
        return node.call("reduce_sum", magnitude, axes=axes, keepdims=keep)
    if math.isinf(order):
        op = "reduce_max" if order > 0 else "reduce_min"
        return node.call(op, magnitude, axes=axes, keepdims=keep)
    if order == 0:  # the number of nonzero entries
        nonzero = node.call("not_equal", x, scalar(0, x), suffix="/nonzero")
        count = node.call("cast", nonzero, suffix="/count", dtype=x.type.dtype)
        return node.call("reduce_sum", count, axes=axes, keepdims=keep)
    powered = node.call("power", magnitude, scalar(order, x), suffix="/pow")
    total = node.call("reduce_sum", powered, suffix="/sum", axes=axes, keepdims=keep)
    return node.call("power", total, scalar(1.0 / order, x))


@converter("linalg_vector_norm")
def _linalg_vector_norm(node: AtenNode) -> Expr:
    """linalg_vector_norm(self, ord=2, dim=None, keepdim=False, *, dtype=None)."""
    x = _float_input(node, "linalg_vector_norm")
    if node.arg(4) is not None:
        raise node.error("linalg_vector_norm with dtype= is not supported", hint="cast x first")
    axes = _axes(node, node.arg(2), len(shape_of(x)))
    return _vector_norm(node, x, float(node.arg(1, 2)), axes, bool(node.arg(3, False)))


@converter("norm")
def _norm(node: AtenNode) -> Expr:
    """torch.norm: norm.Scalar(self, p=2) and norm.ScalarOpt_dim(self, p, dim, keepdim=False)."""
    x = _float_input(node, "norm")
    order = node.arg(1, 2)
    if isinstance(order, str):  # "fro" is the 2-norm of the flattened dims; "nuc" needs SVD
        if order != "fro":
            raise node.error(f"norm with p={order!r} is not supported (only numbers and 'fro')")
        order = 2
    dims = node.arg(2) if len(node.args) > 2 else None
    axes = _axes(node, dims, len(shape_of(x)))
    keep = bool(node.arg(3, False)) if len(node.args) > 3 else False
    return _vector_norm(node, x, float(order), axes, keep)


# ----------------------------------------------------------------------------- variance


def _correction(node: AtenNode) -> tuple[Any, float, bool]:
    """(dims, correction, keepdim) of var/std in any of their overloads.

    ``var.default(self, unbiased=True)``, ``var.dim(self, dim, unbiased=True,
    keepdim=False)`` and ``var.correction(self, dim=None, *, correction=None,
    keepdim=False)``; the overload name tells the third argument's meaning.
    """
    args = node.args
    if len(args) <= 2 and (len(args) < 2 or isinstance(args[1], bool)):  # var.default
        return None, 1.0 if node.arg(1, True) else 0.0, False
    dims, third = args[1], node.arg(2)
    if "correction" in node.overload or (third is not None and not isinstance(third, bool)):
        correction = 1.0 if third is None else float(third)
    else:
        correction = 1.0 if node.arg(2, True) else 0.0
    return dims, correction, bool(node.arg(3, False))


def _variance(node: AtenNode, what: str) -> tuple[Expr, Expr, Expr]:
    """(x, variance, mean), both reduced as the node's keepdim says."""
    x = _float_input(node, what)
    shape = shape_of(x)
    dims, correction, keep = _correction(node)
    axes = _axes(node, dims, len(shape))
    count = math.prod(shape[a] for a in axes)
    mean = node.call("reduce_mean", x, suffix="/mean", axes=axes, keepdims=True)
    centered = node.call("subtract", x, mean, suffix="/centered")
    square = node.call("multiply", centered, centered, suffix="/square")
    total = node.call("reduce_sum", square, suffix="/sum", axes=axes, keepdims=keep)
    # torch divides by max(0, N - correction): 0 gives inf/nan, as it does in torch
    denominator = max(count - correction, 0.0)
    var = node.call("divide", total, scalar(denominator, x), suffix="/var")
    if not keep:
        mean = node.call("squeeze", mean, suffix="/mean_squeezed", axes=axes)
    return x, var, mean


@converter("var")
def _var(node: AtenNode) -> Expr:
    return _variance(node, "var")[1]


@converter("std")
def _std(node: AtenNode) -> Expr:
    return node.call("sqrt", _variance(node, "std")[1])


@converter("var_mean")
def _var_mean(node: AtenNode) -> tuple[Expr, Expr]:
    _, var, mean = _variance(node, "var_mean")
    return (var, mean)


@converter("std_mean")
def _std_mean(node: AtenNode) -> tuple[Expr, Expr]:
    _, var, mean = _variance(node, "std_mean")
    return (node.call("sqrt", var), mean)


# ----------------------------------------------------------------------------- instance norm


@converter("instance_norm")
def _instance_norm(node: AtenNode) -> Expr:
    """instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum,
    eps, cudnn_enabled): each (sample, channel) normalized over its spatial axes.

    With ``use_input_stats`` false (track_running_stats=True in eval) the running
    statistics are used instead, which is a batch norm.
    """
    x = _float_input(node, "instance_norm")
    shape = shape_of(x)
    if len(shape) < 3:
        raise node.error(f"instance_norm needs an (N, C, *) input, got shape {shape}")
    eps = scalar(float(node.arg(7, 1e-5)), x)
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)
    if node.arg(5, True):
        axes = tuple(range(2, len(shape)))
        mean = node.call("reduce_mean", x, suffix="/mean", axes=axes, keepdims=True)
        centered = node.call("subtract", x, mean, suffix="/centered")
        square = node.call("multiply", centered, centered, suffix="/square")
        var = node.call("reduce_mean", square, suffix="/var", axes=axes, keepdims=True)
    else:
        running_mean, running_var = node.optional_tensor(3), node.optional_tensor(4)
        if running_mean is None or running_var is None:
            raise node.error("instance_norm without input statistics needs running_mean/var")
        mean = node.call("reshape", running_mean, suffix="/mean", newshape=per_channel)
        var = node.call("reshape", running_var, suffix="/var", newshape=per_channel)
        centered = node.call("subtract", x, mean, suffix="/centered")
    rstd = node.call("rsqrt", node.call("add", var, eps, suffix="/var_eps"), suffix="/rstd")
    return channel_affine(node, node.call("multiply", centered, rstd, suffix="/norm"), 1)


# ----------------------------------------------------------------------------- cumsum


@converter("cumsum")
def _cumsum(node: AtenNode) -> Expr:
    """cumsum(self, dim, *, dtype=None) as a matmul with an upper-triangular matrix of ones.

    DETR-style sine position embeddings (``not_mask.cumsum(1)``) and position ids
    from an attention mask need it; the axis is static and short, so the n x n
    ones matrix costs little, and integer sums stay exact.
    """
    x = node.tensor(0)
    shape = shape_of(x)
    axis = node.axis(node.arg(1), len(shape), "dim")
    dtype = node.kwargs.get("dtype", node.arg(2))
    if dtype is not None:
        target = torch_dtype_name(dtype)
        if target is None:
            raise node.error(f"cumsum with dtype {dtype} has no ember equivalent")
    else:  # torch sums bools and integers in int64
        target = x.type.dtype if x.type.dtype.startswith("float") else "int64"
    if x.type.dtype != target:
        x = node.call("cast", x, suffix="/cast", dtype=target)
    return matmul_along(node, x, axis, np.triu(np.ones((shape[axis],) * 2, dtype=target)))
