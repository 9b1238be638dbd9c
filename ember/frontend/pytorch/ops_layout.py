"""PyTorch converters that move elements: pixel and channel shuffles, roll, flip, gathers.

    pixel_shuffle(x, 2)   (1, 12, 4, 4) -> reshape (1, 3, 2, 2, 4, 4)
                                        -> transpose (0, 1, 4, 2, 5, 3) -> reshape (1, 3, 8, 8)
    roll(x, 1, 1)         -> concatenate(x[:, -1:], x[:, :-1], axis=1)

Each is a composition of ``reshape``, ``transpose``, ``strided_slice`` and
``concatenate`` (as ONNX's DepthToSpace is in its frontend): the layouts are
static, so the compiler sees plain data movement it already fuses and
schedules, and no new op needs a compute of its own.
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.common import shape_of
from ember.frontend.pytorch.context import AtenNode, converter, pair
from ember.graph.ir import Expr, const


def _image(node: AtenNode, what: str) -> tuple[Expr, tuple[int, ...], int, int, int]:
    """(input, leading batch dims, channels, height, width) of a (*, C, H, W) input."""
    x = node.tensor(0)
    shape = shape_of(x)
    if len(shape) < 3:
        raise node.error(f"{what} needs a (*, C, H, W) input, got shape {shape}")
    return x, shape[:-3], shape[-3], shape[-2], shape[-1]


@converter("pixel_shuffle")
def _pixel_shuffle(node: AtenNode) -> Expr:
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r).

    Output (c, h*r + i, w*r + j) is input (c*r*r + i*r + j, h, w).
    """
    x, batch, channels, height, width = _image(node, "pixel_shuffle")
    factor = int(node.arg(1))
    if factor < 1 or channels % (factor * factor):
        raise node.error(
            f"pixel_shuffle with upscale_factor {factor} needs channels divisible by "
            f"{factor * factor}, got {channels}"
        )
    out_channels = channels // (factor * factor)
    n = math.prod(batch)
    x = node.call(
        "reshape", x, suffix="/split", newshape=(n, out_channels, factor, factor, height, width)
    )
    x = node.call("transpose", x, suffix="/interleave", axes=(0, 1, 4, 2, 5, 3))
    return node.call("reshape", x, newshape=(*batch, out_channels, height * factor, width * factor))


@converter("pixel_unshuffle")
def _pixel_unshuffle(node: AtenNode) -> Expr:
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle."""
    x, batch, channels, height, width = _image(node, "pixel_unshuffle")
    factor = int(node.arg(1))
    if factor < 1 or height % factor or width % factor:
        raise node.error(
            f"pixel_unshuffle with downscale_factor {factor} needs height and width divisible "
            f"by it, got {height}x{width}"
        )
    h, w = height // factor, width // factor
    n = math.prod(batch)
    x = node.call("reshape", x, suffix="/split", newshape=(n, channels, h, factor, w, factor))
    x = node.call("transpose", x, suffix="/gather", axes=(0, 1, 3, 5, 2, 4))
    return node.call("reshape", x, newshape=(*batch, channels * factor * factor, h, w))


@converter("channel_shuffle", "native_channel_shuffle")
def _channel_shuffle(node: AtenNode) -> Expr:
    """(N, C, *) with g groups: channel k*(C/g) + i moves to i*g + k (ShuffleNet)."""
    x = node.tensor(0)
    shape = shape_of(x)
    groups = int(node.arg(1))
    if len(shape) < 3 or groups < 1 or shape[1] % groups:
        raise node.error(
            f"channel_shuffle into {groups} groups needs an (N, C, ...) input with C divisible "
            f"by it, got shape {shape}"
        )
    grouped = (shape[0], groups, shape[1] // groups, *shape[2:])
    x = node.call("reshape", x, suffix="/groups", newshape=grouped)
    axes = (0, 2, 1, *range(3, len(grouped)))
    x = node.call("transpose", x, suffix="/shuffle", axes=axes)
    return node.call("reshape", x, newshape=shape)


@converter("roll")
def _roll(node: AtenNode) -> Expr:
    """Elements shifted along each axis, wrapping around (Swin's cyclic window shift)."""
    x = node.tensor(0)
    shape = shape_of(x)
    shifts = node.arg(1)
    shifts = [int(shifts)] if isinstance(shifts, int) else [int(s) for s in shifts]
    dims = node.arg(2, [])
    dims = [int(dims)] if isinstance(dims, int) else [int(d) for d in dims]
    if not dims:  # roll the flattened tensor, then restore the shape
        if len(shifts) != 1:
            raise node.error(f"roll without dims takes one shift, got {shifts}")
        flat = node.call("reshape", x, suffix="/flatten", newshape=(math.prod(shape),))
        rolled = _roll_axis(node, flat, 0, shifts[0], "/flat")
        return node.call("reshape", rolled, newshape=shape)
    if len(shifts) != len(dims):
        raise node.error(f"roll got {len(shifts)} shift(s) for {len(dims)} dim(s)")
    for shift, dim in zip(shifts, dims):
        x = _roll_axis(node, x, node.axis(dim, len(shape), "dim"), shift, f"/dim{dim}")
    return x


def _roll_axis(node: AtenNode, x: Expr, axis: int, shift: int, suffix: str) -> Expr:
    size = shape_of(x)[axis]
    shift %= size or 1
    if shift == 0:
        return x
    tail = node.call(
        "strided_slice",
        x,
        suffix=f"{suffix}/tail",
        begin=(size - shift,),
        end=(size,),
        axes=(axis,),
    )
    head = node.call(
        "strided_slice", x, suffix=f"{suffix}/head", begin=(0,), end=(size - shift,), axes=(axis,)
    )
    return node.call("concatenate", tail, head, suffix=suffix, axis=axis)


@converter("unflatten")
def _unflatten(node: AtenNode) -> Expr:
    """Axis ``dim`` split into ``sizes`` (one may be -1)."""
    x = node.tensor(0)
    shape = shape_of(x)
    axis = node.axis(node.arg(1), len(shape), "dim")
    sizes = [int(s) for s in node.arg(2)]
    if sizes.count(-1) > 1:
        raise node.error(f"unflatten sizes {sizes} have more than one -1")
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if known == 0 or shape[axis] % known:
            raise node.error(f"cannot unflatten axis {axis} of size {shape[axis]} into {sizes}")
        sizes[sizes.index(-1)] = shape[axis] // known
    if math.prod(sizes) != shape[axis]:
        raise node.error(f"cannot unflatten axis {axis} of size {shape[axis]} into {sizes}")
    return node.call("reshape", x, newshape=(*shape[:axis], *sizes, *shape[axis + 1 :]))


@converter("flip", "fliplr", "flipud")
def _flip(node: AtenNode) -> Expr:
    """Each axis in ``dims`` reversed: a strided_slice with stride -1 (test-time flips)."""
    x = node.tensor(0)
    rank = len(shape_of(x))
    dims = {"fliplr": [1], "flipud": [0]}.get(node.op) or node.arg(1, [])
    axes = sorted({node.axis(d, rank, "dims") for d in ([dims] if isinstance(dims, int) else dims)})
    if not axes:
        return x
    # ONNX Slice semantics: with a negative stride, an end below -size clamps to "before 0"
    ends = tuple(-shape_of(x)[a] - 1 for a in axes)
    return node.call(
        "strided_slice",
        x,
        begin=(-1,) * len(axes),
        end=ends,
        strides=(-1,) * len(axes),
        axes=tuple(axes),
    )


@converter("index_select")
def _index_select(node: AtenNode) -> Expr:
    """index_select(self, dim, index): the slices at ``index`` (1-D) along ``dim``."""
    x, index = node.tensor(0), node.tensor(2)
    if len(shape_of(index)) != 1 or index.type.dtype not in ("int32", "int64"):
        raise node.error(
            f"index_select takes a 1-D int32/int64 index, got {index.type.dtype} "
            f"of shape {shape_of(index)}"
        )
    return node.call("take", x, index, axis=node.axis(node.arg(1), len(shape_of(x)), "dim"))


@converter("im2col")
def _im2col(node: AtenNode) -> Expr:
    """F.unfold: (N, C, H, W) -> (N, C*kh*kw, L), one strided slice per kernel offset.

    Row ``c*kh*kw + i*kw + j`` holds input channel c at kernel offset (i, j) of
    every window, windows in row-major order (torch's layout).
    """
    x, batch, channels, height, width = _image(node, "unfold")
    if len(batch) != 1:
        raise node.error(f"unfold needs an (N, C, H, W) input, got {shape_of(x)}")
    # im2col(self, kernel_size, dilation, padding, stride)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = (
        pair(node.arg(i), d) for i, d in enumerate((1, 1, 0, 1), 1)
    )
    if ph or pw:
        x = node.call("nn.pad", x, suffix="/pad", pad_width=((0, 0), (0, 0), (ph, ph), (pw, pw)))
    rows = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    cols = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if rows < 1 or cols < 1:
        raise node.error(f"unfold's kernel {kh}x{kw} does not fit the {height}x{width} input")
    offsets = []
    for i in range(kh):
        for j in range(kw):
            begin = (i * dh, j * dw)
            end = (begin[0] + (rows - 1) * sh + 1, begin[1] + (cols - 1) * sw + 1)
            window = node.call(
                "strided_slice",
                x,
                suffix=f"/offset{i}_{j}",
                begin=begin,
                end=end,
                strides=(sh, sw),
                axes=(2, 3),
            )
            offsets.append(
                node.call("expand_dims", window, suffix=f"/offset{i}_{j}/axis", axes=(2,))
            )
    stacked = node.call("concatenate", *offsets, suffix="/stack", axis=2)
    return node.call("reshape", stacked, newshape=(batch[0], channels * kh * kw, rows * cols))


@converter("unfold")
def _unfold(node: AtenNode) -> Expr:
    """Tensor.unfold(dim, size, step): windows along ``dim``, each as a new last axis.

    One ``take`` with an (n, size) index table gives (..., n, size, ...); a
    transpose moves the window axis last (HaloNet-style local attention).
    """
    x = node.tensor(0)
    shape = shape_of(x)
    rank = max(len(shape), 1)
    axis = node.axis(node.arg(1), rank, "dimension")
    size, step = int(node.arg(2)), int(node.arg(3))
    length = shape[axis] if shape else 1
    if size < 1 or step < 1 or size > length:
        raise node.error(f"unfold of size {size}, step {step} does not fit axis {axis} ({length})")
    count = (length - size) // step + 1
    table = np.arange(count)[:, None] * step + np.arange(size)[None, :]
    windows = node.call("take", x, const(table.astype("int64")), suffix="/windows", axis=axis)
    order = (*range(axis + 1), *range(axis + 2, len(shape) + 1), axis + 1)
    return node.call("transpose", windows, axes=order)


@converter("gather")
def _gather(node: AtenNode) -> Expr:
    """gather(self, dim, index): out[i][j][k] = self[i][index[i][j][k]][k] for dim=1."""
    x, index = node.tensor(0), node.tensor(2)
    shape, picked = shape_of(x), shape_of(index)
    if len(picked) != len(shape) or index.type.dtype not in ("int32", "int64"):
        raise node.error(
            f"gather takes an int32/int64 index of the input's rank {len(shape)}, got "
            f"{index.type.dtype} of shape {picked}"
        )
    return gather_along(node, x, node.axis(node.arg(1), len(shape), "dim"), index, "")


def gather_along(node: AtenNode, x: Expr, axis: int, index: Expr, suffix: str) -> Expr:
    """torch.gather as one ``take``: flat positions from ``index`` and a constant grid.

    The flat position of each picked element is ``index * stride(axis)`` plus the
    other coordinates times their strides; ``index`` may be computed (an argmax).
    """
    shape, picked = shape_of(x), shape_of(index)
    if any(p > s for k, (p, s) in enumerate(zip(picked, shape)) if k != axis):
        raise node.error(f"gather index shape {picked} exceeds the input shape {shape}")
    strides = np.cumprod((1, *shape[::-1][:-1]))[::-1]
    grid = sum(
        np.arange(p).reshape([-1 if k == i else 1 for k in range(len(picked))]) * strides[i]
        for i, p in enumerate(picked)
        if i != axis
    )
    index = node.call("cast", index, suffix=f"{suffix}/int64", dtype="int64")
    wrap = const(np.int64(shape[axis]))
    wrapped = node.call("mod", index, wrap, suffix=f"{suffix}/wrap", fmod=False)
    flat = node.call("multiply", wrapped, const(np.int64(strides[axis])), suffix=f"{suffix}/scaled")
    grid = const(np.broadcast_to(grid, picked).astype("int64"), name=f"{node.name}{suffix}/grid")
    flat = node.call("add", flat, grid, suffix=f"{suffix}/position")
    data = node.call("reshape", x, suffix=f"{suffix}/flat", newshape=(-1,))
    return node.call("take", data, flat, suffix=suffix, axis=0)
