"""PyTorch's 1-D pools and resizes as their 2-D forms over a height of 1.

    max_pool1d(x (N, C, L), k)              -> squeeze(max_pool2d(x (N, C, 1, L), (1, k)))
    upsample_linear1d(x, size=2L)           -> squeeze(resize2d linear to (1, 2L))
    upsample_nearest1d(x, scale_factor=2)   -> squeeze(resize2d nearest to (1, 2L))

Audio and text CNNs (and ``nn.Upsample`` on sequences) use them; conv1d is
lifted the same way in ops_nn.py. The height axis has kernel 1, stride 1 and
no padding, so it changes nothing.
"""

from __future__ import annotations

from typing import Any

from ember.frontend.common import shape_of
from ember.frontend.pytorch import ops_nn
from ember.frontend.pytorch.context import AtenNode, converter
from ember.graph.ir import Expr


def _single(value: Any, default: int) -> int:
    if value is None:
        return default
    values = [int(value)] if isinstance(value, int) else [int(v) for v in value]
    return values[0] if values else default


def _lifted(node: AtenNode, what: str) -> Expr:
    x = node.tensor(0)
    if len(shape_of(x)) != 3:
        raise node.error(f"{what} takes an (N, C, L) input here, got shape {shape_of(x)}")
    return node.call("expand_dims", x, suffix="/as_2d", axes=(2,))


def _lowered(node: AtenNode, out: Expr) -> Expr:
    return node.call("squeeze", out, suffix="/as_1d", axes=(2,))


@converter("max_pool1d", "max_pool1d_with_indices")
def _max_pool1d(node: AtenNode) -> Any:
    """max_pool1d(self, kernel_size, stride=[], padding=0, dilation=1, ceil_mode=False)."""
    x = _lifted(node, "max_pool1d")
    kernel = _single(node.arg(1), 1)
    stride = _single(node.arg(2), 0) or kernel  # an empty stride means the kernel size
    args = [x, [1, kernel], [1, stride], [0, _single(node.arg(3), 0)]]
    args += [[1, _single(node.arg(4), 1)], bool(node.arg(5, False))]
    out = _lowered(node, ops_nn._max_pool2d(node.with_args(args)))
    return (out, None) if node.op.endswith("with_indices") else out


@converter("avg_pool1d")
def _avg_pool1d(node: AtenNode) -> Expr:
    """avg_pool1d(self, kernel_size, stride=[], padding=0, ceil_mode=False, count_include_pad)."""
    x = _lifted(node, "avg_pool1d")
    kernel = _single(node.arg(1), 1)
    stride = _single(node.arg(2), 0) or kernel
    args = [x, [1, kernel], [1, stride], [0, _single(node.arg(3), 0)]]
    args += [bool(node.arg(4, False)), bool(node.arg(5, True)), None]
    return _lowered(node, ops_nn._avg_pool2d(node.with_args(args)))


def _resize1d(node: AtenNode, method: str, size: Any, align: bool, scale: Any) -> Expr:
    x = _lifted(node, f"upsample ({method})")
    size2d = None if size is None else [1, _single(size, 0)]
    scales = None if scale is None else [1.0, float(scale)]
    lifted = node.with_args([x, *node.args[1:]])
    return _lowered(node, ops_nn._resize(lifted, method, size2d, align, scales))


def _scale(value: Any) -> Any:
    """The one scale factor of a 1-D resize (given as a number or a one-element list)."""
    if value is None or isinstance(value, int | float):
        return value
    values = list(value)
    return values[0] if values else None


@converter("upsample_linear1d")
def _upsample_linear1d(node: AtenNode) -> Expr:
    # .vec(input, output_size, align_corners, scale_factors); default (self, size, align, scale)
    return _resize1d(node, "linear", node.arg(1), bool(node.arg(2)), _scale(node.arg(3)))


@converter("upsample_nearest1d")
def _upsample_nearest1d(node: AtenNode) -> Expr:
    # .vec(input, output_size, scale_factors); default (self, output_size, scales)
    return _resize1d(node, "nearest", node.arg(1), False, _scale(node.arg(2)))
