"""ONNX GridSample, reference and compiled, against onnxruntime on random data and
grids reaching past the input (so every padding mode matters): each method with each
padding mode, align_corners both ways (random per run); compiled for a subset."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from ember.frontend import from_onnx
from ember.frontend.onnx import UnsupportedFeatureError
from ember.graph import interpret
from ember.testing.conformance import compile_and_load
from tests.frontend.onnx_testlib import make_model, run_onnxruntime

# compiled: each method and each padding mode once; cubic with reflection (16 taps,
# each mirrored: large expressions, ~12 s to build) only under -m slow
COMPILED = {("nearest", "border"), ("linear", "reflection"), ("cubic", "zeros")}
CASES = [(m, p) for m in ("nearest", "linear", "cubic") for p in ("zeros", "border", "reflection")]


@pytest.mark.parametrize(("mode", "padding_mode"), CASES)
def test_grid_sample(mode: str, padding_mode: str) -> None:
    _check(mode, padding_mode, compiled=(mode, padding_mode) in COMPILED)


@pytest.mark.slow
def test_grid_sample_cubic_reflection_compiled() -> None:
    _check("cubic", "reflection", compiled=True)


def _check(mode: str, padding_mode: str, compiled: bool) -> None:
    rng = np.random.default_rng()
    align = int(rng.integers(0, 2))
    x = rng.standard_normal((2, 3, 5, 7)).astype("float32")
    grid = rng.uniform(-1.6, 1.6, (2, 4, 6, 2)).astype("float32")
    nodes = [
        helper.make_node(
            "GridSample",
            ["x", "grid"],
            ["y"],
            mode=mode,
            padding_mode=padding_mode,
            align_corners=align,
        )
    ]
    inputs = {"x": ((2, 3, 5, 7), "float32"), "grid": ((2, 4, 6, 2), "float32")}
    model = make_model(nodes, inputs, ["y"], opset=20)
    feeds = {"x": x, "grid": grid}
    if (mode, padding_mode) == ("cubic", "border"):
        # onnxruntime clamps only the taps, not the sample point, near the border (off by
        # up to 0.2 here); ember follows the ONNX specification's reference
        (want,) = ReferenceEvaluator(model).run(None, feeds)
    else:
        (want,) = run_onnxruntime(model, feeds)
    mod, params = from_onnx(model)
    results = [interpret(mod, params, feeds)[0]]
    if compiled:
        results.append(compile_and_load(mod, params)(feeds)[0])
    for got in results:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"align={align}")


def test_volumetric_grid_sample_is_a_stated_limitation() -> None:
    nodes = [helper.make_node("GridSample", ["x", "grid"], ["y"])]
    inputs = {"x": ((1, 1, 2, 3, 4), "float32"), "grid": ((1, 2, 2, 2, 3), "float32")}
    with pytest.raises(UnsupportedFeatureError, match="3-D GridSample"):
        from_onnx(make_model(nodes, inputs, ["y"], opset=20))
