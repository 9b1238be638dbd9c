"""ONNX Resize's crop and symmetric modes, reference and compiled, against onnxruntime.

``tf_crop_and_resize`` samples the ``roi`` box of the input (fractions of H and W) and
gives ``extrapolation_value`` where an output pixel falls outside the input;
``half_pixel_symmetric`` is half_pixel about the centre. The conformance cases hold
one 4x4 input each; these run random inputs, boxes reaching outside the input, every
interpolation method and a 1-pixel output axis.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ember.errors import EmberError
from ember.frontend import from_onnx
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

RTOL, ATOL = 1e-5, 1e-5


def _resize_model(roi: list[float] | None, sizes=None, scales=None, opset=19, **attrs):
    inits = {"roi": np.array(roi if roi is not None else [], "float32")}
    inputs = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.array(scales, "float32")
        inputs.append("scales")
    else:
        inits["sizes"] = np.array(sizes, "int64")
        inputs += ["", "sizes"]
    nodes = [helper.make_node("Resize", inputs, ["y"], **attrs)]
    return make_model(nodes, {"x": ((2, 3, 7, 9), "float32")}, ["y"], inits, opset=opset)


def _check_both_paths(model) -> None:
    """Reference and compiled on one fresh random input, each against onnxruntime."""
    x = np.random.default_rng().standard_normal((2, 3, 7, 9)).astype("float32")
    (want,) = run_onnxruntime(model, {"x": x})
    mod, params = from_onnx(model)
    (ours,) = interpret(mod, params, {"x": x})
    np.testing.assert_allclose(ours, want, rtol=RTOL, atol=ATOL)
    (compiled,) = compile_and_load(mod, params)({"x": x})
    np.testing.assert_allclose(compiled, want, rtol=RTOL, atol=ATOL)


CROP = "tf_crop_and_resize"
CASES = {
    # a box inside the input, upsampled
    "linear-inside": (
        [0, 0, 0.2, 0.1, 1, 1, 0.8, 0.7],
        [2, 3, 11, 6],
        {"mode": "linear"},
    ),
    # a box reaching past the edges: those pixels get the extrapolation value (boxes
    # whose sample lands on an edge exactly, e.g. H from -0.3 on 7 rows giving -1.8 +
    # 1.8, are left out: whether rounding puts it inside depends on the arithmetic)
    "linear-outside": (
        [0, 0, -0.25, 0.5, 1, 1, 0.9, 1.6],
        [2, 3, 5, 8],
        {"mode": "linear", "extrapolation_value": 10.0},
    ),
    "nearest-outside": (
        [0, 0, 0.4, -0.2, 1, 1, 1.3, 0.6],
        [2, 3, 6, 4],
        {"mode": "nearest", "extrapolation_value": -2.5},
    ),
    "cubic-inside": (
        [0, 0, 0.1, 0.3, 1, 1, 0.9, 0.8],
        [2, 3, 4, 10],
        {"mode": "cubic"},
    ),
    # a one-pixel output axis samples the box's centre
    "linear-one-row": (
        [0, 0, 0.25, 0.0, 1, 1, 0.75, 1.0],
        [2, 3, 1, 5],
        {"mode": "linear"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tf_crop_and_resize(name: str) -> None:
    roi, sizes, attrs = CASES[name]
    _check_both_paths(_resize_model(roi, sizes, coordinate_transformation_mode=CROP, **attrs))


def test_tf_crop_and_resize_with_axes() -> None:
    """``axes`` lists the resized axes; the roi then holds starts and ends for those only
    (here W first, so the box's W values come before its H values)."""
    model = _resize_model(
        [0.6, 0.1, 0.9, 0.7],
        [4, 6],
        axes=[3, 2],
        mode="linear",
        coordinate_transformation_mode=CROP,
    )
    _check_both_paths(model)


@pytest.mark.parametrize("scales", [[1, 1, 1.7, 0.6], [1, 1, 0.45, 2.3]])
def test_half_pixel_symmetric(scales: list[float]) -> None:
    model = _resize_model(
        None, scales=scales, mode="linear", coordinate_transformation_mode="half_pixel_symmetric"
    )
    _check_both_paths(model)


def test_crop_of_the_channel_axis_is_refused() -> None:
    model = _resize_model(
        [0, 0.5, 0, 0, 1, 1, 1, 1],
        [2, 3, 7, 9],
        mode="linear",
        coordinate_transformation_mode=CROP,
    )
    with pytest.raises(EmberError, match=r"Resize.*roi crops axes \[1\].*H and W"):
        from_onnx(model)
