"""Winograd convolution in the blocked layout: three ops that a 3x3 stride-1 conv becomes.

Not ONNX ops: :func:`ember.graph.passes.winograd.winograd_conv2d` rewrites a 3x3,
stride-1 ``nn.conv2d_nchwc`` whose weights are constants into them, with the weight
transform done at compile time. Winograd's minimal filtering F(m x m, 3 x 3) computes
each m x m output tile from an alpha x alpha (alpha = m + 2) input tile with alpha^2
multiplications per (input, output) channel pair instead of 9 m^2::

    U = G g G^T      weights (alpha, alpha, O/o, C/i, i, o): a constant, made at compile time
    V = B^T d B      nn.winograd_input_transform:  data (N, C/i, H, W, i) -> (a, a, C/i, P, i)
    M = V x U        nn.winograd_batch_matmul: per (e, u), over input channels -> (a, a, O/o, P, o)
    Y = A^T M A      nn.winograd_output_transform (+ bias): -> (N, O/o, OH, OW, o)

P = N * ceil(OH / m) * ceil(OW / m) tiles; border tiles hang over the output and their
extra values are dropped. Three kernels rather than one so that V and M live in the
model's statically planned workspace (a kernel's own scratch of that size is allocated
and page-faulted on every call). m = 2 and m = 4 are supported (F(6x6) loses too much
float32 precision for ember's 1e-4 relative tolerance).

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((1, 4, 14, 14, 16)))
    >>> call("nn.winograd_input_transform", x, padding=1, tile_size=2).type.shape
    (4, 4, 4, 49, 16)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import check_rank, int_tuple, padding4, same_dtype, set_attr, tensor
from ember.ops.registry import NoAttrs, OpPattern, register_op

TILE_SIZES = (2, 4)
"""Output tile sizes m of F(m x m, 3 x 3) that are supported (alpha = m + 2)."""

KERNEL_SIZE = 3


@cache
def winograd_matrices(tile_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T (m, alpha), G (alpha, 3), B^T (alpha, alpha)) of F(m, 3) in float64 (Lavin &
    Gray's points 0, +-1 (, +-2) and infinity).

    >>> at, g, bt = winograd_matrices(2)
    >>> at.shape, g.shape, bt.shape
    ((2, 4), (4, 3), (4, 4))
    """
    if tile_size == 2:
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
        g = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    elif tile_size == 4:
        at = [
            [1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1],
        ]
        g = [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
        bt = [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
    else:
        raise AttrError(
            f"Winograd tile_size {tile_size} is not supported",
            hint=f"use one of {TILE_SIZES}",
        )
    return np.array(at, np.float64), np.array(g, np.float64), np.array(bt, np.float64)


def transform_weight(
    weight: np.ndarray, tile_size: int, in_block: int, out_block: int
) -> np.ndarray:
    """OIHW 3x3 weights -> U = G g G^T as (alpha, alpha, O/ob, I/ib, ib, ob) (float64
    arithmetic, returned in the weight's dtype). The winograd_conv2d pass calls this at
    compile time.

    >>> transform_weight(np.ones((16, 16, 3, 3), np.float32), 2, 16, 16).shape
    (4, 4, 1, 1, 16, 16)
    """
    o, i, kh, kw = weight.shape
    if (kh, kw) != (KERNEL_SIZE, KERNEL_SIZE) or o % out_block or i % in_block:
        raise ShapeError(
            f"Winograd weight transform: weight shape {weight.shape} is not (O, I, 3, 3) with "
            f"O divisible by {out_block} and I by {in_block}",
            hint="only 3x3 convolutions with blocked channels take the Winograd path",
        )
    _, g, _ = winograd_matrices(tile_size)
    u = np.einsum("ak,oikl,bl->abio", g, weight.astype(np.float64), g)  # (alpha, alpha, I, O)
    alpha = g.shape[0]
    u = u.reshape(alpha, alpha, i // in_block, in_block, o // out_block, out_block)
    u = u.transpose(0, 1, 4, 2, 3, 5)  # (alpha, alpha, O/ob, I/ib, ib, ob)
    return np.ascontiguousarray(u.astype(weight.dtype))


def tile_counts(out_h: int, out_w: int, tile_size: int) -> tuple[int, int]:
    """Tiles per column and per row: the last ones hang over the border when m does not
    divide the output size (their extra outputs are computed and dropped)."""
    return -(-out_h // tile_size), -(-out_w // tile_size)


def _check_tile_size(op: str, tile_size: int) -> None:
    if tile_size not in TILE_SIZES:
        raise AttrError(
            f"{op}: tile_size={tile_size!r} is not supported",
            hint=f"use one of {TILE_SIZES} (F(2x2,3x3) or F(4x4,3x3))",
        )


def _float_dtype(op: str, t: TensorType) -> None:
    if t.dtype not in ("float32", "float64"):
        raise ShapeError(f"{op}: input is {t.dtype}, expected float32 or float64")


# ----------------------------------------------------------------------------- input transform


@dataclass(frozen=True)
class WinogradInputAttrs:
    """``padding`` (top, left, bottom, right) of the 3x3 stride-1 conv; ``tile_size`` m."""

    padding: tuple[int, int, int, int] = (1, 1, 1, 1)
    tile_size: int = 2

    def __post_init__(self) -> None:
        set_attr(self, "padding", padding4("padding", self.padding))
        _check_tile_size("nn.winograd_input_transform", self.tile_size)


winograd_input_transform = register_op(
    "nn.winograd_input_transform",
    WinogradInputAttrs,
    OpPattern.OPAQUE,  # a kernel of its own: its output goes to the planned workspace
    num_inputs=1,
    doc="V = B^T d B of every (padded) alpha x alpha input tile: NCHW[x]c data -> "
    "(alpha, alpha, C/x, tiles, x) with tiles = N * ceil(OH/m) * ceil(OW/m)",
)


@winograd_input_transform.flop_rule
def _input_transform_flops(call: Call) -> int:
    # V = B^T d B as two dense alpha x alpha products per tile and channel: each output
    # element is two alpha-long dot products (the zeros of B are not discounted).
    alpha = call.type.shape[0]
    return call.type.size * 4 * alpha


def _input_geometry(data: TensorType, attrs: WinogradInputAttrs) -> tuple[int, int, int, int]:
    """(OH, OW, tiles_h, tiles_w) of a 3x3 stride-1 conv of ``data`` with ``attrs``."""
    _, _, h, w, _ = data.shape
    pt, pl, pb, pr = attrs.padding
    oh, ow = h + pt + pb - KERNEL_SIZE + 1, w + pl + pr - KERNEL_SIZE + 1
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"nn.winograd_input_transform: a 3x3 kernel does not fit the padded "
            f"{h + pt + pb}x{w + pl + pr} input"
        )
    return (oh, ow, *tile_counts(oh, ow, attrs.tile_size))


@winograd_input_transform.type_rule
def _input_type(types: list, attrs: WinogradInputAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_rank(data, "data (N, C/c, H, W, c)", 5)
    _float_dtype("nn.winograd_input_transform", data)
    n, in_blocks, _, _, in_block = data.shape
    _, _, th, tw = _input_geometry(data, attrs)
    alpha = attrs.tile_size + KERNEL_SIZE - 1
    return TensorType((alpha, alpha, in_blocks, n * th * tw, in_block), data.dtype)


@winograd_input_transform.reference
def _input_ref(inputs: list[np.ndarray], attrs: WinogradInputAttrs) -> np.ndarray:
    data = np.asarray(inputs[0])
    m = attrs.tile_size
    _, _, bt = winograd_matrices(m)
    alpha = m + 2
    n, cb, h, w, ib = data.shape
    _, _, th, tw = _input_geometry(TensorType(data.shape, str(data.dtype)), attrs)
    pt, pl = attrs.padding[0], attrs.padding[1]
    padded = np.zeros((n, cb, th * m + 2, tw * m + 2, ib))
    rows, cols = min(h, th * m + 2 - pt), min(w, tw * m + 2 - pl)
    padded[:, :, pt : pt + rows, pl : pl + cols] = data[:, :, :rows, :cols]
    # tiles[n, cb, ty, tx, k, i, j] = padded[n, cb, ty*m + i, tx*m + j, k]
    tiles = np.lib.stride_tricks.sliding_window_view(padded, (alpha, alpha), axis=(2, 3))
    tiles = tiles[:, :, ::m, ::m][:, :, :th, :tw]
    v = np.einsum("ai,ncyxkij,bj->abncyxk", bt, tiles, bt)
    v = v.transpose(0, 1, 3, 2, 4, 5, 6).reshape(alpha, alpha, cb, n * th * tw, ib)
    return np.ascontiguousarray(v.astype(data.dtype))


# ----------------------------------------------------------------------------- batched GEMM


winograd_batch_matmul = register_op(
    "nn.winograd_batch_matmul",
    NoAttrs,
    OpPattern.OUT_ELEMWISE_FUSABLE,
    num_inputs=2,
    doc="M[e, u] = V[e, u] x U[e, u] over the input channels: V (alpha, alpha, C/i, tiles, i) "
    "and U (alpha, alpha, O/o, C/i, i, o) -> (alpha, alpha, O/o, tiles, o)",
)


@winograd_batch_matmul.flop_rule
def _gemm_flops(call: Call) -> int:
    # M (alpha, alpha, O/o, tiles, o): each element sums C = C/i * i products.
    _, _, in_blocks, _, in_block = call.args[0].type.shape
    return 2 * call.type.size * in_blocks * in_block


@winograd_batch_matmul.type_rule
def _gemm_type(types: list, attrs: NoAttrs) -> TensorType:
    v, u = tensor(types, 0, "V"), tensor(types, 1, "U")
    check_rank(v, "V (alpha, alpha, C/i, tiles, i)", 5)
    check_rank(u, "U (alpha, alpha, O/o, C/i, i, o)", 6)
    dtype = same_dtype([v, u], ["V", "U"])
    alpha, alpha2, in_blocks, tiles, in_block = v.shape
    if u.shape[:2] != (alpha, alpha2) or u.shape[3:5] != (in_blocks, in_block):
        raise ShapeError(
            f"nn.winograd_batch_matmul: V {v.shape} and U {u.shape} disagree (expected U of "
            f"shape ({alpha}, {alpha2}, O/o, {in_blocks}, {in_block}, o))",
            hint="transform the weights with ember.ops.winograd.transform_weight",
        )
    return TensorType((alpha, alpha2, u.shape[2], tiles, u.shape[5]), dtype)


@winograd_batch_matmul.reference
def _gemm_ref(inputs: list[np.ndarray], attrs: NoAttrs) -> np.ndarray:
    v, u = np.asarray(inputs[0]), np.asarray(inputs[1])
    out = np.einsum("abcpi,abkcio->abkpo", v.astype(np.float64), u.astype(np.float64))
    return np.ascontiguousarray(out.astype(v.dtype))


# ----------------------------------------------------------------------------- output transform


@dataclass(frozen=True)
class WinogradOutputAttrs:
    """``tile_size`` m and the conv's ``output_size`` (OH, OW): the tiles are cropped to it."""

    tile_size: int = 2
    output_size: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        _check_tile_size("nn.winograd_output_transform", self.tile_size)
        set_attr(self, "output_size", int_tuple("output_size", self.output_size, 2, min_value=1))


winograd_output_transform = register_op(
    "nn.winograd_output_transform",
    WinogradOutputAttrs,
    OpPattern.OUT_ELEMWISE_FUSABLE,  # the conv's bias / relu / residual add fuse after it
    num_inputs=None,
    doc="Y = A^T M A per tile, cropped to output_size, plus an optional (O,) bias: "
    "(alpha, alpha, O/o, tiles, o) -> NCHW[o]c",
)


@winograd_output_transform.flop_rule
def _output_transform_flops(call: Call) -> int:
    # Y = A^T M A: each kept output element is two alpha-long dot products (+ the bias).
    alpha = call.args[0].type.shape[0]
    out = call.type.size
    return out * 4 * alpha + (out if len(call.args) == 2 else 0)


@winograd_output_transform.type_rule
def _output_type(types: list, attrs: WinogradOutputAttrs) -> TensorType:
    if len(types) not in (1, 2):
        raise ShapeError(
            f"nn.winograd_output_transform takes M and an optional bias; got {len(types)} inputs"
        )
    mm = tensor(types, 0, "M")
    check_rank(mm, "M (alpha, alpha, O/o, tiles, o)", 5)
    _float_dtype("nn.winograd_output_transform", mm)
    alpha, _, out_blocks, tiles, out_block = mm.shape
    if alpha != attrs.tile_size + KERNEL_SIZE - 1:
        raise ShapeError(
            f"nn.winograd_output_transform: M has {alpha}x{alpha} tiles, expected "
            f"{attrs.tile_size + 2}x{attrs.tile_size + 2} for tile_size={attrs.tile_size}"
        )
    oh, ow = attrs.output_size
    th, tw = tile_counts(oh, ow, attrs.tile_size)
    if tiles % (th * tw):
        raise ShapeError(
            f"nn.winograd_output_transform: {tiles} tiles is not a whole number of "
            f"{th}x{tw}-tile images (output_size {oh}x{ow}, tile_size {attrs.tile_size})"
        )
    if len(types) == 2:
        bias = tensor(types, 1, "bias")
        if bias.shape != (out_blocks * out_block,):
            raise ShapeError(f"bias has shape {bias.shape}, expected ({out_blocks * out_block},)")
    return TensorType((tiles // (th * tw), out_blocks, oh, ow, out_block), mm.dtype)


@winograd_output_transform.reference
def _output_ref(inputs: list[np.ndarray], attrs: WinogradOutputAttrs) -> np.ndarray:
    mm = np.asarray(inputs[0])
    m = attrs.tile_size
    at, _, _ = winograd_matrices(m)
    alpha, _, ob, tiles, o = mm.shape
    oh, ow = attrs.output_size
    th, tw = tile_counts(oh, ow, m)
    n = tiles // (th * tw)
    tiled = mm.astype(np.float64).reshape(alpha, alpha, ob, n, th, tw, o)
    y = np.einsum("ia,abknyxo,jb->nkyixjo", at, tiled, at).reshape(n, ob, th * m, tw * m, o)
    y = y[:, :, :oh, :ow]
    if len(inputs) == 2:
        y = y + np.asarray(inputs[1], np.float64).reshape(1, ob, 1, 1, o)
    return np.ascontiguousarray(y.astype(mm.dtype))


def winograd_conv2d_reference(
    data: np.ndarray,
    weight_u: np.ndarray,
    bias: np.ndarray | None,
    padding: tuple[int, int, int, int],
    tile_size: int,
) -> np.ndarray:
    """The three ops' references in a row: a 3x3 stride-1 conv of NCHW[x]c ``data``.

    >>> winograd_conv2d_reference(x, transform_weight(w, 2, 16, 16), b, (1, 1, 1, 1), 2)
    """
    in_attrs = WinogradInputAttrs(padding=padding, tile_size=tile_size)
    oh, ow, _, _ = _input_geometry(TensorType(data.shape, str(data.dtype)), in_attrs)
    v = winograd_input_transform.evaluate([data], in_attrs)
    mm = winograd_batch_matmul.evaluate([v, weight_u], NoAttrs())
    out_attrs = WinogradOutputAttrs(tile_size=tile_size, output_size=(oh, ow))
    rest = [] if bias is None else [bias]
    return winograd_output_transform.evaluate([mm, *rest], out_attrs)  # type: ignore[return-value]


__all__ = [
    "TILE_SIZES",
    "WinogradInputAttrs",
    "WinogradOutputAttrs",
    "tile_counts",
    "transform_weight",
    "winograd_batch_matmul",
    "winograd_conv2d_reference",
    "winograd_input_transform",
    "winograd_matrices",
    "winograd_output_transform",
]
