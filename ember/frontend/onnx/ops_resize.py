"""ONNX converters: Resize and Upsample, as ``image.resize2d`` over the H and W axes.

    Resize(x, sizes=[1, 3, 64, 64], mode="linear")   ->  image.resize2d(x, size=(64, 64), ...)
    Resize(..., coordinate_transformation_mode="tf_crop_and_resize", roi=r)
                                                      ->  image.resize2d(..., roi=(h0, w0, h1, w1))

Scales, sizes and the roi decide the output and must be constants.
"""

from __future__ import annotations

import math

import numpy as np

from ember.frontend.common import int_list
from ember.frontend.onnx.context import OnnxNode, converter
from ember.graph.ir import Expr
from ember.ops.image import COORDINATE_MODES


@converter("Resize", min_version=10)
def _resize(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    mode = node.attr("mode", "nearest")
    if node.version == 10:
        scales_value, sizes_value = node.const(1, "scales"), None
        coordinate_mode, nearest_mode = "asymmetric", "floor"
    else:
        scales_value = node.maybe_const(2, "scales")
        sizes_value = node.maybe_const(3, "sizes")
        coordinate_mode = node.attr("coordinate_transformation_mode", "half_pixel")
        nearest_mode = node.attr("nearest_mode", "round_prefer_floor")
    if coordinate_mode not in COORDINATE_MODES:
        raise node.unsupported(
            f"coordinate_transformation_mode={coordinate_mode!r} is not supported"
        )
    node.reject_attr("antialias", 0, "antialiased resizing is not implemented")
    rank = len(shape)
    axes = [node.axis(a, rank) for a in node.attr("axes", range(rank))]
    scales = [1.0] * rank
    out = list(shape)
    given_scales = scales_value is not None and scales_value.size > 0
    if sizes_value is not None and sizes_value.size > 0:
        sizes = int_list(sizes_value)
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for a, s in zip(axes, sizes):
                out[a] = s
        else:
            ratios = [s / shape[a] for a, s in zip(axes, sizes)]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                scales[a] = scale
                out[a] = int(scale * shape[a] + 0.5)
            given_scales = True
    elif given_scales:
        for a, s in zip(axes, np.asarray(scales_value, dtype=np.float64).reshape(-1)):
            scales[a] = float(s)
            out[a] = int(math.floor(shape[a] * float(s)))
    else:
        raise node.error("neither scales nor sizes is given")
    roi = None
    if coordinate_mode == "tf_crop_and_resize":
        roi = _crop_box(node, rank, axes)
    return _resize2d(
        node,
        node.input(0),
        shape,
        out,
        scales,
        given_scales,
        mode,
        coordinate_mode,
        nearest_mode,
        roi,
    )


def _crop_box(node: OnnxNode, rank: int, axes: list[int]) -> tuple[float, float, float, float]:
    """Resize's ``roi`` input (starts then ends, one per axis of ``axes``) as ember's
    (start_h, start_w, end_h, end_w) crop box; other axes must not be cropped."""
    value = node.maybe_const(1, "roi")
    if value is None or value.size == 0:
        raise node.error(
            "coordinate_transformation_mode='tf_crop_and_resize' needs the roi input "
            "(the crop box: starts then ends, one per axis)"
        )
    flat = [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]
    if len(flat) != 2 * len(axes):
        raise node.error(
            f"roi has {len(flat)} values; it needs 2 per resized axis ({2 * len(axes)})"
        )
    starts, ends = [0.0] * rank, [1.0] * rank
    for k, a in enumerate(axes):
        starts[a], ends[a] = flat[k], flat[len(axes) + k]
    cropped = [a for a in range(rank) if (starts[a], ends[a]) != (0.0, 1.0)]
    if rank != 4 or any(a < 2 for a in cropped):
        raise node.unsupported(
            f"roi crops axes {cropped} of a rank-{rank} input; ember crops the H and W axes "
            "of NCHW tensors"
        )
    return (starts[2], starts[3], ends[2], ends[3])


@converter("Upsample", min_version=7)
def _upsample(node: OnnxNode) -> Expr:
    shape = node.shape(0)
    values = node.attr("scales") if node.version < 9 else node.const(1, "scales")
    scales = [float(s) for s in np.asarray(values).reshape(-1)]
    out = [int(math.floor(d * s)) for d, s in zip(shape, scales)]
    mode = node.attr("mode", "nearest")
    return _resize2d(
        node, node.input(0), shape, out, scales, True, mode, "asymmetric", "floor", None
    )


def _resize2d(
    node: OnnxNode,
    x: Expr,
    shape: tuple[int, ...],
    out: list[int],
    scales: list[float],
    given_scales: bool,
    mode: str,
    coordinate_mode: str,
    nearest_mode: str,
    roi: tuple[float, float, float, float] | None,
) -> Expr:
    if len(shape) != 4 or tuple(out[:2]) != tuple(shape[:2]):
        raise node.unsupported(
            f"resizing shape {list(shape)} to {out} is not supported; ember resizes the H and W "
            "axes of NCHW tensors"
        )
    cropped = roi is not None and roi != (0.0, 0.0, 1.0, 1.0)
    if tuple(out) == tuple(shape) and not given_scales and not cropped:
        return node.call("identity", x)
    if mode not in ("nearest", "linear", "cubic"):
        raise node.unsupported(f"mode={mode!r} is not supported")
    return node.call(
        "image.resize2d",
        x,
        size=(out[2], out[3]),
        method=mode,
        coordinate_transformation_mode=coordinate_mode,
        nearest_mode=nearest_mode,
        cubic_coeff_a=node.attr("cubic_coeff_a", -0.75),
        exclude_outside=bool(node.attr("exclude_outside", 0)),
        scales=(scales[2], scales[3]) if given_scales else None,
        roi=roi,
        extrapolation_value=node.attr("extrapolation_value", 0.0),
    )
