"""Every frontend's CNN families, compiled to a host artifact and checked end to end.

The frontend tests compare ember's reference executor with each framework's saved
outputs; here the same fixture models go through ``ember.compile`` and the loaded
artifact must match both the framework's outputs and ``ember.graph.interpret`` on
the same input, to the same tolerance the frontend tests use (rel 1e-4 for float32,
one quantization step for int8 TFLite). So a compiler bug in any op a real model
uses shows up as a mismatch here, named by framework and model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ember
from ember.frontend import from_tensorflow, from_tflite
from ember.frontend.mxnet import from_mxnet
from ember.graph import interpret
from ember.runtime.model import Model
from tests.frontend.test_mxnet import files as mxnet_files
from tests.frontend.test_mxnet import load_io as mxnet_io
from tests.frontend.test_tensorflow import DATA
from tests.frontend.test_tflite import DATA as TFLITE

CNNS = ["resnet", "mobilenet", "vgg", "squeezenet", "densenet", "inception"]


def compiled(mod, params, where: Path) -> Model:
    """Compile for the host, export the artifact to ``where`` and load it back from disk.

    Kernels are cached by content, so models sharing layer shapes compile once.
    """
    return ember.load(ember.compile(mod, params, target="host").export(where / "model.ember"))


def assert_float_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(), err_msg=what)


def assert_within_one_step(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    assert diff.max() <= 1, f"{what}: {(diff > 1).sum()} values differ by up to {diff.max()} steps"


def fresh_inputs(model: Model) -> dict[str, np.ndarray]:
    """New random values for every input, so the check does not rest on one stored sample."""
    rng = np.random.default_rng()
    arrays = {}
    for info in model.inputs:
        if np.issubdtype(np.dtype(info.dtype), np.integer):
            limits = np.iinfo(info.dtype)
            arrays[info.name] = rng.integers(limits.min, limits.max, info.shape, endpoint=True)
        else:
            arrays[info.name] = rng.uniform(-1, 1, info.shape)
        arrays[info.name] = arrays[info.name].astype(info.dtype)
    return arrays


def check_float(
    mod, params, inputs: dict[str, np.ndarray], expected: list[np.ndarray], where: Path
) -> None:
    """The artifact's outputs match the framework's and the reference executor's."""
    model = compiled(mod, params, where)
    outs = model.run(inputs)
    reference = interpret(mod, params, inputs)
    assert len(outs) == len(expected) == len(reference)
    for i, (got, want, ref) in enumerate(zip(outs, expected, reference)):
        assert_float_close(got, want, f"output {i}: artifact vs framework")
        assert_float_close(got, ref, f"output {i}: artifact vs ember.graph.interpret")
    fresh = fresh_inputs(model)
    for i, (got, ref) in enumerate(zip(model.run(fresh), interpret(mod, params, fresh))):
        assert_float_close(got, ref, f"output {i}: artifact vs interpret on a fresh input")


MXNET_MODELS = [
    "resnet_v1",
    "resnet_v2",
    "mobilenet",
    "mobilenet_v2",
    "densenet",
    "squeeze_inception",
    "mlp",
]


@pytest.mark.parametrize("name", MXNET_MODELS)
def test_mxnet_model_compiled(name: str, tmp_path: Path) -> None:
    inputs, expected = mxnet_io(name)
    symbol, params_path = mxnet_files(name)
    mod, params = from_mxnet(symbol, params_path, shape={k: v.shape for k, v in inputs.items()})
    check_float(mod, params, inputs, expected, tmp_path)


@pytest.mark.parametrize("name", CNNS)
def test_tensorflow_frozen_graph_compiled(name: str, tmp_path: Path) -> None:
    mod, params = from_tensorflow(DATA / "tensorflow" / f"{name}.pb")
    data = np.load(DATA / "tensorflow" / f"{name}.npz")
    check_float(mod, params, {"x": data["input"]}, [data["output"]], tmp_path)


def test_tensorflow_saved_model_compiled(tmp_path: Path) -> None:
    mod, params = from_tensorflow(DATA / "tensorflow" / "saved_model_resnet")
    data = np.load(DATA / "tensorflow" / "resnet.npz")
    check_float(mod, params, {"x": data["input"]}, [data["output"]], tmp_path)


@pytest.mark.parametrize("name", CNNS)
def test_tflite_float_model_compiled(name: str, tmp_path: Path) -> None:
    mod, params = from_tflite(TFLITE / f"{name}.tflite")
    data = np.load(TFLITE / f"{name}.npz")
    check_float(mod, params, {mod.main.params[0].name: data["input"]}, [data["output"]], tmp_path)


@pytest.mark.parametrize("name", CNNS)
def test_tflite_int8_model_compiled(name: str, tmp_path: Path) -> None:
    mod, params = from_tflite(TFLITE / f"{name}_int8.tflite")
    data = np.load(TFLITE / f"{name}.npz")
    model = compiled(mod, params, tmp_path)
    assert [i.dtype for i in model.inputs] == ["int8"]  # the int8 interface survives compiling
    inputs = {model.inputs[0].name: data["int8_input"]}
    (got,) = model.run(inputs)
    (ref,) = interpret(mod, params, inputs)
    assert_within_one_step(got, data["int8_output"], "artifact vs TFLite")
    assert_within_one_step(got, ref, "artifact vs ember.graph.interpret")
    fresh = fresh_inputs(model)
    (got,), (ref,) = model.run(fresh), interpret(mod, params, fresh)
    assert_within_one_step(got, ref, "artifact vs interpret on a fresh input")


PYTORCH_MODELS = ["resnet", "mobilenet_v2", "densenet", "squeezenet", "vgg", "inception"]
PYTORCH_MODELS += ["attention"]


@pytest.mark.frameworks
@pytest.mark.parametrize("name", PYTORCH_MODELS)
def test_pytorch_exported_program_compiled(name: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from ember.frontend.pytorch import from_pytorch
    from tests.frontend.pytorch_testlib import exported

    module, shape, program = exported(name)
    mod, params = from_pytorch(program)
    x = np.random.default_rng().standard_normal(shape).astype(np.float32)  # fresh each run
    with torch.no_grad():
        expected = module(torch.from_numpy(x))
    expected = list(expected) if isinstance(expected, tuple | list) else [expected]
    check_float(mod, params, {"x": x}, [e.numpy() for e in expected], tmp_path)
