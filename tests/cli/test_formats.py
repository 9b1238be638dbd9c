"""Every format ``ember.frontend.load`` detects works with every verb that takes a model:
the command line imports through the loader, with no suffix table of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ember.cli import main
from ember.frontend import detect_framework
from ember.runtime import load as load_artifact
from ember.testing import zoo

DATA = Path(__file__).resolve().parents[1] / "data"


def _onnx(tmp: Path) -> tuple[Path, str]:
    path = tmp / "sq.onnx"
    zoo.to_onnx("squeezenet1_1", path, **zoo.SMALL["squeezenet1_1"])
    return path, "data:" + "x".join(
        map(str, zoo.input_shape("squeezenet1_1", **zoo.SMALL["squeezenet1_1"]))
    )


def _torch_module():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(y)

    return torch, Net().eval()


def _pt2(tmp: Path) -> tuple[Path, str]:
    torch, net = _torch_module()
    path = tmp / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 8, 8),)), path)
    return path, "x:1x3x8x8"


def _torchscript(tmp: Path) -> tuple[Path, str]:
    torch, net = _torch_module()
    path = tmp / "net.pt"
    torch.jit.save(torch.jit.trace(net, torch.randn(1, 3, 8, 8)), path)
    return path, "x:1x3x8x8"


def _tflite(tmp: Path) -> tuple[Path, str]:
    return DATA / "tflite" / "conv_ops.tflite", ""


def _frozen_pb(tmp: Path) -> tuple[Path, str]:
    return DATA / "tensorflow" / "conv_ops.pb", ""


def _saved_model(tmp: Path) -> tuple[Path, str]:
    return DATA / "tensorflow" / "saved_model_conv_ops", ""


def _mxnet(tmp: Path) -> tuple[Path, str]:
    for name in ("mlp-symbol.json", "mlp-0000.params"):
        shutil.copy(DATA / "mxnet" / name, tmp / name)
    return tmp / "mlp-symbol.json", "data:3x2x4"


FORMATS = {
    "onnx": _onnx,
    "pt2": _pt2,
    "torchscript": _torchscript,
    "tflite": _tflite,
    "frozen_pb": _frozen_pb,
    "saved_model": _saved_model,
    "mxnet": _mxnet,
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_verb_takes_every_format(fmt, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model, spec = FORMATS[fmt](tmp_path)
    detect_framework(model)  # the loader knows it
    shape = ["--input", spec] if spec else []
    assert main(["info", str(model), *shape]) == 0, capsys.readouterr().err
    assert "FLOPs" in capsys.readouterr().out
    ref = tmp_path / "ref.npz"
    assert main(["run-reference", str(model), *shape, "--seed", "2", "-o", str(ref)]) == 0
    art = tmp_path / "model.ember"
    assert main(["compile", str(model), *shape, "-o", str(art)]) == 0, capsys.readouterr().err
    out = tmp_path / "out.npz"
    assert main(["run", str(art), "--seed", "2", "-o", str(out)]) == 0
    # run-reference and run draw the same random inputs for the same seed.
    want, got = np.load(ref), np.load(out)
    assert sorted(want.files) == sorted(got.files) == [o.name for o in load_artifact(art).outputs]
    for name in want.files:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4)


def test_tune_takes_a_pt2_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model, spec = _pt2(tmp_path)
    log = tmp_path / "log.jsonl"
    argv = ["tune", str(model), "--input", spec, "--trials", "8", "--no-latency", "-o", str(log)]
    assert main(argv) == 0, capsys.readouterr().err
    assert log.exists() and log.read_text().strip()


def test_data_files_feed_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model, spec = _onnx(tmp_path)
    art = tmp_path / "sq.ember"
    assert main(["compile", str(model), "--input", spec, "-o", str(art)]) == 0
    x = zoo.random_input("squeezenet1_1", seed=1, **zoo.SMALL["squeezenet1_1"])
    np.save(tmp_path / "x.npy", x)
    # NAME=FILE.npy, or just FILE.npy for a one-input model.
    for data in (f"data={tmp_path / 'x.npy'}", str(tmp_path / "x.npy")):
        assert main(["run", str(art), "--data", data, "-o", str(tmp_path / "y.npz")]) == 0
        assert "x.npy" in capsys.readouterr().out
    # The old spelling still works, and says it is deprecated.
    assert main(["run", str(art), "--input", f"data={tmp_path / 'x.npy'}"]) == 0
    assert "deprecated" in capsys.readouterr().err


def test_dtypes_in_the_spec_of_a_format_that_fixes_them(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model, _ = _tflite(tmp_path)
    assert main(["info", str(model), "--input", "x:1x8x8x3:float16"]) == 2
    assert "takes input dtypes from the model file" in capsys.readouterr().err


def test_targets_lists_the_table(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "skylake-avx512" in out and "ml_c5" in out and "host" in out
    assert "512-bit vectors (16 x float32)" in out


def test_compile_for_a_named_target_says_so(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model, spec = _onnx(tmp_path)
    art = tmp_path / "c5.ember"
    assert main(["compile", str(model), "--input", spec, "--target", "ml_c5", "-o", str(art)]) == 0
    assert "compiling for ml_c5 (x86_64 skylake-avx512" in capsys.readouterr().err
