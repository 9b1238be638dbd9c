"""PyTorch converters: arithmetic, reductions and shape ops.

Binary ops take tensors or Python numbers on either side (``x + 1``); a number
becomes a scalar constant of the tensor's dtype. Shape ops resolve every size
at import time (shapes are static), so ``view(x.size(0), -1)`` becomes a
``reshape`` with a fixed ``newshape``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember.frontend.common import scalar, shape_of
from ember.frontend.pytorch.context import (
    AtenNode,
    ConverterFn,
    converter,
    import_torch,
    promoted_dtype,
    torch_dtype_name,
)
from ember.frontend.pytorch.ops_math import floor_divide, operands
from ember.graph.ir import Expr, const


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | bool)


def _binary(op: str, reverse: bool = False) -> ConverterFn:
    def convert(node: AtenNode) -> Expr:
        lhs, rhs = node.args[0], node.args[1]
        if reverse:
            lhs, rhs = rhs, lhs
        alpha = node.arg(2, 1) if node.op in ("add", "sub", "rsub") else 1
        if _is_number(lhs) and not _is_number(rhs):
            right = node.to_expr(rhs, node.name + "/rhs")
            left = scalar(lhs, right)
        else:
            left = node.to_expr(lhs, node.name + "/lhs")
            right = scalar(rhs, left) if _is_number(rhs) else node.to_expr(rhs, node.name)
        if alpha != 1:
            right = node.call("multiply", right, scalar(alpha, right), suffix="/alpha")
        if left.type.dtype != right.type.dtype:  # PyTorch promotes; ember wants one dtype
            target = promoted_dtype(left.type.dtype, right.type.dtype)
            left, right = (
                e if e.type.dtype == target else node.call("cast", e, suffix="/cast", dtype=target)
                for e in (left, right)
            )
        return node.call(op, left, right)

    return convert


for _name, _op in {
    "add": "add",
    "sub": "subtract",
    "subtract": "subtract",
    "mul": "multiply",
    "multiply": "multiply",
    "true_divide": "divide",
    "maximum": "maximum",
    "minimum": "minimum",
    "pow": "power",
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
    "logical_and": "logical_and",
    "logical_or": "logical_or",
}.items():
    converter(_name)(_binary(_op))
converter("rsub")(_binary("subtract", reverse=True))


@converter("div")
def _div(node: AtenNode) -> Expr:
    mode = node.arg(2)
    out = _binary("divide")(node.with_args(node.args[:2]))
    if mode is None or mode == "true":
        return out
    if mode == "floor" and not out.type.dtype.startswith("float"):  # divide truncates ints
        return floor_divide(node, *operands(node.with_args(node.args[:2])))
    if mode == "floor":
        return node.call("floor", out, suffix="/floor")
    if mode == "trunc":
        sign = node.call("sign", out, suffix="/sign")
        magnitude = node.call("floor", node.call("abs", out, suffix="/abs"), suffix="/floor")
        return node.call("multiply", sign, magnitude, suffix="/trunc")
    raise node.error(f"rounding_mode {mode!r} is not supported")


@converter("where")
def _where(node: AtenNode) -> Expr:
    cond = node.tensor(0)
    x, y = node.args[1], node.args[2]
    like = next((node.to_expr(v, node.name) for v in (x, y) if not _is_number(v)), None)
    if like is None:  # two Python numbers: torch's default dtypes
        kind = "float32" if any(isinstance(v, float) for v in (x, y)) else "int64"
        like = const(np.zeros((), dtype=kind))
    left = scalar(x, like) if _is_number(x) else node.to_expr(x, node.name + "/x")
    right = scalar(y, like) if _is_number(y) else node.to_expr(y, node.name + "/y")
    return node.call("where", cond, left, right)


# ----------------------------------------------------------------------------- shapes


def _resolve_shape(node: AtenNode, shape: tuple[int, ...], sizes: Any) -> tuple[int, ...]:
    sizes = [int(s) for s in sizes]
    if sizes.count(-1) > 1:
        raise node.error(f"shape {sizes} has more than one -1")
    total = math.prod(shape)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if known == 0 or total % known:
            raise node.error(f"cannot view {shape} as {sizes}")
        sizes[sizes.index(-1)] = total // known
    if math.prod(sizes) != total:
        raise node.error(f"cannot view {shape} ({total} elements) as {sizes}")
    return tuple(sizes)


@converter("view", "reshape", "_unsafe_view", "_reshape_alias")
def _reshape(node: AtenNode) -> Expr:
    x = node.tensor(0)
    newshape = _resolve_shape(node, shape_of(x), node.arg(1))
    if newshape == shape_of(x):
        return x
    return node.call("reshape", x, newshape=newshape)


@converter("flatten")
def _flatten(node: AtenNode) -> Expr:
    x = node.tensor(0)
    shape = shape_of(x)
    if not shape:
        return node.call("reshape", x, newshape=(1,))
    start = node.axis(node.arg(1, 0), len(shape))
    end = node.axis(node.arg(2, -1), len(shape))
    newshape = shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
    if newshape == shape:
        return x
    return node.call("reshape", x, newshape=newshape)


@converter("permute")
def _permute(node: AtenNode) -> Expr:
    x = node.tensor(0)
    rank = len(shape_of(x))
    return node.call("transpose", x, axes=tuple(node.axis(a, rank) for a in node.arg(1)))


@converter("transpose", "swapaxes")
def _transpose(node: AtenNode) -> Expr:
    x = node.tensor(0)
    rank = len(shape_of(x))
    axes = list(range(rank))
    first, second = node.axis(node.arg(1), rank), node.axis(node.arg(2), rank)
    axes[first], axes[second] = axes[second], axes[first]
    return node.call("transpose", x, axes=tuple(axes))


@converter("t", "numpy_T")
def _t(node: AtenNode) -> Expr:
    x = node.tensor(0)
    if len(shape_of(x)) < 2:
        return x
    return node.call("transpose", x)


@converter("cat", "concat", "concatenate")
def _cat(node: AtenNode) -> Expr:
    tensors = [node.to_expr(t, f"{node.name}/input{i}") for i, t in enumerate(node.arg(0))]
    tensors = [t for t in tensors if shape_of(t) != (0,)]  # torch.cat skips empty 1-D tensors
    if len(tensors) == 1:
        return tensors[0]
    axis = node.axis(node.arg(1, 0), len(shape_of(tensors[0])))
    return node.call("concatenate", *tensors, axis=axis)


@converter("stack")
def _stack(node: AtenNode) -> Expr:
    tensors = [node.to_expr(t, f"{node.name}/input{i}") for i, t in enumerate(node.arg(0))]
    axis = node.axis(node.arg(1, 0), len(shape_of(tensors[0])) + 1)
    expanded = [
        node.call("expand_dims", t, suffix=f"/expand{i}", axes=(axis,))
        for i, t in enumerate(tensors)
    ]
    return node.call("concatenate", *expanded, axis=axis)


@converter("unsqueeze")
def _unsqueeze(node: AtenNode) -> Expr:
    x = node.tensor(0)
    return node.call("expand_dims", x, axes=(node.axis(node.arg(1), len(shape_of(x)) + 1),))


@converter("squeeze")
def _squeeze(node: AtenNode) -> Expr:
    x = node.tensor(0)
    shape = shape_of(x)
    dims = node.args[1] if len(node.args) > 1 else None
    if dims is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        dims = [dims] if isinstance(dims, int) else list(dims)
        # PyTorch leaves a named axis alone when its size is not 1
        axes = tuple(a for a in (node.axis(d, len(shape)) for d in dims) if shape[a] == 1)
    if not axes:
        return x
    return node.call("squeeze", x, axes=axes)


def _slice(node: AtenNode, x: Expr, axis: int, start: int, end: int, step: int = 1) -> Expr:
    size = shape_of(x)[axis]
    start = max(min(start + size if start < 0 else start, size), 0)
    end = max(min(end + size if end < 0 else end, size), 0)
    if start == 0 and end == size and step == 1:
        return x
    return node.call(
        "strided_slice", x, begin=(start,), end=(max(end, start),), strides=(step,), axes=(axis,)
    )


@converter("slice")
def _slice_op(node: AtenNode) -> Expr:
    x = node.tensor(0)
    axis = node.axis(node.arg(1, 0), len(shape_of(x)))
    size = shape_of(x)[axis]
    start, end = node.arg(2, 0), node.arg(3, size)
    return _slice(node, x, axis, int(start), int(min(end, size)), int(node.arg(4, 1)))


@converter("select")
def _select(node: AtenNode) -> Expr:
    x = node.tensor(0)
    axis = node.axis(node.arg(1), len(shape_of(x)))
    size = shape_of(x)[axis]
    index = int(node.arg(2))
    if not -size <= index < size:
        raise node.error(f"index {index} is out of range for axis {axis} of size {size}")
    index %= size
    piece = _slice(node, x, axis, index, index + 1)
    return node.call("squeeze", piece, suffix="/squeeze", axes=(axis,))


def _split_sizes(node: AtenNode, x: Expr, axis: int, sizes: list[int]) -> list[Expr]:
    pieces, start = [], 0
    for i, size in enumerate(sizes):
        pieces.append(
            node.call(
                "strided_slice",
                x,
                suffix=f"/{i}",
                begin=(start,),
                end=(start + size,),
                axes=(axis,),
            )
        )
        start += size
    return pieces


@converter("split", "split_with_sizes", "split_copy", "split_with_sizes_copy")
def _split(node: AtenNode) -> list[Expr]:
    x = node.tensor(0)
    axis = node.axis(node.arg(2, 0), len(shape_of(x)))
    total = shape_of(x)[axis]
    size = node.arg(1)
    if isinstance(size, int):
        sizes = [size] * (total // size) + ([total % size] if total % size else [])
    else:
        sizes = [int(s) for s in size]
    if sum(sizes) != total:
        raise node.error(f"split sizes {sizes} do not add up to the axis size {total}")
    return _split_sizes(node, x, axis, sizes)


@converter("chunk")
def _chunk(node: AtenNode) -> list[Expr]:
    x = node.tensor(0)
    axis = node.axis(node.arg(2, 0), len(shape_of(x)))
    total, chunks = shape_of(x)[axis], int(node.arg(1))
    size = -(-total // chunks)
    sizes = [min(size, total - i) for i in range(0, total, size)]
    return _split_sizes(node, x, axis, sizes)


@converter("unbind")
def _unbind(node: AtenNode) -> list[Expr]:
    x = node.tensor(0)
    axis = node.axis(node.arg(1, 0), len(shape_of(x)))
    pieces = _split_sizes(node, x, axis, [1] * shape_of(x)[axis])
    return [
        node.call("squeeze", p, suffix=f"/{i}/squeeze", axes=(axis,)) for i, p in enumerate(pieces)
    ]


@converter("expand")
def _expand(node: AtenNode) -> Expr:
    x = node.tensor(0)
    shape = shape_of(x)
    sizes = [int(s) for s in node.arg(1)]
    offset = len(sizes) - len(shape)
    target = tuple(shape[i - offset] if s == -1 else s for i, s in enumerate(sizes))
    if target == shape:
        return x
    return node.call("broadcast_to", x, shape=target)


@converter("expand_as")
def _expand_as(node: AtenNode) -> Expr:
    x, other = node.tensor(0), node.tensor(1)
    if shape_of(x) == shape_of(other):
        return x
    return node.call("broadcast_to", x, shape=shape_of(other))


@converter("repeat")
def _repeat(node: AtenNode) -> Expr:
    x = node.tensor(0)
    reps = tuple(int(r) for r in node.arg(1))
    if len(reps) > len(shape_of(x)):
        newshape = (1,) * (len(reps) - len(shape_of(x))) + shape_of(x)
        x = node.call("reshape", x, suffix="/rank", newshape=newshape)
    return node.call("tile", x, reps=reps)


def _cast(node: AtenNode, dtype: Any) -> Expr:
    x = node.tensor(0)
    if dtype is None:
        return x
    name = torch_dtype_name(dtype)
    if name is None:
        raise node.error(f"dtype {dtype} has no ember equivalent")
    if name == x.type.dtype:
        return x
    return node.call("cast", x, dtype=name)


@converter("_to_copy")
def _to_copy(node: AtenNode) -> Expr:
    return _cast(node, node.kwargs.get("dtype"))


@converter("to", "type")
def _to(node: AtenNode) -> Expr:
    # to.dtype(self, dtype, ...), to.device(self, device, dtype, ...), to.other(self, other, ...)
    if node.overload == "device":
        return _cast(node, node.arg(2))
    if node.overload == "other":
        return _cast(node, node.tensor(1).type.dtype)
    dtype = node.arg(1)
    if dtype is not None and torch_dtype_name(dtype) is None:
        return node.tensor(0)  # a device or memory format: no-op on the host
    return _cast(node, dtype)


@converter("type_as")
def _type_as(node: AtenNode) -> Expr:
    return _cast(node, node.tensor(1).type.dtype)


# ----------------------------------------------------------------------------- reductions


def _reduce(op: str, dims_at: int | None = 1, keep_at: int = 2) -> ConverterFn:
    def convert(node: AtenNode) -> Expr:
        x = node.tensor(0)
        rank = len(shape_of(x))
        dims = node.args[dims_at] if dims_at is not None and len(node.args) > dims_at else None
        if isinstance(dims, int):
            dims = [dims]
        axes = tuple(range(rank)) if not dims else tuple(node.axis(d, rank) for d in dims)
        keepdims = bool(node.arg(keep_at, False)) if dims_at is not None else False
        return node.call(op, x, axes=axes, keepdims=keepdims)

    return convert


@converter("mean")
def _mean(node: AtenNode) -> Expr:
    return _reduce("reduce_mean", None if node.overload in ("default", "") else 1)(node)


@converter("sum")
def _sum(node: AtenNode) -> Expr:
    return _reduce("reduce_sum", None if node.overload in ("default", "") else 1)(node)


converter("amax")(_reduce("reduce_max"))
converter("amin")(_reduce("reduce_min"))


@converter("prod")
def _prod(node: AtenNode) -> Expr:
    return _reduce("reduce_prod", None if node.overload in ("default", "") else 1)(node)


@converter("argmax", "argmin")
def _argmax(node: AtenNode) -> Expr:
    x = node.tensor(0)
    dim = node.arg(1)
    if dim is None:
        x = node.call("reshape", x, suffix="/flatten", newshape=(-1,))
        dim = 0
    axis = node.axis(dim, len(shape_of(x)))
    return node.call(node.op, x, axis=axis, keepdims=bool(node.arg(2, False)))


@converter("zeros_like", "ones_like", "full_like")
def _like(node: AtenNode) -> Expr:
    x = node.tensor(0)
    value = {"zeros_like": 0, "ones_like": 1}.get(node.op, node.arg(1, 0))
    dtype = torch_dtype_name(node.kwargs.get("dtype")) or x.type.dtype
    return const(np.full(shape_of(x), value, dtype=dtype), name=node.name)


@converter("new_zeros", "new_ones", "new_full", "new_empty")
def _new_tensor(node: AtenNode) -> Any:
    """A fresh tensor shaped by arguments (its dtype from ``self``), built with torch.

    It stays a torch tensor, not a graph value, so what is computed from it at
    import time (Swin's shifted-window attention mask: slices filled in place)
    is folded by torch too.
    """
    torch = import_torch()
    like = node.tensor(0)
    size = [int(s) for s in node.arg(1)]
    fill = {"new_zeros": 0, "new_ones": 1, "new_empty": 0}.get(node.op, node.arg(2, 0))
    positional_dtype = 3 if node.op == "new_full" else 2  # TorchScript passes kwargs in order
    dtype = node.kwargs.get("dtype", node.arg(positional_dtype))
    name = torch_dtype_name(dtype) if dtype is not None else like.type.dtype
    if name is None:
        raise node.error(f"dtype {dtype} has no ember equivalent")
    return torch.full(size, fill, dtype=getattr(torch, name))


@converter("size", "sym_size")
def _size(node: AtenNode) -> Any:
    shape = shape_of(node.tensor(0))
    dim = node.arg(1)
    return list(shape) if dim is None else shape[node.axis(dim, len(shape))]


@converter("numel", "sym_numel")
def _numel(node: AtenNode) -> int:
    return math.prod(shape_of(node.tensor(0)))


@converter("dim")
def _dim(node: AtenNode) -> int:
    return len(shape_of(node.tensor(0)))


@converter("log1p")
def _log1p(node: AtenNode) -> Expr:
    x = node.tensor(0)
    return node.call("log", node.call("add", x, scalar(1, x), suffix="/plus_one"))


@converter("index")
def _index(node: AtenNode) -> Expr:
    """``x[..., idx_h, idx_w]`` with constant indices: one ``take`` per indexed axis.

    Several index tensors must be in "outer product" form (the k-th varies only
    along its own axis), as in decomposed upsampling; general advanced indexing
    is not supported.
    """
    torch = import_torch()
    x = node.tensor(0)
    indices = list(node.arg(1, []))
    used = [(axis, i) for axis, i in enumerate(indices) if i is not None]
    if not used or not all(isinstance(i, torch.Tensor | int) for _, i in used):
        raise node.error("indexing with graph-computed indices is not supported")
    arrays = [
        (axis, np.asarray(i.numpy() if isinstance(i, torch.Tensor) else i)) for axis, i in used
    ]
    if len(arrays) == 1:
        axis, array = arrays[0]
        if array.dtype == bool:
            raise node.error("boolean mask indexing is not supported")
        return node.call("take", x, const(array.astype("int64")), axis=axis)
    rank = max(a.ndim for _, a in arrays)
    axes = [axis for axis, _ in arrays]
    if axes != list(range(axes[0], axes[0] + len(axes))) or rank != len(arrays):
        raise node.error("advanced indexing other than an outer product is not supported")
    out = x
    for k, (axis, array) in enumerate(arrays):
        shape = (1,) * (rank - array.ndim) + array.shape
        if any(d != 1 for j, d in enumerate(shape) if j != rank - len(arrays) + k):
            raise node.error("advanced indexing other than an outer product is not supported")
        flat = const(array.reshape(-1).astype("int64"))
        out = node.call("take", out, flat, suffix=f"/take{k}", axis=axis)
    return out


@converter("square")
def _square(node: AtenNode) -> Expr:
    x = node.tensor(0)
    return node.call("multiply", x, x)


@converter("embedding")
def _embedding(node: AtenNode) -> Expr:
    weight, indices = node.tensor(0), node.tensor(1)
    if indices.type.dtype not in ("int32", "int64"):
        raise node.error(
            f"indices have dtype {indices.type.dtype}, expected int32 or int64",
            hint="if the indices are a model input, give its dtype: dtype={'ids': 'int64'} "
            "(a TorchScript module loaded with torch.jit.load forgets the traced input dtypes; "
            "pass the file path to from_pytorch, which restores them)",
        )
    return node.call("take", weight, indices, axis=0)


@converter("masked_fill")
def _masked_fill(node: AtenNode) -> Expr:
    x, mask = node.tensor(0), node.tensor(1)
    value = node.args[2]
    fill = scalar(value, x) if _is_number(value) else node.to_expr(value, node.name + "/value")
    if fill.type.dtype != x.type.dtype:
        fill = node.call("cast", fill, suffix="/cast", dtype=x.type.dtype)
    return node.call("where", mask, fill, x)


@converter("max", "min")
def _max(node: AtenNode) -> Any:
    if len(node.args) > 1 and not _is_number(node.args[1]) and node.args[1] is not None:
        return _binary("maximum" if node.op == "max" else "minimum")(node)  # max.other
    x = node.tensor(0)
    reduce_op = "reduce_max" if node.op == "max" else "reduce_min"
    if len(node.args) < 2 or node.args[1] is None:  # max(x): every element
        return node.call(reduce_op, x, axes=None, keepdims=False)
    axis = node.axis(node.args[1], len(shape_of(x)))
    keep = bool(node.arg(2, False))
    values = node.call(reduce_op, x, suffix="/values", axes=(axis,), keepdims=keep)
    indices = node.call(
        "argmax" if node.op == "max" else "argmin", x, suffix="/indices", axis=axis, keepdims=keep
    )
    return (values, indices)


@converter("group_norm")
def _group_norm(node: AtenNode) -> Expr:
    """Normalize each group of C/G channels over (channels, H, W), then scale per channel."""
    x = node.tensor(0)
    shape = shape_of(x)
    groups = int(node.arg(1))
    if len(shape) < 3 or shape[1] % groups:
        raise node.error(f"cannot split {shape[1]} channels of {shape} into {groups} groups")
    grouped = node.call("reshape", x, suffix="/group", newshape=(shape[0], groups, -1))
    mean = node.call("reduce_mean", grouped, suffix="/mean", axes=(2,), keepdims=True)
    centered = node.call("subtract", grouped, mean, suffix="/centered")
    square = node.call("multiply", centered, centered, suffix="/square")
    var = node.call("reduce_mean", square, suffix="/var", axes=(2,), keepdims=True)
    eps = scalar(float(node.arg(4, 1e-5)), x)
    rstd = node.call("rsqrt", node.call("add", var, eps, suffix="/var_eps"), suffix="/rstd")
    out = node.call(
        "reshape", node.call("multiply", centered, rstd, suffix="/norm"), newshape=shape
    )
    return channel_affine(node, out, 2)


def channel_affine(node: AtenNode, out: Expr, weight_arg: int) -> Expr:
    """``out * weight + bias`` per channel (axis 1) of a normalization, with the optional
    weight and bias at arguments ``weight_arg`` and ``weight_arg + 1``."""
    shape = shape_of(out)
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)
    weight, bias = node.optional_tensor(weight_arg), node.optional_tensor(weight_arg + 1)
    if weight is not None:
        weight = node.call("reshape", weight, suffix="/weight", newshape=per_channel)
        out = node.call("multiply", out, weight, suffix="/scale")
    if bias is not None:
        bias = node.call("reshape", bias, suffix="/bias", newshape=per_channel)
        out = node.call("add", out, bias, suffix="/shift")
    return out


@converter("any", "all")
def _any(node: AtenNode) -> Expr:
    """any/all as max/min over the values cast to int32 (reductions take no bool)."""
    x = node.tensor(0)
    rank = len(shape_of(x))
    dims = node.args[1] if len(node.args) > 1 and node.overload not in ("default", "") else None
    if isinstance(dims, int):
        dims = [dims]
    axes = tuple(range(rank)) if not dims else tuple(node.axis(d, rank) for d in dims)
    keep = bool(node.arg(2, False)) if dims else False
    as_int = x if x.type.dtype == "int32" else node.call("cast", x, suffix="/int", dtype="int32")
    op = "reduce_max" if node.op == "any" else "reduce_min"
    reduced = node.call(op, as_int, suffix="/reduce", axes=axes, keepdims=keep)
    return node.call("cast", reduced, dtype="bool")
