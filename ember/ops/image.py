"""``image.resize2d``: ONNX Resize over the H and W axes of NCHW data; ``image.grid_sample``:
ONNX GridSample (sampling NCHW data at the (x, y) points of a grid, normalized to [-1, 1]).

Each output coordinate maps back to the input with the
``coordinate_transformation_mode``; ``nearest`` rounds it with ``nearest_mode``,
``linear`` and ``cubic`` interpolate (separably, H then W) with ONNX's rules. With
``tf_crop_and_resize`` the output samples the ``roi`` box of the input and an output
pixel whose coordinate falls outside the input gets ``extrapolation_value``::

    >>> from ember.graph.ir import Var, TensorType

    >>> from ember.ops import call
    >>> x = Var("x", TensorType((1, 3, 8, 8)))
    >>> call("image.resize2d", x, size=(16, 16), method="linear").type.shape
    (1, 3, 16, 16)

The reference builds one (out, in) interpolation matrix per axis (or an index
vector for ``nearest``), so it is exact and vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ember.errors import AttrError, ShapeError
from ember.graph.ir import Call, TensorType
from ember.ops._shape import (
    FLOAT_DTYPES,
    NUMBER_DTYPES,
    check_dtype,
    check_rank,
    choice,
    int_tuple,
    number,
    set_attr,
    tensor,
)
from ember.ops.registry import OpPattern, register_op

METHODS = ("nearest", "linear", "cubic")
COORDINATE_MODES = (
    "half_pixel",
    "asymmetric",
    "align_corners",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "half_pixel_symmetric",
    "tf_crop_and_resize",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@dataclass(frozen=True)
class Resize2DAttrs:
    """Output ``size`` (out_h, out_w) and ONNX Resize's interpolation options.

    ``scales`` (h, w) is the scale ONNX used when a model gave scales rather than
    sizes; the coordinate transform divides by it. ``None`` means ``out / in``.
    ``roi`` (start_h, start_w, end_h, end_w), as fractions of the input (ONNX's layout),
    is the box ``tf_crop_and_resize`` samples (``None``: the whole input); output
    pixels mapped outside the input get ``extrapolation_value``.
    """

    size: tuple[int, int]
    method: str = "nearest"
    coordinate_transformation_mode: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_coeff_a: float = -0.75
    exclude_outside: bool = False
    scales: tuple[float, float] | None = None
    roi: tuple[float, float, float, float] | None = None
    extrapolation_value: float = 0.0

    def __post_init__(self) -> None:
        set_attr(self, "size", int_tuple("size", self.size, 2, min_value=1))
        choice("method", self.method, METHODS)
        choice(
            "coordinate_transformation_mode", self.coordinate_transformation_mode, COORDINATE_MODES
        )
        choice("nearest_mode", self.nearest_mode, NEAREST_MODES)
        set_attr(self, "cubic_coeff_a", number("cubic_coeff_a", self.cubic_coeff_a))
        if not isinstance(self.exclude_outside, bool | np.bool_):
            raise AttrError(
                f"attribute exclude_outside must be a bool, got {self.exclude_outside!r}"
            )
        set_attr(self, "exclude_outside", bool(self.exclude_outside))
        if self.scales is not None:
            try:
                scales = tuple(number("scales", s, positive=True) for s in self.scales)
            except TypeError:
                raise AttrError(
                    f"attribute scales must be two numbers, got {self.scales!r}"
                ) from None
            if len(scales) != 2:
                raise AttrError(f"attribute scales must be two numbers (h, w), got {self.scales!r}")
            set_attr(self, "scales", scales)
        if self.roi is not None:
            try:
                roi = tuple(number("roi", v) for v in self.roi)
            except TypeError:
                raise AttrError(f"attribute roi must be four numbers, got {self.roi!r}") from None
            if len(roi) != 4:
                raise AttrError(
                    f"attribute roi must be four numbers (start_h, start_w, end_h, end_w), "
                    f"got {self.roi!r}"
                )
            set_attr(self, "roi", roi)
        set_attr(
            self, "extrapolation_value", number("extrapolation_value", self.extrapolation_value)
        )

    def axis_roi(self, axis: int) -> tuple[float, float]:
        """(start, end) of the crop box along H (``axis`` 0) or W (1); (0, 1) when none."""
        if self.roi is None or self.coordinate_transformation_mode != "tf_crop_and_resize":
            return (0.0, 1.0)
        return (self.roi[axis], self.roi[axis + 2])


resize2d = register_op("image.resize2d", Resize2DAttrs, OpPattern.INJECTIVE, num_inputs=1)


@resize2d.type_rule
def _resize2d_type(types: list, attrs: Resize2DAttrs) -> TensorType:
    data = tensor(types, 0, "data")
    check_rank(data, "data (N, C, H, W)", 4)
    check_dtype(data, "data", NUMBER_DTYPES)
    return TensorType((*data.shape[:2], *attrs.size), data.dtype)


def source_coordinates(
    out_size: int,
    in_size: int,
    scale: float,
    mode: str,
    roi: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Input coordinate (float64) of each output index under ONNX ``mode``; ``roi`` is
    the (start, end) crop of ``tf_crop_and_resize``."""
    x = np.arange(out_size, dtype=np.float64)
    if scale == 1.0 and out_size == in_size and roi == (0.0, 1.0):
        # An axis that is not resized is copied (onnxruntime and the ONNX reference skip it),
        # which differs from the formula only for tf_half_pixel_for_nn.
        return x
    length = in_size * scale  # ONNX's unrounded output length
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_size > 1:
            coord = x * (end - start) * (in_size - 1) / (length - 1)
        else:
            coord = np.full_like(x, (end - start) * (in_size - 1) / 2)
        return coord + start * (in_size - 1)
    if mode == "half_pixel_symmetric":
        # half_pixel about the centre: the rounding of the output length is split
        # between both ends instead of falling at the far end
        offset = in_size / 2 * (1 - out_size / length)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    if mode == "align_corners":
        # ONNX divides by the unrounded output length (in * scale) when scales were given.
        return x * (in_size - 1) / (length - 1) if out_size > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    return (x + 0.5) / scale  # tf_half_pixel_for_nn


def _nearest_index(coord: np.ndarray, mode: str, in_size: int) -> np.ndarray:
    if mode == "round_prefer_floor":
        idx = np.ceil(coord - 0.5)
    elif mode == "round_prefer_ceil":
        idx = np.floor(coord + 0.5)
    elif mode == "floor":
        idx = np.floor(coord)
    else:
        idx = np.ceil(coord)
    return np.clip(idx, 0, in_size - 1).astype(np.int64)


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys cubic weights of the 4 neighbours at offsets -1, 0, 1, 2 for fraction ``t``."""

    def near(d: np.ndarray) -> np.ndarray:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def interpolation_matrix(
    out_size: int, in_size: int, scale: float, attrs: Resize2DAttrs, axis: int
) -> np.ndarray:
    """(out_size, in_size) float64 weights of linear or cubic resizing along one axis
    (``axis`` 0: H, 1: W)."""
    coord = source_coordinates(
        out_size, in_size, scale, attrs.coordinate_transformation_mode, attrs.axis_roi(axis)
    )
    matrix = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    if attrs.method == "linear":
        coord = np.clip(coord, 0, in_size - 1)
        low = np.floor(coord).astype(np.int64)
        high = np.minimum(low + 1, in_size - 1)
        frac = coord - low
        np.add.at(matrix, (rows, low), 1 - frac)
        np.add.at(matrix, (rows, high), frac)
        return matrix
    base = np.floor(coord).astype(np.int64)
    weights = _cubic_weights(coord - base, attrs.cubic_coeff_a)
    index = base[:, None] + np.arange(-1, 3)[None, :]
    inside = (index >= 0) & (index < in_size)
    if attrs.exclude_outside:
        weights = np.where(inside, weights, 0.0)
        weights = weights / weights.sum(axis=1, keepdims=True)
    np.add.at(matrix, (rows[:, None], np.clip(index, 0, in_size - 1)), weights)
    return matrix


@resize2d.reference
def _resize2d_ref(inputs: list[np.ndarray], attrs: Resize2DAttrs) -> np.ndarray:
    x = np.asarray(inputs[0])
    in_h, in_w = x.shape[2:]
    out_h, out_w = attrs.size
    scales = attrs.scales or (out_h / in_h, out_w / in_w)
    mode = attrs.coordinate_transformation_mode
    coord_h = source_coordinates(out_h, in_h, scales[0], mode, attrs.axis_roi(0))
    coord_w = source_coordinates(out_w, in_w, scales[1], mode, attrs.axis_roi(1))
    if attrs.method == "nearest":
        rows = _nearest_index(coord_h, attrs.nearest_mode, in_h)
        cols = _nearest_index(coord_w, attrs.nearest_mode, in_w)
        out = x[:, :, rows[:, None], cols[None, :]]
    else:
        mat_h = interpolation_matrix(out_h, in_h, scales[0], attrs, 0)
        mat_w = interpolation_matrix(out_w, in_w, scales[1], attrs, 1)
        out = np.matmul(np.matmul(mat_h, x.astype(np.float64)), mat_w.T)
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            out = np.clip(np.round(out), info.min, info.max)
    if mode == "tf_crop_and_resize":
        # TF CropAndResize: a pixel sampled outside the input on either axis
        outside_h = (coord_h < 0) | (coord_h > in_h - 1)
        outside_w = (coord_w < 0) | (coord_w > in_w - 1)
        outside = outside_h[:, None] | outside_w[None, :]
        out = np.where(outside, attrs.extrapolation_value, out)
    return out.astype(x.dtype)


# ----------------------------------------------------------------------------- grid_sample

PADDING_MODES = ("zeros", "border", "reflection")


@dataclass(frozen=True)
class GridSampleAttrs:
    """ONNX GridSample: ``method`` nearest / linear / cubic (Keys, a = -0.75),
    ``padding_mode`` for samples outside the input (zeros, border, reflection) and
    ``align_corners`` (grid values -1 and 1 are the centres of the corner pixels,
    else their outer edges)."""

    method: str = "linear"
    padding_mode: str = "zeros"
    align_corners: bool = False

    def __post_init__(self) -> None:
        choice("method", self.method, METHODS)
        choice("padding_mode", self.padding_mode, PADDING_MODES)
        if not isinstance(self.align_corners, bool | np.bool_):
            raise AttrError(f"attribute align_corners must be a bool, got {self.align_corners!r}")
        set_attr(self, "align_corners", bool(self.align_corners))


grid_sample = register_op("image.grid_sample", GridSampleAttrs, OpPattern.INJECTIVE, num_inputs=2)


@grid_sample.type_rule
def _grid_sample_type(types: list, attrs: GridSampleAttrs) -> TensorType:
    data, grid = tensor(types, 0, "data"), tensor(types, 1, "grid")
    check_rank(data, "data (N, C, H, W)", 4)
    check_rank(grid, "grid (N, H_out, W_out, 2)", 4)
    check_dtype(data, "data", FLOAT_DTYPES)
    check_dtype(grid, "grid", FLOAT_DTYPES)
    if grid.shape[0] != data.shape[0] or grid.shape[3] != 2:
        raise ShapeError(
            f"grid {list(grid.shape)} must be (N, H_out, W_out, 2) with data's N = {data.shape[0]}"
        )
    return TensorType((*data.shape[:2], *grid.shape[1:3]), data.dtype)


@grid_sample.flop_rule
def _grid_sample_flops(call: Call) -> int:
    taps = {"nearest": 0, "linear": 4, "cubic": 16}[call.attrs.method]
    return call.type.size * 2 * taps


def sample_bounds(size: int, align_corners: bool) -> tuple[float, float]:
    """The coordinate range inside the input along an axis of ``size`` pixels."""
    return (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)


def reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Mirror ``x`` at ``low`` and ``high`` until it lies between them (ONNX's rule)."""
    span = high - low
    if span <= 0:
        return np.full_like(x, low)
    below, above = low - x, x - high
    n_below, n_above = np.floor(below / span), np.floor(above / span)
    r_below, r_above = below - n_below * span, above - n_above * span
    from_below = np.where(n_below % 2 == 0, low + r_below, high - r_below)
    from_above = np.where(n_above % 2 == 0, high - r_above, low + r_above)
    return np.where(x < low, from_below, np.where(x > high, from_above, x))


def _grid_taps(g: np.ndarray, size: int, attrs: GridSampleAttrs) -> list:
    """(index, weight, valid) of each tap along one axis for normalized coordinates ``g``."""
    if attrs.align_corners:
        x = (g + 1) / 2 * (size - 1)
    else:
        x = ((g + 1) * size - 1) / 2
    if attrs.method == "nearest":
        x = np.rint(x)  # half to even, as ONNX
    low, high = sample_bounds(size, attrs.align_corners)
    outside = (x < low) | (x > high)
    if attrs.padding_mode == "border":
        x = np.where(outside, np.clip(x, 0, size - 1), x)
    elif attrs.padding_mode == "reflection":
        x = np.where(outside, reflect(x, low, high), x)
    if attrs.method == "nearest":
        taps = [(x.astype(np.int64), np.ones_like(x))]
    else:
        base = np.floor(x)
        t = x - base
        base = base.astype(np.int64)
        if attrs.method == "linear":
            taps = [(base, 1 - t), (base + 1, t)]
        else:
            weights = _cubic_weights(t, -0.75)
            taps = [(base + k - 1, weights[..., k]) for k in range(4)]
    out = []
    for index, weight in taps:
        valid = (index >= 0) & (index < size)
        if attrs.padding_mode == "border":
            index = np.clip(index, 0, size - 1)
        elif attrs.padding_mode == "reflection":
            index = reflect(index.astype(np.float64), low, high).astype(np.int64)
        out.append((np.clip(index, 0, size - 1), weight, valid | (attrs.padding_mode != "zeros")))
    return out


@grid_sample.reference
def _grid_sample_ref(inputs: list[np.ndarray], attrs: GridSampleAttrs) -> np.ndarray:
    x, grid = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.float64)
    n, c, h, w = x.shape
    out = np.zeros((n, c, *grid.shape[1:3]))
    batch = np.arange(n)[:, None, None]
    for iy, wy, vy in _grid_taps(grid[..., 1], h, attrs):
        for ix, wx, vx in _grid_taps(grid[..., 0], w, attrs):
            pixels = x[batch, :, iy, ix].astype(np.float64)  # (N, H_out, W_out, C)
            weight = np.where(vy & vx, wy * wx, 0.0)[..., None]
            out += np.moveaxis(pixels * weight, -1, 1)
    return out.astype(x.dtype)
