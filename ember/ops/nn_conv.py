"""Convolution and matrix-product ops: conv2d, conv2d_transpose, dense, matmul, batch_matmul.

Layouts are NCHW data and OIHW weights (conv2d_transpose: IOHW, like ONNX)::

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((1, 3, 224, 224)))
    >>> w = Var("w", TensorType((64, 3, 7, 7)))
    >>> call("nn.conv2d", x, w, strides=2, padding=3).type
    TensorType(shape=(1, 64, 112, 112), dtype='float32')

References compute sums through BLAS matmuls over im2col patches (no Python
loops over pixels), accumulating float16 in float32 and integers in int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    NUMBER_DTYPES,
    accumulate_dtype,
    broadcast_shapes,
    check_dtype,
    check_rank,
    conv_output_size,
    int_tuple,
    padding4,
    same_dtype,
    set_attr,
    tensor,
)
from ember.ops.registry import NoAttrs, OpPattern, register_op


def _check_bias(types: list, out_channels: int, dtype: str) -> None:
    if len(types) == 3:
        bias = tensor(types, 2, "bias")
        if bias.shape != (out_channels,):
            raise ShapeError(
                f"bias has shape {bias.shape}, expected ({out_channels},) (one per output channel)"
            )
        if bias.dtype != dtype:
            raise ShapeError(f"bias has dtype {bias.dtype} but data has {dtype}")


def _check_arity(types: list, op: str) -> None:
    if len(types) not in (2, 3):
        raise ShapeError(f"{op} takes data, weight and an optional bias; got {len(types)} inputs")


def _check_groups(groups: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise AttrError(f"attribute groups must be an int >= 1, got {groups!r}")
    return int(groups)


# ----------------------------------------------------------------------------- conv2d


@dataclass(frozen=True)
class Conv2DAttrs:
    """2-D convolution attrs. ``padding`` is (top, left, bottom, right); ints broadcast."""

    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        set_attr(self, "strides", int_tuple("strides", self.strides, 2, min_value=1))
        set_attr(self, "padding", padding4("padding", self.padding))
        set_attr(self, "dilation", int_tuple("dilation", self.dilation, 2, min_value=1))
        set_attr(self, "groups", _check_groups(self.groups))


conv2d = register_op("nn.conv2d", Conv2DAttrs, OpPattern.OUT_ELEMWISE_FUSABLE, num_inputs=None)


@conv2d.flop_rule
def _conv2d_flops(call: Call) -> int:
    # Each output element sums C/groups * KH * KW products; the bias adds one per element.
    _, cg, kh, kw = call.args[1].type.shape
    out = call.type.size
    return 2 * out * cg * kh * kw + (out if len(call.args) == 3 else 0)


@conv2d.type_rule
def _conv2d_type(types: list, attrs: Conv2DAttrs) -> TensorType:
    _check_arity(types, "conv2d")
    data, weight = tensor(types, 0, "data"), tensor(types, 1, "weight")
    check_rank(data, "data (N, C, H, W)", 4)
    check_rank(weight, "weight (O, C/groups, KH, KW)", 4)
    dtype = same_dtype([data, weight], ["data", "weight"])
    check_dtype(data, "data", NUMBER_DTYPES)
    n, c, h, w = data.shape
    o, cg, kh, kw = weight.shape
    g = attrs.groups
    if c != cg * g:
        raise ShapeError(
            f"conv2d: data has {c} channels but weight expects {cg * g} "
            f"(= weight.shape[1] * groups = {cg} * {g})"
        )
    if o % g:
        raise ShapeError(f"conv2d: {o} output channels do not divide into groups={g}")
    _check_bias(types, o, dtype)
    pt, pl, pb, pr = attrs.padding
    oh = conv_output_size(
        h, kh, stride=attrs.strides[0], pad_before=pt, pad_after=pb, dilation=attrs.dilation[0]
    )
    ow = conv_output_size(
        w, kw, stride=attrs.strides[1], pad_before=pl, pad_after=pr, dilation=attrs.dilation[1]
    )
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"conv2d: the dilated kernel ({kh}, {kw}) with dilation {attrs.dilation} is larger "
            f"than the padded input ({h + pt + pb}, {w + pl + pr})"
        )
    return TensorType((n, o, oh, ow), dtype)


def windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Read-only view (N, C, OH, OW, KH, KW) of the sliding windows of padded ``x``."""
    sn, sc, sh, sw = x.strides
    n, c = x.shape[:2]
    return as_strided(
        x,
        shape=(n, c, out_hw[0], out_hw[1], kernel[0], kernel[1]),
        strides=(sn, sc, sh * strides[0], sw * strides[1], sh * dilation[0], sw * dilation[1]),
        writeable=False,
    )


@conv2d.reference
def _conv2d_ref(inputs: list[np.ndarray], attrs: Conv2DAttrs) -> np.ndarray:
    data, weight = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(data.dtype)
    n, c, h, w = data.shape
    o, cg, kh, kw = weight.shape
    g = attrs.groups
    pt, pl, pb, pr = attrs.padding
    oh = conv_output_size(
        h, kh, stride=attrs.strides[0], pad_before=pt, pad_after=pb, dilation=attrs.dilation[0]
    )
    ow = conv_output_size(
        w, kw, stride=attrs.strides[1], pad_before=pl, pad_after=pr, dilation=attrs.dilation[1]
    )
    padded = np.pad(data.astype(acc, copy=False), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = windows(padded, (kh, kw), attrs.strides, attrs.dilation, (oh, ow))
    # im2col: (N, G, OH*OW, C/G*KH*KW) patches times (G, C/G*KH*KW, O/G) weights.
    cols = win.reshape(n, g, cg, oh, ow, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
    cols = cols.reshape(n, g, oh * ow, cg * kh * kw)
    wmat = weight.astype(acc, copy=False).reshape(g, o // g, cg * kh * kw).transpose(0, 2, 1)
    out = np.matmul(cols, wmat)  # (N, G, OH*OW, O/G)
    out = out.transpose(0, 1, 3, 2).reshape(n, o, oh, ow)
    if len(inputs) == 3:
        out = out + np.asarray(inputs[2]).astype(acc).reshape(1, o, 1, 1)
    return out.astype(data.dtype)


# ----------------------------------------------------------------------------- conv2d_transpose


@dataclass(frozen=True)
class Conv2DTransposeAttrs:
    """Transposed 2-D convolution attrs (ONNX ConvTranspose with explicit pads)."""

    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        set_attr(self, "strides", int_tuple("strides", self.strides, 2, min_value=1))
        set_attr(self, "padding", padding4("padding", self.padding))
        set_attr(
            self, "output_padding", int_tuple("output_padding", self.output_padding, 2, min_value=0)
        )
        set_attr(self, "dilation", int_tuple("dilation", self.dilation, 2, min_value=1))
        set_attr(self, "groups", _check_groups(self.groups))
        for i, axis in enumerate("hw"):
            if self.output_padding[i] >= max(self.strides[i], self.dilation[i]):
                raise AttrError(
                    f"attribute output_padding[{i}] ({axis}) = {self.output_padding[i]} must be "
                    f"smaller than the stride or the dilation along {axis} "
                    f"({self.strides[i]}, {self.dilation[i]})"
                )


conv2d_transpose = register_op(
    "nn.conv2d_transpose", Conv2DTransposeAttrs, OpPattern.OUT_ELEMWISE_FUSABLE, num_inputs=None
)


@conv2d_transpose.flop_rule
def _conv2d_transpose_flops(call: Call) -> int:
    # Each input pixel scatters into a KH x KW window of every output channel of its group.
    _, og, kh, kw = call.args[1].type.shape
    out = call.type.size
    return 2 * call.args[0].type.size * og * kh * kw + (out if len(call.args) == 3 else 0)


def _transpose_out_size(
    size: int, kernel: int, stride: int, pad: int, dil: int, outpad: int
) -> int:
    return (size - 1) * stride - pad + dil * (kernel - 1) + outpad + 1


@conv2d_transpose.type_rule
def _conv2d_transpose_type(types: list, attrs: Conv2DTransposeAttrs) -> TensorType:
    _check_arity(types, "conv2d_transpose")
    data, weight = tensor(types, 0, "data"), tensor(types, 1, "weight")
    check_rank(data, "data (N, C, H, W)", 4)
    check_rank(weight, "weight (C, O/groups, KH, KW)", 4)
    dtype = same_dtype([data, weight], ["data", "weight"])
    check_dtype(data, "data", NUMBER_DTYPES)
    n, c, h, w = data.shape
    ci, og, kh, kw = weight.shape
    g = attrs.groups
    if c != ci:
        raise ShapeError(
            f"conv2d_transpose: data has {c} channels but weight.shape[0] is {ci} "
            "(weight layout is (C_in, C_out/groups, KH, KW))"
        )
    if c % g:
        raise ShapeError(f"conv2d_transpose: {c} input channels do not divide into groups={g}")
    o = og * g
    _check_bias(types, o, dtype)
    pt, pl, pb, pr = attrs.padding
    oh = _transpose_out_size(
        h, kh, attrs.strides[0], pt + pb, attrs.dilation[0], attrs.output_padding[0]
    )
    ow = _transpose_out_size(
        w, kw, attrs.strides[1], pl + pr, attrs.dilation[1], attrs.output_padding[1]
    )
    if oh <= 0 or ow <= 0:
        raise ShapeError(f"conv2d_transpose: padding {attrs.padding} leaves an empty output")
    return TensorType((n, o, oh, ow), dtype)


@conv2d_transpose.reference
def _conv2d_transpose_ref(inputs: list[np.ndarray], attrs: Conv2DTransposeAttrs) -> np.ndarray:
    data, weight = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(data.dtype)
    n, c, h, w = data.shape
    _, og, kh, kw = weight.shape
    g = attrs.groups
    cg = c // g
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, pb, pr = attrs.padding
    oh = _transpose_out_size(h, kh, sh, pt + pb, dh, attrs.output_padding[0])
    ow = _transpose_out_size(w, kw, sw, pl + pr, dw, attrs.output_padding[1])
    # cols[n, g, o, kh, kw, h, w]: each input pixel times each kernel tap (one batched matmul).
    xg = data.astype(acc, copy=False).reshape(n, g, cg, h * w)
    wg = weight.astype(acc, copy=False).reshape(g, cg, og * kh * kw)
    cols = np.matmul(wg.transpose(0, 2, 1)[None], xg)  # (N, G, O/G*KH*KW, H*W)
    cols = cols.reshape(n, g * og, kh, kw, h, w)
    # col2im: scatter-add every tap into an unpadded canvas, then crop the padding.
    full_h = max((h - 1) * sh + dh * (kh - 1) + 1, pt + oh)
    full_w = max((w - 1) * sw + dw * (kw - 1) + 1, pl + ow)
    canvas = np.zeros((n, g * og, full_h, full_w), dtype=acc)
    for i in range(kh):
        for j in range(kw):
            canvas[
                :,
                :,
                i * dh : i * dh + (h - 1) * sh + 1 : sh,
                j * dw : j * dw + (w - 1) * sw + 1 : sw,
            ] += cols[:, :, i, j]
    out = canvas[:, :, pt : pt + oh, pl : pl + ow]
    if len(inputs) == 3:
        out = out + np.asarray(inputs[2]).astype(acc).reshape(1, -1, 1, 1)
    return out.astype(data.dtype)


# ----------------------------------------------------------------------------- dense


dense = register_op("nn.dense", NoAttrs, OpPattern.OUT_ELEMWISE_FUSABLE, num_inputs=None)


@dense.flop_rule
def _dense_flops(call: Call) -> int:
    out = call.type.size
    return 2 * out * call.args[1].type.shape[1] + (out if len(call.args) == 3 else 0)


@dense.type_rule
def _dense_type(types: list, attrs: NoAttrs) -> TensorType:
    _check_arity(types, "dense")
    data, weight = tensor(types, 0, "data"), tensor(types, 1, "weight")
    if data.ndim < 1:
        raise ShapeError("dense: data must have rank >= 1 (..., K)")
    check_rank(weight, "weight (N, K)", 2)
    dtype = same_dtype([data, weight], ["data", "weight"])
    check_dtype(data, "data", NUMBER_DTYPES)
    if data.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"dense: data has {data.shape[-1]} features (last axis) but weight (N, K) "
            f"expects K = {weight.shape[1]}",
            hint="the weight layout is (units, in_features); transpose it if it is (K, N)",
        )
    _check_bias(types, weight.shape[0], dtype)
    return TensorType((*data.shape[:-1], weight.shape[0]), dtype)


@dense.reference
def _dense_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    data, weight = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(data.dtype)
    out = np.matmul(data.astype(acc, copy=False), weight.astype(acc, copy=False).T)
    if len(inputs) == 3:
        out = out + np.asarray(inputs[2]).astype(acc)
    return out.astype(data.dtype)


# ----------------------------------------------------------------------------- matmul


matmul = register_op("nn.matmul", NoAttrs, OpPattern.OUT_ELEMWISE_FUSABLE, num_inputs=2)


@matmul.flop_rule
def _matmul_flops(call: Call) -> int:
    return 2 * call.type.size * call.args[0].type.shape[-1]


@matmul.type_rule
def _matmul_type(types: list, attrs: NoAttrs) -> TensorType:
    a, b = tensor(types, 0, "a"), tensor(types, 1, "b")
    dtype = same_dtype([a, b], ["a", "b"])
    check_dtype(a, "a", NUMBER_DTYPES)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: inputs must have rank >= 1 (use multiply for scalars)")
    a_shape = (1, *a.shape) if a.ndim == 1 else a.shape
    b_shape = (*b.shape, 1) if b.ndim == 1 else b.shape
    if a_shape[-1] != b_shape[-2]:
        raise ShapeError(
            f"matmul: a has {a_shape[-1]} columns but b has {b_shape[-2]} rows "
            f"(a {a.shape} @ b {b.shape})"
        )
    batch = broadcast_shapes(a_shape[:-2], b_shape[:-2])
    out = (
        *batch,
        *(() if a.ndim == 1 else (a_shape[-2],)),
        *(() if b.ndim == 1 else (b_shape[-1],)),
    )
    return TensorType(out, dtype)


@matmul.reference
def _matmul_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(a.dtype)
    return np.asarray(np.matmul(a.astype(acc, copy=False), b.astype(acc, copy=False))).astype(
        a.dtype
    )


# ----------------------------------------------------------------------------- batch_matmul


@dataclass(frozen=True)
class BatchMatmulAttrs:
    """Transpose the last two axes of ``a`` / ``b`` before multiplying."""

    transpose_a: bool = False
    transpose_b: bool = False

    def __post_init__(self) -> None:
        for field in ("transpose_a", "transpose_b"):
            value = getattr(self, field)
            if not isinstance(value, bool | np.bool_):
                raise AttrError(f"attribute {field} must be a bool, got {value!r}")
            set_attr(self, field, bool(value))


batch_matmul = register_op(
    "nn.batch_matmul", BatchMatmulAttrs, OpPattern.OUT_ELEMWISE_FUSABLE, num_inputs=2
)


@batch_matmul.flop_rule
def _batch_matmul_flops(call: Call) -> int:
    a_shape = call.args[0].type.shape
    k = a_shape[1] if call.attrs.transpose_a else a_shape[2]
    return 2 * call.type.size * k


@batch_matmul.type_rule
def _batch_matmul_type(types: list, attrs: BatchMatmulAttrs) -> TensorType:
    a, b = tensor(types, 0, "a"), tensor(types, 1, "b")
    check_rank(a, "a (B, M, K)", 3)
    check_rank(b, "b (B, K, N)", 3)
    dtype = same_dtype([a, b], ["a", "b"])
    check_dtype(a, "a", NUMBER_DTYPES)
    ba, m, ka = (a.shape[0], a.shape[2], a.shape[1]) if attrs.transpose_a else a.shape
    bb, kb, nn = (b.shape[0], b.shape[2], b.shape[1]) if attrs.transpose_b else b.shape
    if ka != kb:
        raise ShapeError(f"batch_matmul: a has K = {ka} but b has K = {kb}")
    if ba != bb and 1 not in (ba, bb):
        raise ShapeError(f"batch_matmul: batch sizes {ba} and {bb} differ (and neither is 1)")
    return TensorType((max(ba, bb), m, nn), dtype)


@batch_matmul.reference
def _batch_matmul_ref(inputs: list[np.ndarray], attrs: BatchMatmulAttrs) -> np.ndarray:
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    acc = accumulate_dtype(a.dtype)
    a2 = a.astype(acc, copy=False)
    b2 = b.astype(acc, copy=False)
    if attrs.transpose_a:
        a2 = a2.transpose(0, 2, 1)
    if attrs.transpose_b:
        b2 = b2.transpose(0, 2, 1)
    return np.matmul(a2, b2).astype(a.dtype)
