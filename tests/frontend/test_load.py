"""ember.frontend.load: framework detection from the files, dispatch, and its errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ember.errors import FrontendError
from ember.frontend.load import detect_framework, load, mxnet_files
from ember.graph import interpret

DATA = Path(__file__).resolve().parents[1] / "data"
MXNET = DATA / "mxnet"


def onnx_relu(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def mxnet_copy(tmp_path: Path, name: str = "mlp", epochs: tuple[int, ...] = (0,)) -> Path:
    shutil.copy(MXNET / f"{name}-symbol.json", tmp_path / f"{name}-symbol.json")
    for epoch in epochs:
        shutil.copy(MXNET / f"{name}-0000.params", tmp_path / f"{name}-{epoch:04d}.params")
    return tmp_path / f"{name}-symbol.json"


# ----------------------------------------------------------------------------- detection


def test_detect_by_suffix(tmp_path: Path) -> None:
    cases = {
        "m.onnx": "onnx",
        "m.tflite": "tflite",
        "frozen.pb": "tensorflow",
        "m.pt2": "pytorch",
        "x-symbol.json": "mxnet",
        "x-0003.params": "mxnet",
    }
    for name, framework in cases.items():
        (tmp_path / name).write_bytes(b"\x00" * 16)
        assert detect_framework(tmp_path / name) == framework, name


def test_detect_by_content(tmp_path: Path) -> None:
    flatbuffer = tmp_path / "model.bin"
    flatbuffer.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8)
    assert detect_framework(flatbuffer) == "tflite"
    symbol = tmp_path / "net.json"
    shutil.copy(MXNET / "mlp-symbol.json", symbol)
    assert detect_framework(symbol) == "mxnet"


def test_detect_directories(tmp_path: Path) -> None:
    assert detect_framework(DATA / "tensorflow" / "saved_model_conv_ops") == "tensorflow"
    mxnet_copy(tmp_path)
    assert detect_framework(tmp_path) == "mxnet"


def test_detect_failures(tmp_path: Path) -> None:
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"\x01\x02\x03")
    with pytest.raises(
        FrontendError, match="cannot tell which framework.*\n  hint: pass framework="
    ):
        detect_framework(unknown)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(FrontendError, match="neither saved_model.pb nor.*readme.txt"):
        detect_framework(empty)


def test_unknown_framework_name(tmp_path: Path) -> None:
    path = onnx_relu(tmp_path / "m.onnx")
    with pytest.raises(FrontendError, match="unknown framework 'caffe'.*\n  hint: use one of onnx"):
        load(path, framework="caffe")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="does not exist"):
        load(tmp_path / "nothing.onnx")


# ----------------------------------------------------------------------------- mxnet pairs


def test_mxnet_files_pairs(tmp_path: Path) -> None:
    symbol = mxnet_copy(tmp_path, epochs=(0, 12, 3))
    assert mxnet_files(symbol) == (symbol, tmp_path / "mlp-0012.params")  # newest epoch
    assert mxnet_files(tmp_path / "mlp-0003.params") == (symbol, tmp_path / "mlp-0003.params")
    assert mxnet_files(tmp_path) == (symbol, tmp_path / "mlp-0012.params")


def test_mxnet_files_errors(tmp_path: Path) -> None:
    shutil.copy(MXNET / "mlp-symbol.json", tmp_path / "mlp-symbol.json")
    with pytest.raises(FrontendError, match="no MXNet params file mlp-NNNN.params beside"):
        mxnet_files(tmp_path / "mlp-symbol.json")
    shutil.copy(MXNET / "ops-symbol.json", tmp_path / "ops-symbol.json")
    with pytest.raises(FrontendError, match="should hold one MXNet NAME-symbol.json"):
        mxnet_files(tmp_path)
    orphan = tmp_path / "other-0000.params"
    orphan.write_bytes(b"")
    with pytest.raises(FrontendError, match="no MXNet symbol file 'other-symbol.json'"):
        mxnet_files(orphan)


# ----------------------------------------------------------------------------- end to end


def test_load_onnx(tmp_path: Path) -> None:
    path = onnx_relu(tmp_path / "m.onnx")
    mod, params = load(path)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_array_equal(interpret(mod, params, {"x": x})[0], np.maximum(x, 0))


@pytest.mark.parametrize("form", ["symbol", "params", "directory"])
def test_load_mxnet(tmp_path: Path, form: str) -> None:
    symbol = mxnet_copy(tmp_path, "resnet_v1")
    target = {"symbol": symbol, "params": tmp_path / "resnet_v1-0000.params", "directory": tmp_path}
    mod, params = load(target[form], shape='{"data": [1, 3, 64, 64]}')
    io = np.load(MXNET / "resnet_v1-io.npz")
    out = interpret(mod, params, {"data": io["data"]})[0]
    np.testing.assert_allclose(out, io["output_0"], rtol=1e-4, atol=1e-5)


def test_load_tflite_and_tensorflow() -> None:
    io = np.load(DATA / "tflite" / "conv_ops.npz")
    mod, params = load(DATA / "tflite" / "conv_ops.tflite")
    out = interpret(mod, params, {mod.main.params[0].name: io["input"]})[0]
    np.testing.assert_allclose(out, io["output"], rtol=1e-4, atol=1e-4)
    mod, params = load(DATA / "tensorflow" / "conv_ops.pb", framework="tf")
    assert mod.main.params[0].type.shape == (1, 17, 15, 3)


@pytest.mark.frameworks
def test_load_pytorch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    example = torch.rand(2, 4)
    torch.export.save(torch.export.export(net, (example,)), str(tmp_path / "m.pt2"))
    traced = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(net, (example,)), str(traced))
    assert detect_framework(traced) == "pytorch"
    x = torch.randn(2, 4)
    for path in (tmp_path / "m.pt2", traced):
        mod, params = load(path, shape={"input": (2, 4)})
        out = interpret(mod, params, {"input": x.numpy()})[0]
        np.testing.assert_allclose(out, net(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    state = tmp_path / "weights.pth"
    torch.save(net.state_dict(), str(state))
    with pytest.raises(FrontendError, match="PyTorch archive without a graph"):
        detect_framework(state)
