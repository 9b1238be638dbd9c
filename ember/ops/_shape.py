"""Shared helpers of op definitions: attr normalization, broadcasting, axes, window sizes.

Attr helpers raise :class:`AttrError` naming the attribute and what is allowed;
shape helpers raise :class:`ShapeError` (the registry adds op, node and input types)::

    >>> int_tuple("strides", 2, 2)
    (2, 2)
    >>> broadcast_shapes((3, 1), (4,))
    (3, 4)
    >>> conv_output_size(224, 7, stride=2, pad_before=3, pad_after=3)
    112
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import DTYPES, TensorType

FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")
SIGNED_INT_DTYPES = ("int8", "int16", "int32", "int64")
UNSIGNED_INT_DTYPES = ("uint8", "uint16", "uint32", "uint64")
INT_DTYPES = SIGNED_INT_DTYPES + UNSIGNED_INT_DTYPES
NUMBER_DTYPES = FLOAT_DTYPES + INT_DTYPES
INDEX_DTYPES = ("int32", "int64")


# ----------------------------------------------------------------------------- attr helpers


def set_attr(obj: Any, name: str, value: Any) -> None:
    """Assign a normalized value inside a frozen dataclass's ``__post_init__``."""
    object.__setattr__(obj, name, value)


def bool_attr(obj: Any, name: str) -> None:
    """Check that attribute ``name`` of ``obj`` is a bool (numpy bools normalized)."""
    value = getattr(obj, name)
    if not isinstance(value, bool | np.bool_):
        raise AttrError(f"attribute {name} must be a bool, got {value!r}")
    set_attr(obj, name, bool(value))


def int_tuple(
    name: str,
    value: Any,
    length: int | None = None,
    *,
    min_value: int | None = None,
) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ints) as a tuple; an int repeats ``length`` times."""
    if isinstance(value, bool):
        raise AttrError(f"attribute {name} must be an int or a tuple of ints, got {value!r}")
    if isinstance(value, int | np.integer):
        if length is None:
            raise AttrError(f"attribute {name} must be a tuple of ints, got the int {value}")
        value = (int(value),) * length
    try:
        items = tuple(value)
    except TypeError:
        raise AttrError(
            f"attribute {name} must be an int or a tuple of ints, got {value!r}"
        ) from None
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        raise AttrError(f"attribute {name} must hold only ints, got {value!r}")
    items = tuple(int(v) for v in items)
    if length is not None and len(items) != length:
        raise AttrError(f"attribute {name} must have {length} values, got {len(items)}: {items}")
    if min_value is not None and any(v < min_value for v in items):
        raise AttrError(f"attribute {name} values must be >= {min_value}, got {items}")
    return items


def padding4(name: str, value: Any) -> tuple[int, int, int, int]:
    """2-D padding as ``(top, left, bottom, right)``; accepts p, (ph, pw) or 4 values."""
    items = int_tuple(name, value, 4 if isinstance(value, int | np.integer) else None, min_value=0)
    if len(items) == 2:
        items = (items[0], items[1], items[0], items[1])
    if len(items) != 4:
        raise AttrError(
            f"attribute {name} must be p, (pad_h, pad_w) or (top, left, bottom, right), got {items}"
        )
    return items  # type: ignore[return-value]


def optional_axes(name: str, value: Any) -> tuple[int, ...] | None:
    """``None`` or a tuple of ints (an int becomes a 1-tuple); duplicates are an error."""
    if value is None:
        return None
    axes = int_tuple(name, value, 1 if isinstance(value, int | np.integer) else None)
    if len(set(axes)) != len(axes):
        raise AttrError(f"attribute {name} has repeated axes: {axes}")
    return axes


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise AttrError(
            f"attribute {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )
    return str(value)


def number(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    """``value`` as a float; NaN is refused, infinities are allowed (e.g. a clip bound)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise AttrError(f"attribute {name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise AttrError(f"attribute {name} must not be NaN")
    if positive and not value > 0:
        raise AttrError(f"attribute {name} must be > 0, got {value}")
    if nonneg and not value >= 0:
        raise AttrError(f"attribute {name} must be >= 0, got {value}")
    return value


def dtype_name(name: str, value: Any) -> str:
    """A dtype attr as the canonical name (accepts numpy dtypes)."""
    try:
        text = str(np.dtype(value))
    except TypeError:
        text = str(value)
    if text not in DTYPES:
        raise AttrError(f"attribute {name} must be one of {', '.join(DTYPES)}, got {value!r}")
    return text


# ----------------------------------------------------------------------------- type helpers


def tensor(types: Sequence[Any], index: int, what: str) -> TensorType:
    """``types[index]`` if it is a tensor type, else a ShapeError naming input ``what``."""
    t = types[index]
    if not isinstance(t, TensorType):
        raise ShapeError(f"input {what} must be a tensor, got the tuple {t}")
    return t


def check_dtype(t: TensorType, what: str, allowed: Sequence[str]) -> None:
    """ShapeError unless ``t.dtype`` is allowed."""
    if t.dtype not in allowed:
        raise ShapeError(f"input {what} has dtype {t.dtype}, expected one of {', '.join(allowed)}")


def same_dtype(types: Sequence[TensorType], names: Sequence[str]) -> str:
    """The common dtype of ``types``; a ShapeError naming the first mismatch."""
    first = types[0].dtype
    for t, n in zip(types[1:], names[1:]):
        if t.dtype != first:
            raise ShapeError(
                f"input {n} has dtype {t.dtype} but {names[0]} has {first}",
                hint="insert a cast so both inputs have one dtype",
            )
    return first


def check_rank(t: TensorType, what: str, rank: int) -> None:
    if t.ndim != rank:
        raise ShapeError(f"input {what} must have rank {rank}, got shape {t.shape}")


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy broadcasting of ``shapes``; ShapeError when two dims differ and neither is 1."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = " and ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(
                f"shapes {shown} do not broadcast: axis {i - rank} has sizes {sorted(dims)}",
                hint="sizes along an axis must match or be 1",
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in ``[-rank, rank)`` as a non-negative index."""
    if not -rank <= axis < rank:
        raise ShapeError(
            f"{what} {axis} is out of range for rank {rank} (allowed {-rank}..{rank - 1})"
        )
    return axis % rank if rank else 0


def normalize_axes(axes: Sequence[int] | None, rank: int, what: str = "axes") -> tuple[int, ...]:
    """Axes as sorted non-negative indices; ``None`` means all axes."""
    if axes is None:
        return tuple(range(rank))
    out = tuple(normalize_axis(a, rank, what) for a in axes)
    if len(set(out)) != len(out):
        raise ShapeError(f"{what} {tuple(axes)} name the same axis twice for rank {rank}")
    return tuple(sorted(out))


def conv_output_size(
    size: int,
    kernel: int,
    *,
    stride: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a conv/pool window along one axis (ONNX / onnxruntime rule).

    With ``ceil_mode`` the last window may run past the padded input but must
    start inside the input or its leading padding (PyTorch and onnxruntime >= 1.16).
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1 if span >= 0 else 0
    # A ceil-mode window may also be wider than the whole padded input (torch, onnxruntime).
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return max(out, 0)


def accumulate_dtype(dtype: np.dtype) -> np.dtype:
    """Dtype to accumulate sums of ``dtype`` in (so references do not overflow or lose bits)."""
    if dtype in (np.float16, np.dtype("bfloat16")):
        return np.dtype(np.float32)
    if dtype == np.uint64:
        return np.dtype(np.uint64)  # int64 would wrap the upper half of the range
    if np.issubdtype(dtype, np.integer):
        return np.dtype(np.int64)
    return dtype
