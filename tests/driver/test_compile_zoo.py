"""Every zoo model compiles from its ONNX file, and the artifact matches the reference
executor and onnxruntime (small variants in the default run, full size in slow tests)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.graph import interpret
from ember.testing import zoo

ort = pytest.importorskip("onnxruntime")


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))


def _check(name: str, tmp_path, **options) -> None:
    path = tmp_path / f"{name}.onnx"
    zoo.to_onnx(name, path, **options)
    shape = zoo.input_shape(name, **options)
    mod, params = ember.frontend.from_onnx(str(path), shape={"data": shape})
    artifact = ember.compile(mod, params, target="host").export(tmp_path / f"{name}.ember")
    model = ember.load(artifact)
    x = np.random.default_rng().standard_normal(shape).astype(np.float32)
    ours = model.run({"data": x})[0]
    reference = interpret(mod, params, {"data": x})[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"data": x})[0]
    assert ours.shape == theirs.shape
    assert _rel_err(ours, reference) <= 1e-4, "artifact vs reference executor"
    assert _rel_err(ours, theirs) <= 1e-4, "artifact vs onnxruntime"


@pytest.mark.parametrize("name", zoo.list_models())
def test_small_zoo_model_compiles_and_matches(name, tmp_path):
    _check(name, tmp_path, **zoo.SMALL[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_full_size_zoo_model_compiles_and_matches(name, tmp_path):
    _check(name, tmp_path)


@pytest.mark.slow
def test_resnet50_workspace_is_at_most_a_third_of_its_intermediates():
    mod, params = zoo.get("resnet50")
    mem = ember.compile(mod, params, target="host").metadata["memory"]
    assert mem["workspace_bytes"] * 3 <= mem["total_intermediate_bytes"], mem
