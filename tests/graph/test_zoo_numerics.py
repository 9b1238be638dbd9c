"""End to end on the model zoo: ONNX file -> from_onnx -> optimize -> interpret vs onnxruntime.

Each zoo model is written to a real .onnx file, imported with
``ember.frontend.from_onnx`` and run by the numpy reference executor before and
after the default graph passes (which fold every batch norm into its conv);
all three must agree with onnxruntime on the same file, on a fresh random input
each run (its seed is printed on failure). The small variants run by default;
the full-size ones are ``slow``.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

import ember
from ember.graph.ir import Call, Module
from ember.graph.passes import optimize
from ember.graph.visitor import post_order
from ember.testing import zoo

ort = pytest.importorskip("onnxruntime")

MODELS = zoo.list_models()
RTOL = 1e-4  # float32 through 20-100 layers of sums: ~1e-6 observed, 1e-4 allowed
ATOL_FRACTION = 1e-5  # of the largest |output|: logits near zero carry absolute error only


def op_counts(mod: Module) -> Counter[str]:
    return Counter(
        node.op.name
        for node in post_order(mod.main.body)
        if isinstance(node, Call) and hasattr(node.op, "name")
    )


def assert_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    atol = ATOL_FRACTION * float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol, err_msg=what)


def check_model(name: str, options: dict, tmp_path) -> dict[str, float]:
    """Run the whole pipeline on one zoo model; returns seconds per stage."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    path = tmp_path / f"{name}.onnx"
    zoo.to_onnx(name, path, **options)
    seed = int(np.random.SeedSequence().entropy % 2**32)  # fresh each run, reported on failure
    x = zoo.random_input(name, seed=seed, **options)
    what = f"{name} {options} input seed {seed}"
    seconds["export"] = time.perf_counter() - start

    start = time.perf_counter()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(["output"], {"data": x})[0]
    seconds["onnxruntime"] = time.perf_counter() - start

    start = time.perf_counter()
    mod, params = ember.frontend.from_onnx(str(path), shape={"data": x.shape})
    seconds["import"] = time.perf_counter() - start
    start = time.perf_counter()
    (before,) = ember.graph.interpret(mod, params, {"data": x})
    seconds["interpret"] = time.perf_counter() - start
    assert before.shape == expected.shape == (options.get("batch", 1), options["num_classes"])
    assert_close(before, expected, f"imported graph vs onnxruntime: {what}")

    start = time.perf_counter()
    optimized = optimize(mod, params)
    seconds["optimize"] = time.perf_counter() - start
    start = time.perf_counter()
    (after,) = ember.graph.interpret(optimized, {}, {"data": x})
    seconds["interpret optimized"] = time.perf_counter() - start
    assert_close(after, expected, f"optimized graph vs onnxruntime: {what}")
    assert_close(after, before, f"optimized vs imported graph: {what}")

    # The passes really changed the graph: no batch norm is left. One after a conv is
    # folded into it (one op less); others (DenseNet's, after a concat) may become a
    # multiply and an add (one op more).
    counts_before, counts_after = op_counts(mod), op_counts(optimized)
    assert counts_after["nn.batch_norm"] == 0, f"{name}: batch norms left after optimize"
    after_conv = sum(
        1
        for node in post_order(mod.main.body)
        if isinstance(node, Call)
        and getattr(node.op, "name", "") == "nn.batch_norm"
        and isinstance(node.args[0], Call)
        and getattr(node.args[0].op, "name", "") == "nn.conv2d"
    )
    elsewhere = counts_before["nn.batch_norm"] - after_conv
    total_before, total_after = sum(counts_before.values()), sum(counts_after.values())
    assert total_after <= total_before - after_conv + elsewhere, (counts_before, counts_after)
    return seconds


@pytest.mark.parametrize("name", MODELS)
def test_small_model_end_to_end(name: str, tmp_path) -> None:
    check_model(name, zoo.SMALL[name], tmp_path)


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "inception_v3"])
def test_batched_small_model_end_to_end(name: str, tmp_path) -> None:
    check_model(name, {**zoo.SMALL[name], "batch": 3}, tmp_path)


@pytest.mark.parametrize(
    ("name", "options"),
    [  # odd sizes: ceil-mode pools with a partial last window, VGG's adaptive-pool matrices
        ("squeezenet1_0", {"image_size": 21, "width_multiplier": 0.25, "num_classes": 5}),
        ("squeezenet1_1", {"image_size": 39, "width_multiplier": 0.25, "num_classes": 5}),
        ("vgg11", {"image_size": 80, "width_multiplier": 0.125, "num_classes": 5}),
        ("densenet121", {"image_size": 29, "width_multiplier": 0.25, "num_classes": 5}),
        ("resnet18", {"image_size": 7, "width_multiplier": 0.25, "num_classes": 5}),
        # odd maps into 5x5 stride-2 depthwise convs; ConvNeXt's patchify drops a remainder
        ("efficientnet_b0", {"image_size": 35, "width_multiplier": 0.25, "num_classes": 5}),
        ("convnext_tiny", {"image_size": 45, "width_multiplier": 0.125, "num_classes": 5}),
    ],
)
def test_odd_image_sizes_end_to_end(name: str, options: dict, tmp_path) -> None:
    check_model(name, options, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_full_size_model_end_to_end(name: str, tmp_path) -> None:
    seconds = check_model(name, {"num_classes": 1000}, tmp_path)
    print(name, {k: round(v, 2) for k, v in seconds.items()})


def test_get_imports_through_from_onnx() -> None:
    options = zoo.SMALL["mobilenet_v2"]
    mod, params = zoo.get("mobilenet_v2", **options)
    data = mod.main.params[0]
    assert data.name == "data" and data.type.shape == zoo.input_shape("mobilenet_v2", **options)
    assert "features.0.1.running_var" in params  # the weights keep their ONNX names
    x = zoo.random_input("mobilenet_v2", seed=5, **options)
    model = zoo.to_onnx("mobilenet_v2", **options)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = ember.graph.interpret(mod, params, {"data": x})
    assert_close(got, session.run(["output"], {"data": x})[0], "zoo.get(mobilenet_v2)")
    with pytest.raises(zoo.ZooError, match="unknown zoo model"):
        zoo.get("mobilenet_v4")
