"""NHWC models on NCHW ops: the builder TensorFlow and TFLite share (values, layouts, folding).

TensorFlow and TFLite models are NHWC; ember's conv and pool ops are NCHW. The
importers keep the model's *interface* in NHWC (inputs and outputs have the
shapes the framework gives them) and convert inside the graph: a 4-D value may
be held in NCHW form (``Value.nchw``), and a transpose is inserted only where a
value changes form. A CNN thus gets one transpose after each input and one
before each 4-D output; layout-neutral ops (elementwise, batch norm, concat,
pad, reductions) stay in NCHW with their axes remapped. A later layout pass may
remove the remaining transposes.

Values known at import time (weights, shape tensors, everything computed from
them only) are kept as numpy arrays and folded through the ops' numpy
references, so ``Shape -> StridedSlice -> Pack -> Reshape`` chains end as a
static ``newshape``. A folded float tensor that reaches the graph becomes a
weight: a :class:`Var` of ``main`` with its value in ``params``.
:class:`NHWCBuilder` is the shared :class:`~ember.frontend.common.GraphBuilder`
plus these values::

    builder = NHWCBuilder("TensorFlow")
    x = Value(expr=builder.add_input("x", (1, 8, 8, 3), "float32"))
    y = builder.unary("nn.relu", x, name="relu")
    mod, params = builder.finish_values([y], ["relu"])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, fold_call, normalize_axis
from ember.graph.ir import Constant, Expr, Module, Var, const

# Axis k of an NHWC tensor is axis NHWC_TO_NCHW_AXIS[k] of its NCHW form.
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)  # transpose axes NHWC -> NCHW
TO_NHWC = (0, 2, 3, 1)  # transpose axes NCHW -> NHWC

# A folded constant with at most this many elements stays a Constant in the graph
# (scalars and shape-like tensors); larger float tensors become weights in params.
MAX_INLINE_CONSTANT = 1


@dataclass(frozen=True, slots=True)
class Value:
    """A converted tensor: a graph expression, or a numpy array known at import time.

    ``nchw`` marks a 4-D expression held as NCHW whose framework layout is NHWC.
    """

    expr: Expr | None = None
    array: np.ndarray | None = None
    nchw: bool = False

    @property
    def is_const(self) -> bool:
        return self.array is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """The framework (NHWC) shape."""
        if self.array is not None:
            return tuple(self.array.shape)
        shape = self.expr.type.shape  # type: ignore[union-attr]
        return tuple(shape[axis] for axis in TO_NHWC) if self.nchw else tuple(shape)

    @property
    def dtype(self) -> str:
        if self.array is not None:
            return str(self.array.dtype)
        return self.expr.type.dtype  # type: ignore[union-attr]


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis: (before, after), the extra pixel after.

    >>> same_padding(32, 3, 2)
    (0, 1)
    """
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def tf_padding(
    mode: str,
    hw: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding for TF's 'SAME' or 'VALID'."""
    if mode == "VALID":
        return (0, 0, 0, 0)
    top, bottom = same_padding(hw[0], kernel[0], strides[0], dilation[0])
    left, right = same_padding(hw[1], kernel[1], strides[1], dilation[1])
    return (top, left, bottom, right)


class NHWCBuilder(GraphBuilder):
    """The shared graph builder plus :class:`Value` s: import-time folding and NHWC/NCHW forms."""

    def __init__(self, framework: str) -> None:
        super().__init__(framework)
        self._layout_cache: dict[tuple[int, bool], Expr] = {}

    # ------------------------------------------------------------------ values

    def expr(self, value: Value, name: str = "") -> Expr:
        """The value as a graph expression in its framework layout."""
        if value.array is not None:
            array = value.array
            if array.size > MAX_INLINE_CONSTANT and array.dtype.kind == "f":
                return self.add_weight(name, array)
            return const(array, name=name)
        assert value.expr is not None
        if not value.nchw:
            return value.expr
        return self._transpose(value.expr, TO_NHWC, name)

    def nchw(self, value: Value, name: str = "") -> Expr:
        """A 4-D value as an NCHW expression (transposing an NHWC one)."""
        if len(value.shape) != 4:
            raise FrontendError(
                f"{self.framework} node {name!r}: expected a 4-D NHWC tensor, "
                f"got shape {value.shape}"
            )
        if value.nchw:
            return value.expr  # type: ignore[return-value]
        if value.array is not None:
            return self.expr(Value(array=np.transpose(value.array, TO_NCHW)), name)
        return self._transpose(value.expr, TO_NCHW, name)  # type: ignore[arg-type]

    def _transpose(self, expr: Expr, axes: tuple[int, ...], name: str) -> Expr:
        key = (id(expr), axes == TO_NCHW)
        if key not in self._layout_cache:
            suffix = "to_nchw" if axes == TO_NCHW else "to_nhwc"
            self._layout_cache[key] = self.call(
                "transpose", expr, axes=axes, name=f"{name}/{suffix}"
            )
        return self._layout_cache[key]

    # ------------------------------------------------------------------ calls

    def apply(self, op: str, args: list[Expr], name: str, **attrs: Any) -> Value:
        """``op`` on ``args``; folded to a numpy value when every argument is a Constant."""
        node = self.call(op, *args, name=name, **attrs)
        if not all(isinstance(a, Constant) for a in args):
            return Value(expr=node)
        folded = fold_call(node)  # type: ignore[arg-type]
        if not isinstance(folded, Constant):
            raise FrontendError(f"{self.framework} node {name!r}: cannot fold {op}")
        return Value(array=folded.value)

    def fold_or_expr(self, value: Value, name: str) -> Expr:
        """Like :meth:`expr`, but small folded values become Constants (to fold further)."""
        if value.array is not None:
            return const(value.array, name=name)
        return self.expr(value, name)

    def unary(self, op: str, value: Value, name: str, **attrs: Any) -> Value:
        """An elementwise op: keeps the layout of its input."""
        if value.array is not None:
            return self.apply(op, [const(value.array)], name, **attrs)
        return replace(self.apply(op, [value.expr], name, **attrs), nchw=value.nchw)  # type: ignore[list-item]

    def binary(self, op: str, lhs: Value, rhs: Value, name: str, **attrs: Any) -> Value:
        """A broadcasting binary op. If either side is NCHW the result is too."""
        if lhs.array is not None and rhs.array is not None:
            return self.apply(op, [const(lhs.array), const(rhs.array)], name, **attrs)
        if lhs.nchw or rhs.nchw:
            out_rank = max(len(lhs.shape), len(rhs.shape))
            if out_rank == 4:
                args = [self.broadcast_nchw(v, name) for v in (lhs, rhs)]
                return replace(self.apply(op, args, name, **attrs), nchw=True)
        args = [self._operand(v, name) for v in (lhs, rhs)]
        return self.apply(op, args, name, **attrs)

    def _operand(self, value: Value, name: str) -> Expr:
        if value.array is not None and value.array.size <= MAX_INLINE_CONSTANT:
            return const(value.array)
        return self.expr(value, f"{name}/operand" if value.array is not None else name)

    def broadcast_nchw(self, value: Value, name: str) -> Expr:
        """An operand of a binary op whose result is NCHW (numpy broadcasting in NHWC)."""
        if value.nchw:
            return value.expr  # type: ignore[return-value]
        shape = value.shape
        if len(shape) == 0 or (value.array is not None and value.array.size == 1):
            return self._operand(value, name)
        padded = (1,) * (4 - len(shape)) + shape
        if value.array is not None:
            array = np.transpose(value.array.reshape(padded), TO_NCHW)
            return self.expr(Value(array=np.ascontiguousarray(array)), f"{name}/operand")
        expr = self.expr(value, name)
        if len(shape) < 4:
            expr = self.call("reshape", expr, newshape=padded, name=f"{name}/broadcast")
        return self._transpose(expr, TO_NCHW, name)

    def concat(self, values: list[Value], axis: int, name: str) -> Value:
        """Concatenate along an NHWC ``axis``; stays NCHW if any 4-D input is."""
        rank = len(values[0].shape)
        axis = normalize_axis(axis, rank, f"{self.framework} node {name!r}")
        if rank == 4 and any(v.nchw for v in values):
            args = [self.nchw(v, name) for v in values]
            return replace(
                self.apply("concatenate", args, name, axis=NHWC_TO_NCHW_AXIS[axis]), nchw=True
            )
        args = [self.fold_or_expr(v, name) for v in values]
        return self.apply("concatenate", args, name, axis=axis)

    def reduce(self, op: str, value: Value, axes: list[int], keepdims: bool, name: str) -> Value:
        """A reduction over NHWC ``axes``; done in NCHW when the input is NCHW."""
        rank = len(value.shape)
        where = f"{self.framework} node {name!r}"
        axes = sorted({normalize_axis(a, rank, where) for a in axes})
        if value.nchw:
            nchw_axes = tuple(sorted(NHWC_TO_NCHW_AXIS[a] for a in axes))
            kept = [a for a in range(4) if a not in axes]
            kept_nchw = [NHWC_TO_NCHW_AXIS[a] for a in kept]
            # Without keepdims the result is native when the kept axes keep their order.
            if keepdims or kept_nchw == sorted(kept_nchw):
                out = self.apply(op, [value.expr], name, axes=nchw_axes, keepdims=keepdims)  # type: ignore[list-item]
                return replace(out, nchw=keepdims)
        expr = self.fold_or_expr(value, name)
        return self.apply(op, [expr], name, axes=tuple(axes), keepdims=keepdims)

    def pad(self, value: Value, pad_width: list[tuple[int, int]], name: str, **attrs: Any) -> Value:
        """Pad with NHWC ``pad_width`` pairs; stays NCHW when the input is."""
        if value.nchw:
            nchw_width = tuple(tuple(pad_width[axis]) for axis in TO_NCHW)
            out = self.apply("nn.pad", [value.expr], name, pad_width=nchw_width, **attrs)  # type: ignore[list-item]
            return replace(out, nchw=True)
        width = tuple(tuple(p) for p in pad_width)
        return self.apply(
            "nn.pad", [self.fold_or_expr(value, name)], name, pad_width=width, **attrs
        )

    def nchw_call(self, op: str, value: Value, extra: list[Expr], name: str, **attrs: Any) -> Value:
        """An NCHW-only op (conv, pool, resize) on an NHWC value; the result stays NCHW."""
        out = self.apply(op, [self.nchw(value, name), *extra], name, **attrs)
        return replace(out, nchw=True)

    # ------------------------------------------------------------------ result

    def finish_values(
        self, outputs: list[Value], names: list[str]
    ) -> tuple[Module, dict[str, np.ndarray]]:
        """The module: ``main(inputs..., weights...)`` returning the outputs in NHWC."""
        exprs = []
        for value, name in zip(outputs, names):
            expr = self.expr(value, name)
            if isinstance(expr, Var | Constant):
                expr = self.call("identity", expr, name=name)  # an output needs a computing node
            exprs.append(expr)
        return self.finish(exprs)


def resolve_input_shape(
    framework: str, name: str, file_shape: list[int] | None, given: dict[str, Any] | None
) -> tuple[int, ...]:
    """The static shape of input ``name``: from ``shape=`` or the file.

    Rule: a user-given shape wins (it must have the file's rank and agree with
    the file's known dimensions); otherwise an unknown *leading* (batch) dimension
    becomes 1, and any other unknown dimension is an error asking for ``shape=``.
    """
    if given and name in given:
        shape = tuple(int(d) for d in given[name])
        if file_shape is not None:
            if len(shape) != len(file_shape) or any(
                f >= 0 and f != s for f, s in zip(file_shape, shape)
            ):
                raise FrontendError(
                    f"{framework} input {name!r}: shape={shape} does not fit the model's "
                    f"shape {tuple(file_shape)} (-1 = any)",
                    hint="give a shape of the model's rank that keeps its fixed dimensions",
                )
        return shape
    if file_shape is None:
        raise FrontendError(
            f"{framework} input {name!r} has an unknown rank",
            hint=f"pass shape={{{name!r}: (...)}}",
        )
    shape = list(file_shape)
    if shape and shape[0] < 0:
        shape[0] = 1  # documented rule: an unknown batch dimension defaults to 1
    if any(d < 0 for d in shape):
        raise FrontendError(
            f"{framework} input {name!r} has unknown dimensions: {tuple(file_shape)} "
            "(-1 = unknown)",
            hint=f"pass shape={{{name!r}: (...)}} with every dimension, e.g. "
            f"{tuple(d if d >= 0 else 1 for d in file_shape)}",
        )
    return tuple(shape)


def check_shape_names(framework: str, given: dict[str, Any] | None, known: list[str]) -> None:
    """``shape=`` must name only real inputs."""
    unknown = sorted(set(given or {}) - set(known))
    if unknown:
        raise FrontendError(
            f"shape= names {', '.join(map(repr, unknown))}, which the {framework} model has "
            f"no input called",
            hint=f"the model's inputs are: {', '.join(map(repr, known))}",
        )


def strided_slice(
    builder: NHWCBuilder,
    value: Value,
    begin: list[int],
    end: list[int],
    strides: list[int],
    masks: dict[str, int],
    name: str,
) -> Value:
    """TensorFlow StridedSlice (begin/end/shrink masks) as ember strided_slice + reshape.

    ``masks`` holds ``begin_mask``, ``end_mask``, ``shrink_axis_mask``,
    ``ellipsis_mask`` and ``new_axis_mask`` (bit i refers to slice entry i).
    """
    if masks.get("ellipsis_mask", 0) or masks.get("new_axis_mask", 0):
        raise FrontendError(
            f"{builder.framework} StridedSlice node {name!r} uses an ellipsis or new-axis mask, "
            "which ember does not support",
            hint="rewrite the slice with explicit axes (x[:, 1:3] instead of x[..., 1:3])",
        )
    shape = value.shape
    begins, ends, steps, axes, shrink = [], [], [], [], []
    for axis, (b, e, s) in enumerate(zip(begin, end, strides)):
        dim = shape[axis]
        if s == 0:
            raise FrontendError(f"{builder.framework} StridedSlice node {name!r}: stride 0")
        if masks.get("shrink_axis_mask", 0) >> axis & 1:
            b = b + dim if b < 0 else b
            begins.append(b), ends.append(b + 1), steps.append(1), axes.append(axis)
            shrink.append(axis)
            continue
        if masks.get("begin_mask", 0) >> axis & 1:
            b = 0 if s > 0 else dim - 1
        if masks.get("end_mask", 0) >> axis & 1:
            e = dim if s > 0 else -(dim + 1)
        begins.append(b), ends.append(e), steps.append(s), axes.append(axis)
    sliced = builder.apply(
        "strided_slice",
        [builder.fold_or_expr(value, name)],
        name,
        begin=tuple(begins),
        end=tuple(ends),
        strides=tuple(steps),
        axes=tuple(axes),
    )
    if not shrink:
        return sliced
    out_shape = tuple(d for a, d in enumerate(sliced.shape) if a not in shrink)
    return builder.apply(
        "reshape", [builder.fold_or_expr(sliced, name)], f"{name}/shrink", newshape=out_shape
    )


def space_to_batch(
    builder: NHWCBuilder, value: Value, block: list[int], paddings: list[list[int]], name: str
) -> Value:
    """TF SpaceToBatchND on NHWC with 2 spatial block dims: pad, then move blocks to batch.

    TF emits it around a VALID conv to express a dilated conv (as does TFLite).
    """
    if len(block) != 2 or len(value.shape) != 4:
        raise FrontendError(
            f"{builder.framework} SpaceToBatchND node {name!r}: only 2 block dims on a 4-D "
            f"tensor are supported, got block {block} on shape {value.shape}"
        )
    (bh, bw), width = block, [(0, 0), *[tuple(p) for p in paddings], (0, 0)]
    x = builder.pad(value, width, f"{name}/pad") if any(map(any, paddings)) else value
    n, h, w, c = x.shape
    steps = [
        ("reshape", {"newshape": (n, h // bh, bh, w // bw, bw, c)}),
        ("transpose", {"axes": (2, 4, 0, 1, 3, 5)}),
        ("reshape", {"newshape": (bh * bw * n, h // bh, w // bw, c)}),
    ]
    return _chain(builder, x, steps, name)


def batch_to_space(
    builder: NHWCBuilder, value: Value, block: list[int], crops: list[list[int]], name: str
) -> Value:
    """TF BatchToSpaceND on NHWC with 2 spatial block dims: the inverse of space_to_batch."""
    if len(block) != 2 or len(value.shape) != 4:
        raise FrontendError(
            f"{builder.framework} BatchToSpaceND node {name!r}: only 2 block dims on a 4-D "
            f"tensor are supported, got block {block} on shape {value.shape}"
        )
    (bh, bw) = block
    nb, h, w, c = value.shape
    n = nb // (bh * bw)
    steps = [
        ("reshape", {"newshape": (bh, bw, n, h, w, c)}),
        ("transpose", {"axes": (2, 3, 0, 4, 1, 5)}),
        ("reshape", {"newshape": (n, h * bh, w * bw, c)}),
    ]
    out = _chain(builder, value, steps, f"{name}/space")
    (top, bottom), (left, right) = crops
    if not (top or bottom or left or right):
        return out
    return builder.apply(
        "strided_slice",
        [builder.fold_or_expr(out, name)],
        name,
        begin=(top, left),
        end=(h * bh - bottom, w * bw - right),
        strides=(1, 1),
        axes=(1, 2),
    )


def _chain(builder: NHWCBuilder, value: Value, steps: list[tuple[str, dict]], name: str) -> Value:
    for k, (op, attrs) in enumerate(steps):
        step_name = name if k == len(steps) - 1 else f"{name}/{k}"
        value = builder.apply(op, [builder.fold_or_expr(value, name)], step_name, **attrs)
    return value
